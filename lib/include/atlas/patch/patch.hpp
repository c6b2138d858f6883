// SPDX-License-Identifier: MIT
// A parsed, validated patch: the in-memory model the loader consumes. parse_patch() checks
// everything the loader relies on (docs/patch-format.md, "Validation"), so a model that exists
// is internally consistent: every index is in range, every relocation lies inside its section
// and has a supported type, every redirect names a defined function of the patch.
#pragma once

#include "atlas/patch/format.hpp"
#include "atlas/patch/result.hpp"

#include <cstdint>
#include <span>
#include <string>
#include <vector>

// The public API: visible outside libatlas.so, whose other symbols are hidden (lib/libatlas.cmake).
#pragma GCC visibility push(default)

namespace atlas::patch
{

struct Section {
	std::string name;
	uint32_t type = 0;  // SHT_*
	uint64_t flags = 0; // SHF_*
	uint64_t align = 0; // sh_addralign: 0 or a power of two
	uint64_t entsize = 0;
	uint32_t link = 0;
	uint32_t info = 0;
	uint64_t size = 0;          // in memory; for SHT_NOBITS there are no bytes
	std::vector<uint8_t> bytes; // the file contents (empty for SHT_NOBITS)

	bool alloc() const noexcept;
	bool exec() const noexcept;
	bool write() const noexcept;
	bool nobits() const noexcept;
};

// Special section values of Symbol::section (the ELF SHN_* values).
inline constexpr uint32_t section_undef = 0;    // SHN_UNDEF
inline constexpr uint32_t section_abs = 0xfff1; // SHN_ABS

struct Symbol {
	std::string name;
	uint8_t type = 0;       // STT_*
	uint8_t bind = 0;       // STB_*
	uint8_t visibility = 0; // STV_*
	uint32_t section = 0; // a section index, section_undef or section_abs (SHN_XINDEX resolved)
	uint64_t value = 0;   // offset within `section` for defined symbols
	uint64_t size = 0;

	bool defined() const noexcept
	{
		return section != section_undef;
	}
};

struct Relocation {
	uint64_t offset = 0; // within the target section
	uint32_t type = 0;   // R_X86_64_*, always one of the supported set (reloc.hpp)
	uint32_t symbol = 0; // index into Patch::symbols, never 0
	int64_t addend = 0;
};

struct RelocationSection {
	uint32_t index = 0;  // the SHT_RELA section itself
	uint32_t target = 0; // the section the entries patch (always SHF_ALLOC)
	std::vector<Relocation> entries;
};

struct Patch {
	Metadata metadata;
	std::vector<Section> sections; // indexed by ELF section index; [0] is the null section
	std::vector<Symbol> symbols;   // indexed by ELF symbol index; [0] is the null symbol
	// Relocations of loaded (SHF_ALLOC) sections. Relocations of non-loaded sections (debug
	// information) are not part of the model: the loader never applies them.
	std::vector<RelocationSection> relocations;
	uint32_t metadata_section = 0;
	// redirect_symbols[i]: the patch symbol metadata.redirects[i].replacement names.
	std::vector<uint32_t> redirect_symbols;
	// reference_symbols[i]: the undefined patch symbols metadata.references[i] binds (an
	// object file normally has one per name; all are listed).
	std::vector<std::vector<uint32_t>> reference_symbols;

	Identity identity() const
	{
		return identity_of(metadata);
	}
};

struct ParseOptions {
	// Recompute the content hash and refuse a mismatch. Only the fuzzer turns this off, so
	// that mutated inputs reach the checks behind it.
	bool verify_content_hash = true;
};

Expected<Patch> parse_patch(std::span<const uint8_t> bytes, const ParseOptions &options = {});

// Reads a whole file (patches and targets are read into memory before parsing).
Expected<std::vector<uint8_t>> read_file(const std::string &path);

// Recomputes the content hash of a patch image whose metadata section is present and stores it
// in that section. Used by the writer (writer.hpp) and by tests that craft patches.
Expected<void> seal_content_hash(std::vector<uint8_t> &patch);

} // namespace atlas::patch

#pragma GCC visibility pop
