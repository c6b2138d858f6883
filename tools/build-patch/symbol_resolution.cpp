// SPDX-License-Identifier: MIT
#include "symbol_resolution.hpp"

#include <elf.h>
#include <map>
#include <set>

namespace atlas::build_patch
{

using patch::Errc;
using patch::Result;
using patch::TargetSymbol;

Result<const TargetSymbol *> resolve_in_target(const patch::TargetSymbols &target,
                                               const ObjectFile &object, uint32_t symbol,
                                               patch::SymbolKind kind)
{
	const ObjSymbol &s = object.symbols()[symbol];
	patch::SymbolRef ref;
	ref.name = s.name;
	if (s.local())
		ref.file = object.source_name();
	auto r = patch::resolve_symbol(target, ref, kind);
	if (r || r.error().code != Errc::ambiguous || !s.local())
		return r;

	// The object's own local names: what its unit contributes to the target's .symtab.
	std::set<std::string> names;
	for (const ObjSymbol &o : object.symbols())
		if (o.local() && o.in_section() && (o.type == STT_FUNC || o.type == STT_OBJECT))
			names.insert(o.name);
	// Each target symbol's unit: the STT_FILE symbol before it.
	std::map<uint32_t, size_t> score; // unit (index of its STT_FILE) -> names it shares
	const TargetSymbol *best = nullptr;
	uint32_t unit = 0;
	std::map<uint32_t, const TargetSymbol *> candidate; // unit -> the symbol in it
	for (const TargetSymbol &t : target.symbols) {
		if (t.type == STT_FILE) {
			unit = t.index;
			continue;
		}
		if (t.bind != STB_LOCAL || !t.defined())
			continue;
		if (names.count(t.name))
			score[unit]++;
		if (t.name == s.name && (t.file == ref.file || t.file.ends_with("/" + ref.file)))
			candidate[unit] = &t;
	}
	size_t top = 0, ties = 0;
	for (const auto &[u, t] : candidate) {
		if (score[u] > top) {
			top = score[u];
			best = t;
			ties = 1;
		} else if (score[u] == top) {
			ties++;
		}
	}
	if (best && ties == 1)
		return best;
	return r;
}

} // namespace atlas::build_patch
