// SPDX-License-Identifier: MIT
// Target-side helpers: what the tool and the loader read from the object being patched (an
// executable or shared library): its GNU build-id and its symbol table, with local symbols
// attributed to the STT_FILE symbol they follow so that duplicate local names can be told apart.
#pragma once

#include "atlas/patch/format.hpp"
#include "atlas/patch/result.hpp"

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace atlas::patch
{

// The NT_GNU_BUILD_ID note of an ELF64 x86-64 file (from SHT_NOTE sections, or PT_NOTE
// segments when the section headers are gone).
Expected<std::vector<uint8_t>> read_build_id(std::span<const uint8_t> elf);

struct TargetSymbol {
	uint32_t index = 0; // in the table it was read from
	std::string name;
	std::string file;     // the preceding STT_FILE symbol's name, for local symbols; else empty
	uint8_t type = 0;     // STT_*
	uint8_t bind = 0;     // STB_*
	uint32_t section = 0; // SHN_UNDEF for undefined symbols
	uint64_t value = 0;
	uint64_t size = 0;

	bool defined() const noexcept
	{
		return section != 0;
	}
};

struct TargetSymbols {
	std::vector<TargetSymbol> symbols; // in table order; [0] is the null symbol
	bool dynamic = false; // read from .dynsym because there is no .symtab (no locals)
};

// Reads .symtab (or .dynsym when the object is stripped) of an ET_EXEC/ET_DYN x86-64 object.
Expected<TargetSymbols> read_symbols(std::span<const uint8_t> elf);

enum class SymbolKind {
	function, // STT_FUNC
	any,      // functions, data (STT_OBJECT, STT_TLS, STT_NOTYPE)
};

// The one defined symbol `ref` denotes. `ref.file` matches a symbol's file exactly, or its
// base name when `ref.file` contains no '/'. Not found and ambiguous are errors listing the
// candidates with the disambiguation that would select each.
Expected<const TargetSymbol *> resolve_symbol(const TargetSymbols &symbols, const SymbolRef &ref,
                                              SymbolKind kind);

// The SymbolRef that selects `sym` exactly: name, file (for locals), index and address.
SymbolRef exact_ref(const TargetSymbol &sym);

// "helper (local, file a.c, symtab index 34, 0x1139, 23 bytes)"
std::string describe(const TargetSymbol &sym);

} // namespace atlas::patch
