// SPDX-License-Identifier: MIT
// x86-64 relocation arithmetic for the supported types (docs/patch-format.md,
// "Relocations"): pure functions, so the loader's placement decisions (branch stubs, GOT and
// TLS slots) can be unit-tested without loading anything.
#pragma once

#include "atlas/patch/result.hpp"

#include <cstdint>
#include <span>
#include <string_view>

namespace atlas::patch
{

// The relocation types g++/gcc emit for -fPIC/-fPIE C and C++ that the loader supports.
bool is_supported_relocation(uint32_t type) noexcept;
// "R_X86_64_PC32", or "R_X86_64_<n>" for numbers unknown to this table.
std::string_view relocation_name(uint32_t type) noexcept;
// Why an unsupported type is refused and what to do instead; empty for supported types.
std::string_view relocation_refusal(uint32_t type) noexcept;
// Width in bytes of the field a supported type writes (4 or 8), 0 for unsupported types.
unsigned relocation_width(uint32_t type) noexcept;
// Whether the type's symbol must be STT_TLS.
bool is_tls_relocation(uint32_t type) noexcept;

// The indirection cell a type needs from the loader, whose address is RelocationInput::slot.
enum class Slot {
	none,
	got,        // GOTPCREL, GOTPCRELX, REX_GOTPCRELX: 8 bytes holding S
	got_tpoff,  // GOTTPOFF: 8 bytes holding S's offset from the thread pointer
	tls_index,  // TLSGD: struct tls_index {module id, offset of S in the module's block}
	tls_module, // TLSLD: struct tls_index {module id, 0}
};
Slot relocation_slot(uint32_t type) noexcept;

struct RelocationInput {
	uint32_t type = 0;
	uint64_t symbol = 0;    // S: the symbol's address (PLT32: the function or its branch stub)
	int64_t addend = 0;     // A
	uint64_t place = 0;     // P: the address of the field being relocated
	uint64_t slot = 0;      // address of the Slot cell, for types that need one
	int64_t tls_offset = 0; // TPOFF32: S's offset from the thread pointer (negative on x86-64);
	                        // DTPOFF32/64: S's offset in its module's TLS block
};

struct RelocationValue {
	uint64_t value = 0; // the bytes to store, little-endian, truncated to width
	unsigned width = 0; // 4 or 8
};

// Computes the field's value. Values that do not fit a 32-bit field are errors whose code says
// what bridges the distance: needs_branch_stub (PLT32: retry with S = a stub near P),
// needs_got_slot (the slot or tls_index is too far from P: allocate it near P) or out_of_range
// (nothing can: a direct data reference or a TLS offset that does not fit).
Expected<RelocationValue> compute_relocation(const RelocationInput &in);

// Stores a computed value at `offset` of `section`, checking bounds.
Expected<void> write_relocation(std::span<uint8_t> section, uint64_t offset,
                                const RelocationValue &value);

} // namespace atlas::patch
