// SPDX-License-Identifier: MIT
// Relocation arithmetic for every supported type, including overflow.
#include "atlas/patch/reloc.hpp"

#include <elf.h>
#include <gtest/gtest.h>
#include <vector>

namespace atlas::patch
{
namespace
{

constexpr uint64_t base = 0x5555'5555'0000; // a PIE-like address
constexpr uint64_t lib = 0x7fff'f7a0'0000;  // a library-like address, > 2 GiB away

RelocationInput in(uint32_t type, uint64_t s, int64_t a, uint64_t p, uint64_t slot = 0,
                   int64_t tls = 0)
{
	return RelocationInput{type, s, a, p, slot, tls};
}

uint64_t value(const RelocationInput &i, unsigned width)
{
	auto r = compute_relocation(i);
	EXPECT_TRUE(r.ok()) << relocation_name(i.type) << ": " << (r.ok() ? "" : r.error().message);
	if (!r.ok())
		return 0;
	EXPECT_EQ(r->width, width) << relocation_name(i.type);
	return r->value;
}

Errc code(const RelocationInput &i)
{
	auto r = compute_relocation(i);
	EXPECT_FALSE(r.ok()) << relocation_name(i.type);
	return r.ok() ? Errc::internal : r.error().code;
}

TEST(Reloc, Abs64)
{
	EXPECT_EQ(value(in(R_X86_64_64, base + 0x10, 8, 0), 8), base + 0x18);
	EXPECT_EQ(value(in(R_X86_64_64, base, -0x20, 0), 8), base - 0x20);
	EXPECT_EQ(value(in(R_X86_64_64, ~0ull, 1, 0), 8), 0u); // wraps, as the linker's does
}

TEST(Reloc, PC32)
{
	EXPECT_EQ(value(in(R_X86_64_PC32, base + 0x1000, -4, base + 0x100), 4),
	          0x1000u - 4 - 0x100);
	// Backwards: negative, two's complement in 32 bits.
	EXPECT_EQ(value(in(R_X86_64_PC32, base, -4, base + 0x100), 4), uint32_t(-0x104));
	// Exactly at the limits.
	EXPECT_EQ(value(in(R_X86_64_PC32, base + 0x7fffffff, 0, base), 4), 0x7fffffffu);
	EXPECT_EQ(value(in(R_X86_64_PC32, base - 0x80000000ull, 0, base), 4), 0x80000000u);
	// One past: a direct data reference cannot be bridged.
	EXPECT_EQ(code(in(R_X86_64_PC32, base + 0x80000000ull, 0, base)), Errc::out_of_range);
	EXPECT_EQ(code(in(R_X86_64_PC32, base - 0x80000001ull, 0, base)), Errc::out_of_range);
	EXPECT_EQ(code(in(R_X86_64_PC32, lib, -4, base)), Errc::out_of_range);
	// A 64-bit wrap must not look in range: S near 0, P near the top.
	EXPECT_EQ(code(in(R_X86_64_PC32, 0x10, 0, ~0ull - 0x10)), Errc::out_of_range);
}

TEST(Reloc, PLT32NeedsAStubBeyond2GiB)
{
	EXPECT_EQ(value(in(R_X86_64_PLT32, base + 0x2000, -4, base + 0x1000), 4), 0xffcu);
	auto r = compute_relocation(in(R_X86_64_PLT32, lib, -4, base + 0x1000));
	ASSERT_FALSE(r.ok());
	EXPECT_EQ(r.error().code, Errc::needs_branch_stub);
	EXPECT_NE(r.error().message.find("branch stub"), std::string::npos);
	// With a stub next to the place it fits.
	EXPECT_EQ(value(in(R_X86_64_PLT32, base + 0x3000, -4, base + 0x1000), 4), 0x1ffcu);
}

TEST(Reloc, GotRelativeTypesUseTheSlot)
{
	for (uint32_t t :
	     std::vector<uint32_t>{R_X86_64_GOTPCREL, R_X86_64_GOTPCRELX, R_X86_64_REX_GOTPCRELX}) {
		EXPECT_EQ(relocation_slot(t), Slot::got);
		// The symbol is far (a library), the slot is near: fine.
		EXPECT_EQ(value(in(t, lib, -4, base + 0x100, base + 0x8000), 4),
		          0x8000u - 0x100 - 4);
		EXPECT_EQ(code(in(t, lib, -4, base + 0x100, lib)), Errc::needs_got_slot);
	}
}

TEST(Reloc, InitialExecTls)
{
	EXPECT_EQ(relocation_slot(R_X86_64_GOTTPOFF), Slot::got_tpoff);
	EXPECT_EQ(value(in(R_X86_64_GOTTPOFF, 0, -4, base + 0x40, base + 0x1040), 4), 0xffcu);
	EXPECT_EQ(code(in(R_X86_64_GOTTPOFF, 0, -4, base, lib)), Errc::needs_got_slot);
}

TEST(Reloc, LocalExecTls)
{
	EXPECT_EQ(relocation_slot(R_X86_64_TPOFF32), Slot::none);
	// x86-64 TLS variant II: static TLS lies below the thread pointer.
	EXPECT_EQ(value(in(R_X86_64_TPOFF32, 0, 0, 0, 0, -0x40), 4), uint32_t(-0x40));
	EXPECT_EQ(value(in(R_X86_64_TPOFF32, 0, 8, 0, 0, -0x40), 4), uint32_t(-0x38));
	EXPECT_EQ(value(in(R_X86_64_TPOFF32, 0, 0, 0, 0, INT32_MIN), 4), 0x80000000u);
	EXPECT_EQ(code(in(R_X86_64_TPOFF32, 0, -1, 0, 0, INT32_MIN)), Errc::out_of_range);
	EXPECT_EQ(code(in(R_X86_64_TPOFF32, 0, 0, 0, 0, INT64_MIN)), Errc::out_of_range);
	EXPECT_EQ(code(in(R_X86_64_TPOFF32, 0, INT64_MIN, 0, 0, -1)), Errc::out_of_range);
}

TEST(Reloc, GeneralAndLocalDynamicTls)
{
	EXPECT_EQ(relocation_slot(R_X86_64_TLSGD), Slot::tls_index);
	EXPECT_EQ(relocation_slot(R_X86_64_TLSLD), Slot::tls_module);
	EXPECT_EQ(value(in(R_X86_64_TLSGD, 0, -4, base + 0x10, base + 0x2000), 4), 0x1fecu);
	EXPECT_EQ(value(in(R_X86_64_TLSLD, 0, -4, base + 0x10, base + 0x10), 4), uint32_t(-4));
	EXPECT_EQ(code(in(R_X86_64_TLSGD, 0, -4, base, lib)), Errc::needs_got_slot);
	EXPECT_EQ(code(in(R_X86_64_TLSLD, 0, -4, base, lib)), Errc::needs_got_slot);

	EXPECT_EQ(value(in(R_X86_64_DTPOFF32, 0, 4, 0, 0, 0x30), 4), 0x34u);
	EXPECT_EQ(code(in(R_X86_64_DTPOFF32, 0, 0, 0, 0, 0x80000000ll)), Errc::out_of_range);
	EXPECT_EQ(value(in(R_X86_64_DTPOFF64, 0, 4, 0, 0, 0x1'0000'0000ll), 8), 0x1'0000'0004u);
}

TEST(Reloc, UnsupportedTypesAreRefusedByName)
{
	for (uint32_t t : std::vector<uint32_t>{R_X86_64_32, R_X86_64_32S, R_X86_64_GOTPC32_TLSDESC,
	                                        R_X86_64_PC64, R_X86_64_NONE, R_X86_64_COPY, 250}) {
		EXPECT_FALSE(is_supported_relocation(t));
		EXPECT_EQ(relocation_width(t), 0u);
		EXPECT_FALSE(relocation_refusal(t).empty());
		auto r = compute_relocation(in(t, base, 0, base));
		ASSERT_FALSE(r.ok());
		EXPECT_EQ(r.error().code, Errc::unsupported);
		EXPECT_NE(r.error().message.find(relocation_name(t)), std::string::npos);
	}
	EXPECT_EQ(relocation_name(R_X86_64_32S), "R_X86_64_32S");
	EXPECT_NE(relocation_refusal(R_X86_64_32S).find("-fPIC"), std::string::npos);
	EXPECT_NE(relocation_refusal(R_X86_64_TLSDESC_CALL).find("-mtls-dialect=gnu"),
	          std::string::npos);
}

TEST(Reloc, SupportedSetIsExactlyTheDesigns)
{
	const std::vector<uint32_t> supported = {
	    R_X86_64_PC32,      R_X86_64_PLT32,         R_X86_64_64,       R_X86_64_GOTPCREL,
	    R_X86_64_GOTPCRELX, R_X86_64_REX_GOTPCRELX, R_X86_64_TPOFF32,  R_X86_64_GOTTPOFF,
	    R_X86_64_TLSGD,     R_X86_64_TLSLD,         R_X86_64_DTPOFF32, R_X86_64_DTPOFF64};
	for (uint32_t t = 0; t < 64; t++) {
		bool want = std::find(supported.begin(), supported.end(), t) != supported.end();
		EXPECT_EQ(is_supported_relocation(t), want) << relocation_name(t);
		EXPECT_EQ(relocation_width(t) != 0, want) << relocation_name(t);
		EXPECT_EQ(relocation_refusal(t).empty(), want) << relocation_name(t);
	}
	EXPECT_TRUE(is_tls_relocation(R_X86_64_TLSGD));
	EXPECT_FALSE(is_tls_relocation(R_X86_64_PC32));
}

TEST(Reloc, WriteLittleEndianWithBounds)
{
	std::vector<uint8_t> sec(12, 0xee);
	ASSERT_TRUE(write_relocation(sec, 2, RelocationValue{0x11223344, 4}).ok());
	EXPECT_EQ(sec[2], 0x44);
	EXPECT_EQ(sec[5], 0x11);
	EXPECT_EQ(sec[6], 0xee);
	ASSERT_TRUE(write_relocation(sec, 4, RelocationValue{0x0102030405060708ull, 8}).ok());
	EXPECT_EQ(sec[4], 0x08);
	EXPECT_EQ(sec[11], 0x01);
	EXPECT_FALSE(write_relocation(sec, 5, RelocationValue{0, 8}).ok());
	EXPECT_FALSE(write_relocation(sec, 9, RelocationValue{0, 4}).ok());
	EXPECT_FALSE(write_relocation(sec, ~0ull - 2, RelocationValue{0, 4}).ok());
	EXPECT_FALSE(write_relocation(sec, 0, RelocationValue{0, 2}).ok());
}

} // namespace
} // namespace atlas::patch
