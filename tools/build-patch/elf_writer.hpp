// SPDX-License-Identifier: MIT
// Writes an ELF64 x86-64 relocatable object from scratch: the patch object before its
// metadata is added (atlas::patch::build_patch adds that and validates the whole).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace atlas::build_patch
{

struct OutRelocation {
	uint64_t offset = 0;
	uint32_t type = 0;
	uint32_t symbol = 0; // a handle from RelocatableWriter::add_symbol
	int64_t addend = 0;
};

struct OutSection {
	std::string name;
	uint32_t type = 0;
	uint64_t flags = 0;
	uint64_t align = 1;
	uint64_t entsize = 0;
	uint64_t size = 0;          // for SHT_NOBITS; otherwise bytes.size()
	std::vector<uint8_t> bytes; // empty for SHT_NOBITS
	std::vector<OutRelocation> relocations;
};

struct OutSymbol {
	std::string name;
	uint8_t type = 0;
	uint8_t bind = 0;
	uint8_t other = 0;
	uint32_t section = 0; // 0: undefined; else a section index from add_section, or SHN_ABS
	uint64_t value = 0;
	uint64_t size = 0;
};

class RelocatableWriter
{
public:
	// The STT_FILE symbol's name (informative).
	explicit RelocatableWriter(std::string file_name);

	// Returns the section's index in the output (1, 2, ...).
	uint32_t add_section(OutSection section);
	OutSection &section(uint32_t index);
	const std::vector<OutSection> &sections() const noexcept
	{
		return sections_;
	}
	// Returns a handle for relocations (not the final symbol index: locals come first).
	uint32_t add_symbol(OutSymbol symbol);
	OutSymbol &symbol(uint32_t handle);
	// The STT_SECTION symbol of a section, created on first use.
	uint32_t section_symbol(uint32_t section);

	std::vector<uint8_t> write() const;

private:
	std::string file_name_;
	std::vector<OutSection> sections_; // [0] is the null section
	std::vector<OutSymbol> symbols_;   // [0] is the null symbol
	std::vector<uint32_t> section_symbols_;
};

} // namespace atlas::build_patch
