// SPDX-License-Identifier: MIT
#include "reproduce_check.hpp"

#include <elf.h>
#include <fmt/format.h>
#include <vector>

namespace atlas::build_patch
{

namespace
{

// The bytes around a relocation at `off` that the linker may change: [off - before,
// off + after).
struct Span {
	uint64_t before, after;
};

Span linker_written(uint32_t type)
{
	switch (type) {
	case R_X86_64_64:
	case R_X86_64_DTPOFF64:
	case R_X86_64_TPOFF64:
		return {0, 8};
	case R_X86_64_GOTPCRELX:
	case R_X86_64_REX_GOTPCRELX:
		// mov -> lea, call/jmp *mem -> addr32 call/jmp, test/binop -> immediate forms.
		return {3, 4};
	case R_X86_64_GOTTPOFF:
		// initial-exec -> local-exec: mov foo@gottpoff(%rip) -> mov $tpoff.
		return {3, 4};
	case R_X86_64_TLSGD:
		// general-dynamic -> initial/local-exec: the whole lea + call sequence.
		return {4, 12};
	case R_X86_64_TLSLD:
		return {3, 9};
	default:
		return {0, 4};
	}
}

} // namespace

std::optional<std::string> reproduction_mismatch(const ObjectFile &original, uint32_t symbol,
                                                 const TargetImage &target,
                                                 const patch::TargetSymbol &ts)
{
	const ObjSymbol &s = original.symbols()[symbol];
	if (s.size != ts.size)
		return fmt::format("{} bytes in the original build, {} in the target", s.size,
		                   ts.size);
	const ObjSection &sec = original.sections()[s.section];
	if (s.value + s.size > sec.bytes.size())
		return fmt::format("its section {} is shorter than the symbol", sec.name);
	auto tb = target.bytes_at(ts.value, ts.size);
	if (!tb)
		return fmt::format(
		    "its bytes (0x{:x}, {} bytes) are not in a section of the target", ts.value,
		    ts.size);
	std::vector<bool> mask(s.size, false);
	for (const ObjRelocation &r : original.relocations(s.section)) {
		if (r.offset < s.value || r.offset >= s.value + s.size)
			continue;
		Span w = linker_written(r.type);
		uint64_t at = r.offset - s.value;
		uint64_t from = at >= w.before ? at - w.before : 0;
		for (uint64_t i = from; i < at + w.after && i < s.size; i++)
			mask[i] = true;
	}
	for (uint64_t i = 0; i < s.size; i++)
		if (!mask[i] && sec.bytes[s.value + i] != (*tb)[i])
			return fmt::format(
			    "the code differs at offset 0x{:x} (0x{:02x} in the original "
			    "build, 0x{:02x} in the target)",
			    i, sec.bytes[s.value + i], (*tb)[i]);
	return std::nullopt;
}

} // namespace atlas::build_patch
