// SPDX-License-Identifier: MIT
// libFuzzer target: parse_patch() on arbitrary bytes must return an error or a consistent
// model, never crash, leak or hit undefined behaviour (the loader parses inside the process
// being patched). The target-side readers get the same bytes: the loader runs them on the
// objects mapped in the process.
#include "atlas/patch/patch.hpp"
#include "atlas/patch/reloc.hpp"
#include "atlas/patch/target.hpp"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	using namespace atlas::patch;
	std::span<const uint8_t> bytes(data, size);
	// Without the hash check, mutated inputs reach every check behind it.
	auto p = parse_patch(bytes, ParseOptions{false});
	if (p.ok()) {
		// The model's promises: indices and relocations in range.
		for (const RelocationSection &rs : p->relocations) {
			const Section &t = p->sections.at(rs.target);
			for (const Relocation &r : rs.entries) {
				if (r.symbol == 0 || r.symbol >= p->symbols.size() ||
				    !is_supported_relocation(r.type) ||
				    r.offset + relocation_width(r.type) > t.size)
					__builtin_trap();
			}
		}
		for (uint32_t i : p->redirect_symbols)
			if (i >= p->symbols.size() || !p->symbols[i].defined())
				__builtin_trap();
		(void)parse_patch(bytes); // and with the hash check
	}
	(void)read_build_id(bytes);
	auto syms = read_symbols(bytes);
	if (syms.ok()) {
		(void)resolve_symbol(*syms, SymbolRef{"helper", "dup_a.c", {}, {}},
		                     SymbolKind::function);
		(void)resolve_symbol(*syms, SymbolRef{"counter", "", {}, {}}, SymbolKind::any);
	}
	return 0;
}
