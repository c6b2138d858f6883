// SPDX-License-Identifier: MIT
// x86-64 relocation arithmetic (System V psABI, x86-64 supplement, table "Relocation Types").
#include "atlas/patch/reloc.hpp"

#include <elf.h>
#include <fmt/format.h>

namespace atlas::patch
{

namespace
{

struct TypeInfo {
	uint32_t type;
	std::string_view name;
	std::string_view refusal; // empty: supported
};

// Every x86-64 type binutils defines, so that a refusal names the type, and why it is refused.
constexpr TypeInfo types[] = {
    {R_X86_64_NONE, "R_X86_64_NONE", "a no-op relocation is not expected in a patch"},
    {R_X86_64_64, "R_X86_64_64", ""},
    {R_X86_64_PC32, "R_X86_64_PC32", ""},
    {R_X86_64_GOT32, "R_X86_64_GOT32",
     "GOT-relative (not PC-relative) addressing: compile with -fPIC"},
    {R_X86_64_PLT32, "R_X86_64_PLT32", ""},
    {R_X86_64_COPY, "R_X86_64_COPY", "a dynamic-linker relocation cannot appear in an object file"},
    {R_X86_64_GLOB_DAT, "R_X86_64_GLOB_DAT",
     "a dynamic-linker relocation cannot appear in an object file"},
    {R_X86_64_JUMP_SLOT, "R_X86_64_JUMP_SLOT",
     "a dynamic-linker relocation cannot appear in an object file"},
    {R_X86_64_RELATIVE, "R_X86_64_RELATIVE",
     "a dynamic-linker relocation cannot appear in an object file"},
    {R_X86_64_GOTPCREL, "R_X86_64_GOTPCREL", ""},
    {R_X86_64_32, "R_X86_64_32",
     "32-bit absolute addresses need a non-PIC load below 4 GiB: compile with -fPIC"},
    {R_X86_64_32S, "R_X86_64_32S",
     "32-bit absolute addresses need a non-PIC load below 2 GiB: compile with -fPIC"},
    {R_X86_64_16, "R_X86_64_16",
     "16-bit absolute addresses: not emitted for C/C++ compiled with -fPIC"},
    {R_X86_64_PC16, "R_X86_64_PC16",
     "16-bit PC-relative fields: not emitted for C/C++ compiled with -fPIC"},
    {R_X86_64_8, "R_X86_64_8",
     "8-bit absolute addresses: not emitted for C/C++ compiled with -fPIC"},
    {R_X86_64_PC8, "R_X86_64_PC8",
     "8-bit PC-relative fields: not emitted for C/C++ compiled with -fPIC"},
    {R_X86_64_DTPMOD64, "R_X86_64_DTPMOD64",
     "a dynamic-linker relocation cannot appear in an object file"},
    {R_X86_64_DTPOFF64, "R_X86_64_DTPOFF64", ""},
    {R_X86_64_TPOFF64, "R_X86_64_TPOFF64",
     "a dynamic-linker relocation cannot appear in an object file"},
    {R_X86_64_TLSGD, "R_X86_64_TLSGD", ""},
    {R_X86_64_TLSLD, "R_X86_64_TLSLD", ""},
    {R_X86_64_DTPOFF32, "R_X86_64_DTPOFF32", ""},
    {R_X86_64_GOTTPOFF, "R_X86_64_GOTTPOFF", ""},
    {R_X86_64_TPOFF32, "R_X86_64_TPOFF32", ""},
    {R_X86_64_PC64, "R_X86_64_PC64",
     "64-bit PC-relative fields come from the large code model: compile without -mcmodel=large"},
    {R_X86_64_GOTOFF64, "R_X86_64_GOTOFF64",
     "GOT-relative offsets come from the large code model: compile without -mcmodel=large"},
    {R_X86_64_GOTPC32, "R_X86_64_GOTPC32",
     "the GOT base address is not provided: compile with -fPIC and the small code model"},
    {R_X86_64_GOT64, "R_X86_64_GOT64", "large-model GOT access: compile without -mcmodel=large"},
    {R_X86_64_GOTPCREL64, "R_X86_64_GOTPCREL64",
     "large-model GOT access: compile without -mcmodel=large"},
    {R_X86_64_GOTPC64, "R_X86_64_GOTPC64",
     "large-model GOT access: compile without -mcmodel=large"},
    {R_X86_64_GOTPLT64, "R_X86_64_GOTPLT64",
     "large-model GOT access: compile without -mcmodel=large"},
    {R_X86_64_PLTOFF64, "R_X86_64_PLTOFF64",
     "large-model PLT access: compile without -mcmodel=large"},
    {R_X86_64_SIZE32, "R_X86_64_SIZE32", "symbol-size relocations are not supported"},
    {R_X86_64_SIZE64, "R_X86_64_SIZE64", "symbol-size relocations are not supported"},
    {R_X86_64_GOTPC32_TLSDESC, "R_X86_64_GOTPC32_TLSDESC",
     "TLS descriptors are not supported: compile with -mtls-dialect=gnu (the default)"},
    {R_X86_64_TLSDESC_CALL, "R_X86_64_TLSDESC_CALL",
     "TLS descriptors are not supported: compile with -mtls-dialect=gnu (the default)"},
    {R_X86_64_TLSDESC, "R_X86_64_TLSDESC",
     "TLS descriptors are not supported: compile with -mtls-dialect=gnu (the default)"},
    {R_X86_64_IRELATIVE, "R_X86_64_IRELATIVE",
     "a dynamic-linker relocation cannot appear in an object file"},
    {R_X86_64_RELATIVE64, "R_X86_64_RELATIVE64",
     "a dynamic-linker relocation cannot appear in an object file"},
    {R_X86_64_GOTPCRELX, "R_X86_64_GOTPCRELX", ""},
    {R_X86_64_REX_GOTPCRELX, "R_X86_64_REX_GOTPCRELX", ""},
};

const TypeInfo *find(uint32_t type) noexcept
{
	for (const TypeInfo &t : types)
		if (t.type == type)
			return &t;
	return nullptr;
}

bool fits_s32(int64_t v) noexcept
{
	return v >= INT32_MIN && v <= INT32_MAX;
}

// S + A - P etc. in two's complement: addresses are unsigned, the result is a signed distance.
int64_t sdiff(uint64_t a, int64_t addend, uint64_t p) noexcept
{
	return int64_t(a + uint64_t(addend) - p);
}

// The true distance as a 128-bit value: S + A - P can wrap in 64 bits when S and P are far
// apart at the ends of the address space, and a wrapped value could look in range.
bool pcrel_fits(uint64_t s, int64_t addend, uint64_t p) noexcept
{
	__int128 v = __int128(s) + addend - __int128(p);
	return v >= INT32_MIN && v <= INT32_MAX;
}

RelocationValue u32(int64_t v)
{
	return RelocationValue{uint64_t(uint32_t(v)), 4};
}

} // namespace

bool is_supported_relocation(uint32_t type) noexcept
{
	const TypeInfo *t = find(type);
	return t && t->refusal.empty();
}

std::string_view relocation_name(uint32_t type) noexcept
{
	const TypeInfo *t = find(type);
	return t ? t->name : std::string_view("R_X86_64_<unknown>");
}

std::string_view relocation_refusal(uint32_t type) noexcept
{
	const TypeInfo *t = find(type);
	if (!t)
		return "not an x86-64 relocation type known to atlas";
	return t->refusal;
}

unsigned relocation_width(uint32_t type) noexcept
{
	switch (type) {
	case R_X86_64_64:
	case R_X86_64_DTPOFF64:
		return 8;
	case R_X86_64_PC32:
	case R_X86_64_PLT32:
	case R_X86_64_GOTPCREL:
	case R_X86_64_GOTPCRELX:
	case R_X86_64_REX_GOTPCRELX:
	case R_X86_64_TPOFF32:
	case R_X86_64_GOTTPOFF:
	case R_X86_64_TLSGD:
	case R_X86_64_TLSLD:
	case R_X86_64_DTPOFF32:
		return 4;
	default:
		return 0;
	}
}

bool is_tls_relocation(uint32_t type) noexcept
{
	switch (type) {
	case R_X86_64_TPOFF32:
	case R_X86_64_GOTTPOFF:
	case R_X86_64_TLSGD:
	case R_X86_64_TLSLD:
	case R_X86_64_DTPOFF32:
	case R_X86_64_DTPOFF64:
		return true;
	default:
		return false;
	}
}

Slot relocation_slot(uint32_t type) noexcept
{
	switch (type) {
	case R_X86_64_GOTPCREL:
	case R_X86_64_GOTPCRELX:
	case R_X86_64_REX_GOTPCRELX:
		return Slot::got;
	case R_X86_64_GOTTPOFF:
		return Slot::got_tpoff;
	case R_X86_64_TLSGD:
		return Slot::tls_index;
	case R_X86_64_TLSLD:
		return Slot::tls_module;
	default:
		return Slot::none;
	}
}

Expected<RelocationValue> compute_relocation(const RelocationInput &in)
{
	const std::string_view name = relocation_name(in.type);
	switch (in.type) {
	case R_X86_64_64: // S + A
		return RelocationValue{in.symbol + uint64_t(in.addend), 8};
	case R_X86_64_DTPOFF64: // offset in the module's TLS block + A
		return RelocationValue{uint64_t(in.tls_offset) + uint64_t(in.addend), 8};
	case R_X86_64_PC32: // S + A - P
		if (!pcrel_fits(in.symbol, in.addend, in.place))
			return make_error(
			    Errc::out_of_range,
			    fmt::format(
			        "{}: symbol 0x{:x} is more than 2 GiB from the place 0x{:x}; a "
			        "direct data reference cannot be bridged: load the patch "
			        "within +-2 GiB of the object defining the symbol",
			        name, in.symbol, in.place));
		return u32(sdiff(in.symbol, in.addend, in.place));
	case R_X86_64_PLT32: // L + A - P, L = S or a branch stub near P
		if (!pcrel_fits(in.symbol, in.addend, in.place))
			return make_error(
			    Errc::needs_branch_stub,
			    fmt::format(
			        "{}: call target 0x{:x} is more than 2 GiB from the place "
			        "0x{:x}: generate a branch stub near the place and relocate "
			        "against it",
			        name, in.symbol, in.place));
		return u32(sdiff(in.symbol, in.addend, in.place));
	case R_X86_64_GOTPCREL: // G + GOT + A - P: the slot holding S
	case R_X86_64_GOTPCRELX:
	case R_X86_64_REX_GOTPCRELX:
	case R_X86_64_GOTTPOFF: // the slot holding S's TP offset
	case R_X86_64_TLSGD:    // the tls_index for S
	case R_X86_64_TLSLD:    // the tls_index of S's module
		if (!pcrel_fits(in.slot, in.addend, in.place))
			return make_error(
			    Errc::needs_got_slot,
			    fmt::format("{}: slot 0x{:x} is more than 2 GiB from the place 0x{:x}: "
			                "allocate the slot in the patch's own mapping",
			                name, in.slot, in.place));
		return u32(sdiff(in.slot, in.addend, in.place));
	case R_X86_64_TPOFF32:  // S's TP offset + A (local-exec)
	case R_X86_64_DTPOFF32: // S's offset in its module's block + A
	{
		int64_t v;
		if (__builtin_add_overflow(in.tls_offset, in.addend, &v) || !fits_s32(v))
			return make_error(
			    Errc::out_of_range,
			    fmt::format("{}: TLS offset {} + addend {} does not fit a "
			                "signed 32-bit field",
			                name, in.tls_offset, in.addend));
		return u32(v);
	}
	default:
		return make_error(Errc::unsupported,
		                  fmt::format("{} ({}) is not supported: {}", name, in.type,
		                              relocation_refusal(in.type)));
	}
}

Expected<void> write_relocation(std::span<uint8_t> section, uint64_t offset,
                                const RelocationValue &v)
{
	if (v.width != 4 && v.width != 8)
		return make_error(Errc::invalid_format,
		                  fmt::format("relocation width {} is neither 4 nor 8", v.width));
	if (offset > section.size() || section.size() - offset < v.width)
		return make_error(
		    Errc::invalid_format,
		    fmt::format("relocation at offset 0x{:x} ({} bytes) lies beyond the "
		                "section ({} bytes)",
		                offset, v.width, section.size()));
	for (unsigned i = 0; i < v.width; i++)
		section[offset + i] = uint8_t(v.value >> (8 * i));
	return {};
}

} // namespace atlas::patch
