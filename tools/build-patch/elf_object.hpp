// SPDX-License-Identifier: MIT
// A compiled x86-64 relocatable object (what `gcc -c` writes), read whole into memory: its
// sections with their bytes, its symbols and the relocations of each section. The object diff
// and the patch assembly work on this model; nothing keeps a libelf handle.
#pragma once

#include "atlas/patch/result.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace atlas::build_patch
{

struct ObjSection {
	std::string name;
	uint32_t type = 0;  // SHT_*
	uint64_t flags = 0; // SHF_*
	uint64_t align = 0;
	uint64_t entsize = 0;
	uint32_t link = 0;
	uint32_t info = 0;
	uint64_t size = 0;
	std::vector<uint8_t> bytes; // empty for SHT_NOBITS

	bool alloc() const noexcept;
	bool exec() const noexcept;
	bool write() const noexcept;
	bool tls() const noexcept;
	bool nobits() const noexcept;
	// SHF_MERGE|SHF_STRINGS: string literals, compared by content.
	bool strings() const noexcept;
	// SHF_MERGE without SHF_STRINGS and a non-zero entry size: a constant pool.
	bool constants() const noexcept;
	// Read-only once the program runs: not writable, or .data.rel.ro* (written only by the
	// dynamic linker before main, then protected by RELRO).
	bool read_only() const noexcept;
};

struct ObjSymbol {
	std::string name;
	uint8_t type = 0; // STT_*
	uint8_t bind = 0; // STB_*
	uint8_t other = 0;
	uint32_t section = 0; // SHN_UNDEF, SHN_ABS, SHN_COMMON or a section index
	uint64_t value = 0;
	uint64_t size = 0;

	bool defined() const noexcept;
	// Defined in a real section (not ABS/COMMON).
	bool in_section() const noexcept;
	bool local() const noexcept;
};

struct ObjRelocation {
	uint64_t offset = 0;
	uint32_t type = 0; // R_X86_64_*
	uint32_t symbol = 0;
	int64_t addend = 0;
};

class ObjectFile
{
public:
	// Reads and checks an ELF64 little-endian x86-64 ET_REL file.
	static patch::Result<ObjectFile> read(const std::string &path);

	const std::string &path() const noexcept
	{
		return path_;
	}
	// The STT_FILE symbol's name (what the compiler put in `.file`), or empty.
	const std::string &source_name() const noexcept
	{
		return source_name_;
	}
	const std::vector<ObjSection> &sections() const noexcept
	{
		return sections_;
	}
	const std::vector<ObjSymbol> &symbols() const noexcept
	{
		return symbols_;
	}
	// Relocations whose target is section `index`, sorted by offset (empty if none).
	const std::vector<ObjRelocation> &relocations(uint32_t index) const noexcept;
	// The SHT_RELA section that patches `index`, if any.
	std::optional<uint32_t> relocation_section(uint32_t index) const noexcept;

	// The FUNC/OBJECT/TLS symbol defined in section `index` that covers `offset` (a symbol
	// that starts at offset and has size 0 counts; among several, the first with the largest
	// size), or none. With -ffunction-sections/-fdata-sections each section has one.
	std::optional<uint32_t> owner(uint32_t index, uint64_t offset) const noexcept;
	// Every FUNC/OBJECT/TLS symbol defined in section `index`.
	std::vector<uint32_t> symbols_in(uint32_t index) const;

	// The symbol index of the named section's STT_SECTION symbol, if any.
	std::optional<uint32_t> section_symbol(uint32_t index) const noexcept;

private:
	std::string path_;
	std::string source_name_;
	std::vector<ObjSection> sections_;
	std::vector<ObjSymbol> symbols_;
	std::vector<std::vector<ObjRelocation>> relocations_; // by target section
	std::vector<uint32_t> rela_of_;                       // target section -> RELA section
	std::vector<std::vector<uint32_t>> by_section_;       // named symbols per section
	std::vector<uint32_t> section_symbols_;               // section -> STT_SECTION symbol
};

// The NUL-terminated string of a string section that contains `offset`: its start and text.
struct StringAt {
	uint64_t start = 0;
	std::string text;
};
std::optional<StringAt> string_at(const ObjSection &section, uint64_t offset);

// The number of bytes from a relocated field to the end of its instruction that the
// assembler folded into the addend for PC-relative types (4 for a 32-bit field at the end of
// the instruction, the common case); 0 for absolute types.
int64_t pc_bias(uint32_t type) noexcept;

// R_X86_64_* name for messages.
std::string relocation_type_name(uint32_t type);

} // namespace atlas::build_patch
