// SPDX-License-Identifier: MIT
// A loaded patch's call frame information: registered with libgcc's unwinder (exceptions
// propagate through patched functions) and turned into the search table libunwind's dynamic
// registry takes (LoadedPatch::unwind_table(), registered by the preload library's stack
// check through LoadOptions::on_mapped).
#include "loader_internal.hpp"

#include <algorithm>
#include <cstring>

extern "C" void __register_frame(void *begin);
extern "C" void __deregister_frame(void *begin);

namespace atlas::patch::detail
{

void register_eh_frame(void *eh_frame) noexcept
{
	__register_frame(eh_frame);
}

void deregister_eh_frame(void *eh_frame) noexcept
{
	__deregister_frame(eh_frame);
}

namespace
{

uint32_t u32(std::span<const uint8_t> eh, uint64_t at)
{
	uint32_t v;
	std::memcpy(&v, eh.data() + at, 4);
	return v;
}

uint64_t uleb(std::span<const uint8_t> eh, uint64_t &at, uint64_t end)
{
	uint64_t v = 0;
	unsigned shift = 0;
	while (at < end) {
		uint8_t b = eh[at++];
		if (shift < 64)
			v |= uint64_t(b & 0x7f) << shift;
		shift += 7;
		if (!(b & 0x80))
			break;
	}
	return v;
}

unsigned enc_size(uint8_t enc)
{
	switch (enc & 0x0f) {
	case 0x00: // DW_EH_PE_absptr
	case 0x04: // udata8
	case 0x0c: // sdata8
		return 8;
	case 0x03: // udata4
	case 0x0b: // sdata4
		return 4;
	case 0x02: // udata2
	case 0x0a: // sdata2
		return 2;
	default:
		return 0;
	}
}

// The FDE pointer encoding a CIE (the record [rec, end)) declares; 0 (absptr) without one.
uint8_t cie_fde_encoding(std::span<const uint8_t> eh, uint64_t rec, uint64_t end)
{
	uint64_t at = rec + 4 + 1; // version
	std::string aug;
	while (at < end && eh[at])
		aug += char(eh[at++]);
	at++;
	(void)uleb(eh, at, end); // code alignment
	(void)uleb(eh, at, end); // data alignment (sleb: only skipped)
	(void)uleb(eh, at, end); // return address register (version 3; 1 byte in v1)
	uint8_t fde_enc = 0;
	if (!aug.empty() && aug[0] == 'z') {
		(void)uleb(eh, at, end);
		for (size_t i = 1; i < aug.size() && at < end; i++) {
			if (aug[i] == 'R') {
				fde_enc = eh[at++];
			} else if (aug[i] == 'P') {
				uint8_t penc = eh[at++];
				at += enc_size(penc);
			} else if (aug[i] == 'L') {
				at++;
			}
		}
	}
	return fde_enc;
}

// The start address of the FDE whose initial location is at `at` (before `end`), encoded as
// `enc`, in the section mapped at `addr`; nullopt for an encoding it does not decode.
std::optional<uint64_t> fde_start(std::span<const uint8_t> eh, uint64_t at, uint64_t end,
                                  uint8_t enc, uint64_t addr)
{
	unsigned size = enc_size(enc);
	if (!size || at + size > end || (enc & 0x70) > 0x10)
		return std::nullopt;
	int64_t v = 0;
	if (size == 8) {
		std::memcpy(&v, eh.data() + at, 8);
	} else if (size == 4) {
		uint32_t w = u32(eh, at);
		v = (enc & 0x08) ? int64_t(int32_t(w)) : int64_t(w);
	} else {
		uint16_t h;
		std::memcpy(&h, eh.data() + at, 2);
		v = (enc & 0x08) ? int64_t(int16_t(h)) : int64_t(h);
	}
	return uint64_t(v) + ((enc & 0x70) == 0x10 ? addr + at : 0);
}

} // namespace

std::vector<std::array<int32_t, 2>> fde_table(std::span<const uint8_t> eh, uint64_t addr,
                                              uint64_t segbase)
{
	std::vector<std::array<int32_t, 2>> out;
	std::map<uint64_t, uint8_t> cie_encoding; // CIE offset -> FDE pointer encoding
	uint64_t off = 0;
	while (off + 8 <= eh.size()) {
		uint32_t len = u32(eh, off);
		if (len == 0 || len == 0xffffffff || len > eh.size() - off - 4)
			break; // terminator, 64-bit DWARF (not emitted by gcc) or garbage
		uint64_t rec = off + 4, end = rec + len;
		uint32_t id = u32(eh, rec);
		if (id == 0) { // CIE
			cie_encoding[off] = cie_fde_encoding(eh, rec, end);
		} else if (id <= rec) { // FDE; id: distance back to its CIE
			auto cie = cie_encoding.find(rec - id);
			uint8_t enc = cie == cie_encoding.end() ? 0 : cie->second;
			if (auto start = fde_start(eh, rec + 4, end, enc, addr))
				out.push_back({int32_t(int64_t(*start - segbase)),
				               int32_t(int64_t(addr + off - segbase))});
		}
		off = end;
	}
	std::sort(out.begin(), out.end());
	return out;
}

} // namespace atlas::patch::detail
