// SPDX-License-Identifier: MIT
#include "atlas/patch/writer.hpp"
#include "atlas/patch/patch.hpp"

#include "internal.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace atlas::patch
{

namespace
{

class Fd
{
public:
	explicit Fd(int fd) : fd_(fd) {}
	Fd(const Fd &) = delete;
	Fd &operator=(const Fd &) = delete;
	~Fd()
	{
		if (fd_ >= 0)
			::close(fd_);
	}
	int get() const
	{
		return fd_;
	}

private:
	int fd_;
};

Expected<void> write_all(int fd, std::span<const uint8_t> b, const std::string &what)
{
	size_t done = 0;
	while (done < b.size()) {
		ssize_t n = ::write(fd, b.data() + done, b.size() - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return make_error(Errc::io, fmt::format("cannot write {}: {}", what,
			                                        std::strerror(errno)));
		done += size_t(n);
	}
	return {};
}

struct ElfCloser {
	void operator()(Elf *e) const noexcept
	{
		elf_end(e);
	}
};

} // namespace

Expected<std::vector<uint8_t>> build_patch(std::span<const uint8_t> object,
                                           const Metadata &metadata)
{
	return detail::guard([&]() -> Expected<std::vector<uint8_t>> {
		Metadata md = metadata;
		md.content_hash = {};
		auto section = encode_metadata(md);
		if (!section)
			return section.error();
		if (!detail::libelf_ready())
			return make_error(Errc::internal, "libelf initialisation failed");

		// libelf edits files, not memory: work on an anonymous memory file.
		Fd fd(memfd_create("atlas-patch", MFD_CLOEXEC));
		if (fd.get() < 0)
			return make_error(Errc::io,
			                  fmt::format("memfd_create: {}", std::strerror(errno)));
		if (auto w = write_all(fd.get(), object, "the object to a memfd"); !w)
			return w.error();

		std::unique_ptr<Elf, ElfCloser> elf(elf_begin(fd.get(), ELF_C_RDWR, nullptr));
		if (!elf || elf_kind(elf.get()) != ELF_K_ELF)
			return make_error(Errc::invalid_format,
			                  "object: libelf cannot open it: " + detail::elf_error());
		GElf_Ehdr eh;
		if (!gelf_getehdr(elf.get(), &eh) || eh.e_type != ET_REL ||
		    eh.e_machine != EM_X86_64 || gelf_getclass(elf.get()) != ELFCLASS64)
			return make_error(Errc::invalid_format,
			                  "object is not an x86-64 ELF64 relocatable object");
		size_t shstrndx;
		if (elf_getshdrstrndx(elf.get(), &shstrndx) != 0)
			return make_error(Errc::invalid_format, "object has no section name table");
		size_t shnum;
		if (elf_getshdrnum(elf.get(), &shnum) != 0)
			return make_error(Errc::invalid_format, "object: cannot count sections");
		for (size_t i = 1; i < shnum; i++) {
			GElf_Shdr sh;
			const char *name;
			if (gelf_getshdr(elf_getscn(elf.get(), i), &sh) &&
			    (name = elf_strptr(elf.get(), shstrndx, sh.sh_name)) &&
			    metadata_section_name == name)
				return make_error(Errc::invalid_format,
				                  fmt::format("object already has a {} section",
				                              metadata_section_name));
		}

		// The new section's name, appended to the section name table.
		Elf_Scn *strscn = elf_getscn(elf.get(), shstrndx);
		GElf_Shdr strsh;
		if (!strscn || !gelf_getshdr(strscn, &strsh))
			return make_error(Errc::invalid_format, "object: bad section name table");
		// Make libelf load the existing contents before appending to them.
		if (!elf_getdata(strscn, nullptr))
			return make_error(Errc::invalid_format,
			                  "object: cannot read the section name table: " +
			                      detail::elf_error());
		std::string name(metadata_section_name);
		Elf_Data *nd = elf_newdata(strscn);
		if (!nd)
			return make_error(Errc::internal, "libelf: " + detail::elf_error());
		nd->d_buf = name.data();
		nd->d_size = name.size() + 1;
		nd->d_type = ELF_T_BYTE;
		nd->d_align = 1;
		nd->d_off = int64_t(strsh.sh_size);
		const uint64_t name_off = strsh.sh_size;

		Elf_Scn *scn = elf_newscn(elf.get());
		if (!scn)
			return make_error(Errc::internal, "libelf: " + detail::elf_error());
		Elf_Data *d = elf_newdata(scn);
		if (!d)
			return make_error(Errc::internal, "libelf: " + detail::elf_error());
		d->d_buf = section->data();
		d->d_size = section->size();
		d->d_type = ELF_T_BYTE;
		d->d_align = 8;
		d->d_off = 0;
		GElf_Shdr sh;
		if (!gelf_getshdr(scn, &sh))
			return make_error(Errc::internal, "libelf: " + detail::elf_error());
		sh.sh_name = uint32_t(name_off);
		sh.sh_type = SHT_PROGBITS;
		sh.sh_flags = 0;
		sh.sh_addralign = 8;
		sh.sh_size = section->size();
		if (!gelf_update_shdr(scn, &sh))
			return make_error(Errc::internal, "libelf: " + detail::elf_error());
		strsh.sh_size += name.size() + 1;
		if (!gelf_update_shdr(strscn, &strsh))
			return make_error(Errc::internal, "libelf: " + detail::elf_error());
		int64_t size = elf_update(elf.get(), ELF_C_WRITE);
		if (size < 0)
			return make_error(Errc::internal,
			                  "libelf cannot write the patch: " + detail::elf_error());
		elf.reset();

		std::vector<uint8_t> out(static_cast<size_t>(size));
		size_t done = 0;
		while (done < out.size()) {
			ssize_t n =
			    ::pread(fd.get(), out.data() + done, out.size() - done, off_t(done));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return make_error(Errc::io,
				                  "cannot read back the patch from its memfd");
			done += size_t(n);
		}
		if (auto s = seal_content_hash(out); !s)
			return s.error();
		if (auto p = parse_patch(out); !p)
			return p.error();
		return out;
	});
}

Expected<void> write_file(const std::string &path, std::span<const uint8_t> bytes)
{
	return detail::guard([&]() -> Expected<void> {
		std::string tmp = path + ".tmpXXXXXX";
		Fd fd(mkostemp(tmp.data(), O_CLOEXEC));
		if (fd.get() < 0)
			return make_error(Errc::io, fmt::format("cannot create {}: {}", tmp,
			                                        std::strerror(errno)));
		auto w = write_all(fd.get(), bytes, tmp);
		if (w && fchmod(fd.get(), 0644) != 0)
			w = make_error(Errc::io,
			               fmt::format("chmod {}: {}", tmp, std::strerror(errno)));
		if (w && ::rename(tmp.c_str(), path.c_str()) != 0)
			w = make_error(Errc::io, fmt::format("cannot rename {} to {}: {}", tmp,
			                                     path, std::strerror(errno)));
		if (!w)
			::unlink(tmp.c_str());
		return w;
	});
}

} // namespace atlas::patch
