// SPDX-License-Identifier: MIT
// Internals of atlas::patch shared by its translation units; not installed.
#pragma once

#include "atlas/error_util.hpp"
#include "atlas/patch/format.hpp"
#include "atlas/patch/result.hpp"

#include <gelf.h>
#include <libelf.h>
#include <memory>
#include <span>
#include <string>

namespace atlas::patch::detail
{

// The exception wall of the library's API (atlas/error_util.hpp): exceptions (std::bad_alloc
// from a huge crafted count, a std::length_error) must never leave it.
using atlas::detail::guard;

// A symbol reference for messages: its name and whatever disambiguation it carries.
std::string describe_symbol_ref(const SymbolRef &r);

// elf_version() must be called before any other libelf function; once per process.
bool libelf_ready() noexcept;

// The message of libelf's last error.
std::string elf_error();

// An Elf* over a private copy of an in-memory image. libelf's elf_memory takes a mutable
// buffer and may keep pointers into it, so the copy lives as long as the handle.
class ElfImage
{
public:
	ElfImage() = default;
	ElfImage(const ElfImage &) = delete;
	ElfImage &operator=(const ElfImage &) = delete;
	~ElfImage();

	// Opens the image; the error names `what` (e.g. "patch", "target").
	Expected<void> open(std::span<const uint8_t> bytes, const char *what);
	Elf *elf() const noexcept
	{
		return elf_;
	}
	std::span<const uint8_t> bytes() const noexcept
	{
		return {buf_.get(), size_};
	}

private:
	std::unique_ptr<uint8_t[]> buf_;
	size_t size_ = 0;
	Elf *elf_ = nullptr;
};

// The SHA-256 content hash over the patch's sections (docs/patch-format.md, "Content
// hash"). `metadata_index` is the metadata section, whose hash field is hashed as zeros.
Expected<ContentHash> content_hash(const ElfImage &image, size_t metadata_index);

// Section `index` lies within the image (or is SHT_NOBITS).
Expected<void> check_section_bounds(const ElfImage &image, const GElf_Shdr &shdr, size_t index,
                                    const char *name);

} // namespace atlas::patch::detail
