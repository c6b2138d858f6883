// SPDX-License-Identifier: MIT
// libelf plumbing and the content hash (OpenSSL's SHA-256).
#include "internal.hpp"

#include <cstring>
#include <fmt/format.h>
#include <memory>
#include <openssl/evp.h>

namespace atlas::patch::detail
{

bool libelf_ready() noexcept
{
	// Thread-safe one-time initialisation (a magic static).
	static const bool ready = elf_version(EV_CURRENT) != EV_NONE;
	return ready;
}

std::string elf_error()
{
	const char *msg = elf_errmsg(-1);
	return msg ? msg : "unknown libelf error";
}

ElfImage::~ElfImage()
{
	if (elf_)
		elf_end(elf_);
}

Expected<void> ElfImage::open(std::span<const uint8_t> bytes, const char *what)
{
	if (!libelf_ready())
		return make_error(Errc::internal, "libelf initialisation failed: " + elf_error());
	if (bytes.empty())
		return make_error(Errc::invalid_format, fmt::format("{} is empty", what));
	buf_ = std::make_unique_for_overwrite<uint8_t[]>(bytes.size());
	std::memcpy(buf_.get(), bytes.data(), bytes.size());
	size_ = bytes.size();
	elf_ = elf_memory(reinterpret_cast<char *>(buf_.get()), size_);
	if (!elf_)
		return make_error(Errc::invalid_format,
		                  fmt::format("{}: libelf cannot open it: {}", what, elf_error()));
	if (elf_kind(elf_) != ELF_K_ELF)
		return make_error(Errc::invalid_format, fmt::format("{} is not an ELF file", what));
	return {};
}

Expected<void> check_section_bounds(const ElfImage &image, const GElf_Shdr &shdr, size_t index,
                                    const char *name)
{
	if (shdr.sh_type == SHT_NOBITS)
		return {};
	uint64_t end;
	if (__builtin_add_overflow(shdr.sh_offset, shdr.sh_size, &end) ||
	    end > image.bytes().size())
		return make_error(
		    Errc::invalid_format,
		    fmt::format("section [{}] {} (offset 0x{:x}, size 0x{:x}) extends "
		                "beyond the end of the file ({} bytes): truncated or "
		                "corrupt",
		                index, name, shdr.sh_offset, shdr.sh_size, image.bytes().size()));
	return {};
}

namespace
{

struct MdCtxDeleter {
	void operator()(EVP_MD_CTX *c) const noexcept
	{
		EVP_MD_CTX_free(c);
	}
};

void put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = uint8_t(v >> (8 * i));
}

} // namespace

Expected<ContentHash> content_hash(const ElfImage &image, size_t metadata_index)
{
	std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> ctx(EVP_MD_CTX_new());
	if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1)
		return make_error(Errc::internal, "OpenSSL: cannot initialise SHA-256");
	auto update = [&](const void *p, size_t n) {
		return EVP_DigestUpdate(ctx.get(), p, n) == 1;
	};
	static const char domain[] = "atlas-patch-v1";
	bool ok = update(domain, sizeof(domain)); // with its NUL

	Elf *elf = image.elf();
	size_t shnum, shstrndx;
	if (elf_getshdrnum(elf, &shnum) != 0 || elf_getshdrstrndx(elf, &shstrndx) != 0)
		return make_error(Errc::invalid_format,
		                  "patch: cannot read the section count: " + elf_error());
	for (size_t i = 1; i < shnum && ok; i++) {
		// The section name table is left out: names are hashed per section, and its
		// layout depends on the tool that added the metadata section's name.
		if (i == shstrndx)
			continue;
		Elf_Scn *scn = elf_getscn(elf, i);
		GElf_Shdr shdr;
		if (!scn || !gelf_getshdr(scn, &shdr))
			return make_error(Errc::invalid_format,
			                  fmt::format("patch: cannot read section header [{}]: {}",
			                              i, elf_error()));
		const char *name = elf_strptr(elf, shstrndx, shdr.sh_name);
		if (!name)
			return make_error(
			    Errc::invalid_format,
			    fmt::format("patch: section [{}] has an invalid name", i));
		if (auto b = check_section_bounds(image, shdr, i, name); !b)
			return b.error();
		ok = update(name, std::strlen(name) + 1);
		uint8_t fields[7 * 8];
		put_u64(fields + 0, shdr.sh_type);
		put_u64(fields + 8, shdr.sh_flags);
		put_u64(fields + 16, shdr.sh_addralign);
		put_u64(fields + 24, shdr.sh_entsize);
		put_u64(fields + 32, shdr.sh_link);
		put_u64(fields + 40, shdr.sh_info);
		put_u64(fields + 48, shdr.sh_size);
		ok = ok && update(fields, sizeof(fields));
		if (shdr.sh_type == SHT_NOBITS || shdr.sh_size == 0)
			continue;
		const uint8_t *content = image.bytes().data() + shdr.sh_offset;
		if (i == metadata_index &&
		    shdr.sh_size >= content_hash_offset + content_hash_size) {
			static const uint8_t zeros[content_hash_size] = {};
			ok = ok && update(content, content_hash_offset) &&
			     update(zeros, content_hash_size) &&
			     update(content + content_hash_offset + content_hash_size,
			            shdr.sh_size - content_hash_offset - content_hash_size);
		} else {
			ok = ok && update(content, shdr.sh_size);
		}
	}
	ContentHash out{};
	unsigned int len = 0;
	if (!ok || EVP_DigestFinal_ex(ctx.get(), out.data(), &len) != 1 || len != out.size())
		return make_error(Errc::internal, "OpenSSL: SHA-256 failed");
	return out;
}

} // namespace atlas::patch::detail
