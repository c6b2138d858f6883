// SPDX-License-Identifier: MIT
// parse_patch(): ELF structure, symbols, relocations, metadata and content hash, in that order,
// so that each refusal names the first thing that is wrong.
#include "atlas/patch/patch.hpp"
#include "atlas/patch/reloc.hpp"

#include "internal.hpp"

#include <cstring>
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

namespace atlas::patch
{

bool Section::alloc() const noexcept
{
	return flags & SHF_ALLOC;
}
bool Section::exec() const noexcept
{
	return flags & SHF_EXECINSTR;
}
bool Section::write() const noexcept
{
	return flags & SHF_WRITE;
}
bool Section::nobits() const noexcept
{
	return type == SHT_NOBITS;
}

namespace
{

using detail::ElfImage;

constexpr uint64_t max_nobits_size = 1ull << 30;

Error invalid(std::string msg)
{
	return make_error(Errc::invalid_format, "patch: " + std::move(msg));
}

Error unsupported(std::string msg)
{
	return make_error(Errc::unsupported, "patch: " + std::move(msg));
}

// The ELF header, checked on the raw bytes before libelf sees them: libelf accepts any class,
// machine and type, and its messages would not say what is expected.
Expected<void> check_header(std::span<const uint8_t> b)
{
	if (b.size() < sizeof(Elf64_Ehdr))
		return invalid(
		    fmt::format("file is truncated: {} bytes, an ELF64 header alone has {}",
		                b.size(), sizeof(Elf64_Ehdr)));
	if (std::memcmp(b.data(), ELFMAG, SELFMAG) != 0)
		return invalid("bad ELF magic: not an ELF file");
	if (b[EI_CLASS] != ELFCLASS64)
		return invalid(fmt::format("ELF class {} is not ELFCLASS64", b[EI_CLASS]));
	if (b[EI_DATA] != ELFDATA2LSB)
		return invalid("not little-endian (ELFDATA2LSB): not an x86-64 object");
	if (b[EI_VERSION] != EV_CURRENT)
		return invalid(fmt::format("ELF version {} is not EV_CURRENT", b[EI_VERSION]));
	if (b[EI_OSABI] != ELFOSABI_SYSV && b[EI_OSABI] != ELFOSABI_GNU)
		return invalid(fmt::format("OS ABI {} is neither System V nor GNU", b[EI_OSABI]));
	Elf64_Ehdr eh;
	std::memcpy(&eh, b.data(), sizeof(eh));
	if (eh.e_type != ET_REL)
		return invalid(fmt::format("ELF type {} is not ET_REL: a patch is a relocatable "
		                           "object (compile with -c)",
		                           eh.e_type));
	if (eh.e_machine != EM_X86_64)
		return invalid(fmt::format("machine {} is not x86-64 (EM_X86_64 = {})",
		                           eh.e_machine, EM_X86_64));
	if (eh.e_ehsize != sizeof(Elf64_Ehdr))
		return invalid(
		    fmt::format("ELF header size {} is not {}", eh.e_ehsize, sizeof(Elf64_Ehdr)));
	if (eh.e_shoff == 0)
		return invalid("no section header table");
	if (eh.e_shentsize != sizeof(Elf64_Shdr))
		return invalid(fmt::format("section header size {} is not {}", eh.e_shentsize,
		                           sizeof(Elf64_Shdr)));
	if (eh.e_shoff > b.size() || b.size() - eh.e_shoff < sizeof(Elf64_Shdr))
		return invalid(fmt::format("section header table at 0x{:x} lies beyond the end of "
		                           "the file ({} bytes): truncated",
		                           eh.e_shoff, b.size()));
	// The whole table must lie in the file. With extended numbering (e_shnum == 0) the
	// count is section 0's sh_size. libelf would silently see no sections at all.
	uint64_t shnum = eh.e_shnum;
	if (shnum == 0) {
		Elf64_Shdr sh0;
		std::memcpy(&sh0, b.data() + eh.e_shoff, sizeof(sh0));
		shnum = sh0.sh_size;
	}
	uint64_t table_size;
	if (__builtin_mul_overflow(shnum, sizeof(Elf64_Shdr), &table_size) ||
	    table_size > b.size() - eh.e_shoff)
		return invalid(fmt::format("section header table ({} entries at 0x{:x}) extends "
		                           "beyond the end of the file ({} bytes): truncated",
		                           shnum, eh.e_shoff, b.size()));
	return {};
}

class Parser
{
public:
	Parser(const ElfImage &image, Patch &patch) : image_(image), elf_(image.elf()), p_(patch) {}

	Expected<void> run(const ParseOptions &options)
	{
		if (auto r = sections(); !r)
			return r;
		if (auto r = symbols(); !r)
			return r;
		if (auto r = relocations(); !r)
			return r;
		if (auto r = metadata(); !r)
			return r;
		if (options.verify_content_hash) {
			auto h = detail::content_hash(image_, p_.metadata_section);
			if (!h)
				return h.error();
			if (*h != p_.metadata.content_hash)
				return make_error(
				    Errc::hash_mismatch,
				    fmt::format(
				        "patch: content hash mismatch (recorded {}, computed "
				        "{}): the file was modified after it was built; "
				        "rebuild it",
				        to_hex(p_.metadata.content_hash), to_hex(*h)));
		}
		return {};
	}

private:
	Expected<void> sections()
	{
		size_t shnum, shstrndx;
		if (elf_getshdrnum(elf_, &shnum) != 0)
			return invalid("cannot read the section count: " + detail::elf_error());
		if (shnum < 2)
			return invalid("has no sections");
		if (elf_getshdrstrndx(elf_, &shstrndx) != 0 || shstrndx == SHN_UNDEF ||
		    shstrndx >= shnum)
			return invalid("section name table index is invalid");
		shstrndx_ = shstrndx;
		p_.sections.resize(shnum);
		for (size_t i = 1; i < shnum; i++) {
			Elf_Scn *scn = elf_getscn(elf_, i);
			GElf_Shdr sh;
			if (!scn || !gelf_getshdr(scn, &sh))
				return invalid(fmt::format("cannot read section header [{}]: {}", i,
				                           detail::elf_error()));
			const char *name = elf_strptr(elf_, shstrndx, sh.sh_name);
			if (!name)
				return invalid(fmt::format(
				    "section [{}] has an invalid name offset {}", i, sh.sh_name));
			if (sh.sh_type == SHT_NULL)
				return invalid(
				    fmt::format("section [{}] {} has type SHT_NULL, which "
				                "only section 0 may have",
				                i, name));
			if (auto b = detail::check_section_bounds(image_, sh, i, name); !b)
				return b.error();
			// Zero-filled sections are only bounded by the address space; a patch
			// needing more than this is a corrupt one.
			if (sh.sh_type == SHT_NOBITS && sh.sh_size > max_nobits_size)
				return unsupported(
				    fmt::format("section [{}] {}: {} zero-filled bytes "
				                "exceed the limit of {}",
				                i, name, sh.sh_size, max_nobits_size));
			if (sh.sh_addralign & (sh.sh_addralign - 1))
				return invalid(fmt::format("section [{}] {}: alignment {} is not a "
				                           "power of two",
				                           i, name, sh.sh_addralign));
			if (sh.sh_addralign > (1u << 16))
				return unsupported(
				    fmt::format("section [{}] {}: alignment {} exceeds "
				                "64 KiB",
				                i, name, sh.sh_addralign));
			if (sh.sh_link >= shnum)
				return invalid(
				    fmt::format("section [{}] {}: link {} is not a section "
				                "index (there are {})",
				                i, name, sh.sh_link, shnum));
			if ((sh.sh_flags & SHF_TLS) && sh.sh_size)
				return unsupported(
				    fmt::format("section [{}] {} defines thread-local "
				                "storage: new TLS variables are not "
				                "supported (reference the target's)",
				                i, name));
			if (sh.sh_type == SHT_REL)
				return unsupported(fmt::format("section [{}] {} is SHT_REL: x86-64 "
				                               "objects use SHT_RELA",
				                               i, name));
			Section &s = p_.sections[i];
			s.name = name;
			s.type = sh.sh_type;
			s.flags = sh.sh_flags;
			s.align = sh.sh_addralign;
			s.entsize = sh.sh_entsize;
			s.link = sh.sh_link;
			s.info = sh.sh_info;
			s.size = sh.sh_size;
			if (sh.sh_type != SHT_NOBITS && sh.sh_size) {
				const uint8_t *b = image_.bytes().data() + sh.sh_offset;
				s.bytes.assign(b, b + sh.sh_size);
			}
			if (sh.sh_type == SHT_SYMTAB) {
				if (symtab_)
					return invalid(
					    fmt::format("has two symbol tables ([{}] and "
					                "[{}])",
					                symtab_, i));
				symtab_ = i;
			}
			if (s.name == metadata_section_name) {
				if (p_.metadata_section)
					return invalid(fmt::format("has two {} sections", s.name));
				p_.metadata_section = uint32_t(i);
			}
		}
		if (!symtab_)
			return invalid("has no symbol table (.symtab)");
		return {};
	}

	Expected<void> symbols()
	{
		const Section &st = p_.sections[symtab_];
		if (st.entsize != sizeof(Elf64_Sym) || st.size % sizeof(Elf64_Sym))
			return invalid(fmt::format(".symtab entry size {} / size {} do not match "
			                           "Elf64_Sym ({} bytes)",
			                           st.entsize, st.size, sizeof(Elf64_Sym)));
		if (p_.sections[st.link].type != SHT_STRTAB)
			return invalid(fmt::format(".symtab links to section [{}], which is not a "
			                           "string table",
			                           st.link));
		size_t n = st.size / sizeof(Elf64_Sym);
		if (n == 0)
			return invalid(".symtab is empty");
		if (st.info > n)
			return invalid(
			    fmt::format(".symtab: first non-local index {} is beyond its "
			                "{} symbols",
			                st.info, n));
		Elf_Data *data = elf_getdata(elf_getscn(elf_, symtab_), nullptr);
		if (!data || data->d_size != st.size)
			return invalid("cannot read .symtab: " + detail::elf_error());
		// The extended section index table, if any, for symbols with SHN_XINDEX.
		Elf_Data *xdata = nullptr;
		for (size_t i = 1; i < p_.sections.size(); i++) {
			const Section &s = p_.sections[i];
			if (s.type == SHT_SYMTAB_SHNDX && s.link == symtab_) {
				if (s.size / 4 != n)
					return invalid(
					    "SHT_SYMTAB_SHNDX size does not match .symtab");
				xdata = elf_getdata(elf_getscn(elf_, i), nullptr);
				if (!xdata || xdata->d_size != s.size)
					return invalid("cannot read SHT_SYMTAB_SHNDX: " +
					               detail::elf_error());
			}
		}
		p_.symbols.resize(n);
		for (size_t i = 1; i < n; i++) {
			GElf_Sym sym;
			Elf32_Word xndx = 0;
			if (!gelf_getsymshndx(data, xdata, int(i), &sym, &xndx))
				return invalid(fmt::format("cannot read symbol {}: {}", i,
				                           detail::elf_error()));
			const char *name = elf_strptr(elf_, st.link, sym.st_name);
			if (!name)
				return invalid(fmt::format(
				    "symbol {} has an invalid name offset {}", i, sym.st_name));
			Symbol &s = p_.symbols[i];
			s.name = name;
			s.type = GELF_ST_TYPE(sym.st_info);
			s.bind = GELF_ST_BIND(sym.st_info);
			s.visibility = GELF_ST_VISIBILITY(sym.st_other);
			s.value = sym.st_value;
			s.size = sym.st_size;
			const std::string where = fmt::format("symbol {} '{}'", i, s.name);
			if ((s.bind == STB_LOCAL) != (i < st.info))
				return invalid(
				    fmt::format("{}: local and global symbols are mixed (the "
				                "first non-local is {})",
				                where, st.info));
			if (s.bind != STB_LOCAL && s.bind != STB_GLOBAL && s.bind != STB_WEAK &&
			    s.bind != STB_GNU_UNIQUE)
				return invalid(
				    fmt::format("{}: unknown binding {}", where, s.bind));
			switch (s.type) {
			case STT_NOTYPE:
			case STT_OBJECT:
			case STT_FUNC:
			case STT_SECTION:
			case STT_FILE:
			case STT_TLS:
				break;
			case STT_GNU_IFUNC:
				return unsupported(where +
				                   ": indirect functions (STT_GNU_IFUNC) are "
				                   "not supported");
			default:
				return invalid(fmt::format("{}: unknown type {}", where, s.type));
			}
			uint32_t shndx = sym.st_shndx;
			if (shndx == SHN_XINDEX)
				shndx = xndx;
			else if (shndx == SHN_COMMON)
				return unsupported(where +
				                   ": common symbol: compile with -fno-common");
			if (shndx == SHN_ABS || (s.type == STT_FILE && shndx == SHN_UNDEF)) {
				s.section = shndx;
				continue;
			}
			if (shndx != SHN_UNDEF && shndx >= p_.sections.size())
				return invalid(
				    fmt::format("{}: section index {} is out of range (there "
				                "are {} sections)",
				                where, shndx, p_.sections.size()));
			s.section = shndx;
			if (shndx == SHN_UNDEF) {
				if (s.bind == STB_LOCAL)
					return invalid(where + ": undefined local symbol");
				continue;
			}
			if (s.type == STT_TLS)
				return unsupported(where +
				                   ": defines a TLS variable: new TLS variables "
				                   "are not supported");
			const Section &sec = p_.sections[shndx];
			uint64_t end;
			if (__builtin_add_overflow(s.value, s.size, &end) || end > sec.size)
				return invalid(fmt::format("{}: [0x{:x}, +0x{:x}) lies outside its "
				                           "section [{}] {} (0x{:x} bytes)",
				                           where, s.value, s.size, shndx, sec.name,
				                           sec.size));
			if (s.type == STT_FUNC && !(sec.exec() && sec.alloc()))
				return invalid(fmt::format(
				    "{}: function in non-executable section {}", where, sec.name));
		}
		return {};
	}

	Expected<void> relocations()
	{
		for (size_t i = 1; i < p_.sections.size(); i++) {
			const Section &rs = p_.sections[i];
			if (rs.type != SHT_RELA)
				continue;
			const std::string where =
			    fmt::format("relocation section [{}] {}", i, rs.name);
			if (rs.link != symtab_)
				return invalid(fmt::format("{}: links to section [{}], not .symtab",
				                           where, rs.link));
			if (rs.info == 0 || rs.info >= p_.sections.size())
				return invalid(fmt::format("{}: target section index {} is out of "
				                           "range",
				                           where, rs.info));
			if (rs.entsize != sizeof(Elf64_Rela) || rs.size % sizeof(Elf64_Rela))
				return invalid(
				    fmt::format("{}: entry size {} / size {} do not match "
				                "Elf64_Rela",
				                where, rs.entsize, rs.size));
			const Section &target = p_.sections[rs.info];
			if (rs.info == p_.metadata_section)
				return invalid(
				    fmt::format("{}: relocates the metadata section", where));
			// Relocations of sections that are never loaded (debug information) are
			// not applied by the loader; they are left out of the model unchecked.
			if (!target.alloc())
				continue;
			if (target.nobits())
				return invalid(fmt::format(
				    "{}: relocates {}, which has no contents", where, target.name));
			Elf_Data *data = elf_getdata(elf_getscn(elf_, i), nullptr);
			if (!data || data->d_size != rs.size)
				return invalid(
				    fmt::format("{}: cannot read: {}", where, detail::elf_error()));
			RelocationSection out;
			out.index = uint32_t(i);
			out.target = rs.info;
			size_t n = rs.size / sizeof(Elf64_Rela);
			out.entries.reserve(n);
			for (size_t k = 0; k < n; k++) {
				GElf_Rela r;
				if (!gelf_getrela(data, int(k), &r))
					return invalid(fmt::format("{}: cannot read entry {}: {}",
					                           where, k, detail::elf_error()));
				Relocation e;
				e.offset = r.r_offset;
				e.type = uint32_t(GELF_R_TYPE(r.r_info));
				e.symbol = uint32_t(GELF_R_SYM(r.r_info));
				e.addend = r.r_addend;
				if (!is_supported_relocation(e.type))
					return unsupported(
					    fmt::format("unsupported relocation type {} ({}) in "
					                "section {} at offset "
					                "0x{:x}: {}",
					                relocation_name(e.type), e.type, rs.name,
					                e.offset, relocation_refusal(e.type)));
				if (e.symbol == 0 || e.symbol >= p_.symbols.size())
					return invalid(
					    fmt::format("{} entry {}: symbol index {} is out "
					                "of range (there are {} symbols)",
					                where, k, e.symbol, p_.symbols.size()));
				unsigned w = relocation_width(e.type);
				if (e.offset > target.size || target.size - e.offset < w)
					return invalid(
					    fmt::format("{} entry {}: {} at offset 0x{:x} lies "
					                "outside {} (0x{:x} "
					                "bytes)",
					                where, k, relocation_name(e.type), e.offset,
					                target.name, target.size));
				const Symbol &sym = p_.symbols[e.symbol];
				if (sym.type == STT_FILE)
					return invalid(
					    fmt::format("{} entry {}: relocation against the "
					                "file symbol '{}'",
					                where, k, sym.name));
				if (sym.defined() && sym.section != section_abs &&
				    !p_.sections[sym.section].alloc())
					return invalid(fmt::format(
					    "{} entry {}: relocation against '{}', which is "
					    "defined in "
					    "the non-loaded section {}",
					    where, k, sym.name, p_.sections[sym.section].name));
				if (is_tls_relocation(e.type) != (sym.type == STT_TLS))
					return invalid(fmt::format(
					    "{} entry {}: {} against {} symbol '{}'", where, k,
					    relocation_name(e.type),
					    sym.type == STT_TLS ? "the TLS" : "the non-TLS",
					    sym.name));
				out.entries.push_back(e);
			}
			p_.relocations.push_back(std::move(out));
		}
		return {};
	}

	Expected<void> metadata()
	{
		if (!p_.metadata_section)
			return invalid(
			    fmt::format("has no {} section: not an atlas patch (build it "
			                "with atlas-mkpatch)",
			                metadata_section_name));
		const Section &ms = p_.sections[p_.metadata_section];
		if (ms.type != SHT_PROGBITS || ms.alloc())
			return invalid(
			    fmt::format("{} must be a non-allocated SHT_PROGBITS section",
			                metadata_section_name));
		auto md = decode_metadata(ms.bytes);
		if (!md)
			return make_error(md.error().code, "patch: " + md.error().message);
		p_.metadata = std::move(*md);

		for (const Redirect &r : p_.metadata.redirects) {
			std::vector<uint32_t> defs;
			bool undefined = false, non_function = false;
			for (size_t i = 1; i < p_.symbols.size(); i++) {
				const Symbol &s = p_.symbols[i];
				if (s.name != r.replacement)
					continue;
				if (!s.defined())
					undefined = true;
				else if (s.type != STT_FUNC)
					non_function = true;
				else
					defs.push_back(uint32_t(i));
			}
			if (defs.size() == 1) {
				p_.redirect_symbols.push_back(defs[0]);
				continue;
			}
			if (defs.size() > 1)
				return invalid(
				    fmt::format("redirect of '{}': the replacement '{}' is "
				                "defined {} times in the patch",
				                r.target.name, r.replacement, defs.size()));
			return invalid(fmt::format("redirect of '{}': the replacement '{}' is {} "
			                           "in the patch: a replacement "
			                           "must be a function the patch defines",
			                           r.target.name, r.replacement,
			                           undefined      ? "undefined"
			                           : non_function ? "not a function"
			                                          : "not defined"));
		}
		for (const Reference &r : p_.metadata.references) {
			std::vector<uint32_t> undefs;
			for (size_t i = 1; i < p_.symbols.size(); i++)
				if (p_.symbols[i].name == r.patch_symbol &&
				    !p_.symbols[i].defined() && p_.symbols[i].type != STT_FILE)
					undefs.push_back(uint32_t(i));
			if (undefs.empty())
				return invalid(
				    fmt::format("reference to '{}': the patch has no "
				                "undefined symbol '{}' (is it used by the "
				                "patch's code, and declared extern?)",
				                r.target.name, r.patch_symbol));
			p_.reference_symbols.push_back(std::move(undefs));
		}
		return {};
	}

	const ElfImage &image_;
	Elf *elf_;
	Patch &p_;
	size_t shstrndx_ = 0;
	uint32_t symtab_ = 0;
};

// Finds the metadata section's file offset in an image that parses structurally.
Expected<uint64_t> metadata_offset(const ElfImage &image, uint32_t index)
{
	GElf_Shdr sh;
	Elf_Scn *scn = elf_getscn(image.elf(), index);
	if (!scn || !gelf_getshdr(scn, &sh))
		return invalid("cannot read the metadata section header: " + detail::elf_error());
	return sh.sh_offset;
}

// Checks the ELF header, opens `bytes` as `image` and parses it into `patch`; the image stays
// open for callers that need the sections afterwards (seal_content_hash).
Expected<void> open_and_parse(std::span<const uint8_t> bytes, const ParseOptions &options,
                              ElfImage &image, Patch &patch)
{
	if (auto h = check_header(bytes); !h)
		return h.error();
	if (auto r = image.open(bytes, "patch"); !r)
		return r.error();
	return Parser(image, patch).run(options);
}

} // namespace

Expected<Patch> parse_patch(std::span<const uint8_t> bytes, const ParseOptions &options)
{
	return detail::guard([&]() -> Expected<Patch> {
		ElfImage image;
		Patch patch;
		if (auto r = open_and_parse(bytes, options, image, patch); !r)
			return r.error();
		return patch;
	});
}

Expected<void> seal_content_hash(std::vector<uint8_t> &bytes)
{
	return detail::guard([&]() -> Expected<void> {
		ElfImage image;
		Patch patch;
		if (auto r = open_and_parse(bytes, ParseOptions{false}, image, patch); !r)
			return r.error();
		auto hash = detail::content_hash(image, patch.metadata_section);
		if (!hash)
			return hash.error();
		auto off = metadata_offset(image, patch.metadata_section);
		if (!off)
			return off.error();
		std::copy(hash->begin(), hash->end(),
		          bytes.begin() + int64_t(*off + content_hash_offset));
		return {};
	});
}

Expected<std::vector<uint8_t>> read_file(const std::string &path)
{
	return detail::guard([&]() -> Expected<std::vector<uint8_t>> {
		int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			const int err = errno;
			return make_error(
			    Errc::io, fmt::format("cannot open {}: {}", path, std::strerror(err)),
			    err);
		}
		std::vector<uint8_t> out;
		uint8_t buf[65536];
		for (;;) {
			ssize_t n = ::read(fd, buf, sizeof(buf));
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				int e = errno;
				::close(fd);
				return make_error(
				    Errc::io,
				    fmt::format("cannot read {}: {}", path, std::strerror(e)), e);
			}
			if (n == 0)
				break;
			out.insert(out.end(), buf, buf + n);
		}
		::close(fd);
		return out;
	});
}

} // namespace atlas::patch
