// SPDX-License-Identifier: MIT
// The object diff of one translation unit: its object from the original build against its
// object from the patched build (both compiled with -ffunction-sections -fdata-sections).
// Functions are compared by bytes and relocations, relocation targets normalised so that
// only real changes count: string literals and constant-pool entries by content, symbols by
// their match in the other object (local statics and clones by name without gcc's numbering),
// sections without a symbol (jump tables) by their own content, recursively. The result says
// which functions the patch must carry and why, which data it must carry, and what cannot be
// live-patched at all.
#pragma once

#include "elf_object.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace atlas::build_patch
{

// Which symbol of one object is which of the other (FUNC, OBJECT and TLS symbols defined in
// a section).
struct SymbolMatch {
	std::vector<std::optional<uint32_t>> patched_of;  // original symbol -> patched symbol
	std::vector<std::optional<uint32_t>> original_of; // patched symbol -> original symbol
};

SymbolMatch match_symbols(const ObjectFile &original, const ObjectFile &patched);

// Why a function of the patched object is in the patch.
enum class Why {
	changed,             // its code or relocations differ
	added,               // new in the patched source
	calls_changed_clone, // a clone it calls changed (callers depend on a clone's conventions)
	uses_changed_data,   // read-only data it uses changed (the patch carries the new copy)
	cold_part_changed,   // its .cold piece changed
	part_of,             // a .cold piece of a function in the patch
};
std::string to_string(Why why);

struct IncludedFunction {
	uint32_t symbol = 0;              // in the patched object
	std::optional<uint32_t> original; // its match in the original object (none if added)
	Why why = Why::changed;
	std::string because; // the symbol behind `why` (the clone, the datum, the piece, ...)
	bool cold = false;   // a .cold piece
	// A local clone (.constprop, .isra, .part): only its unit's functions call it, and
	// every one of them is in the patch (they call a changed clone), so the patch's copy
	// needs no redirect. Not redirecting it is also what keeps a clone shorter than the
	// jump patchable, and an old caller still running keeps calling the old clone, whose
	// calling convention it was compiled for.
	bool local_clone = false;
	// Redirected from the original: matched, not a .cold piece, not a local clone.
	bool redirected() const noexcept;
};

struct Refusal {
	std::string symbol;
	std::string reason;
};

struct ObjectDiff {
	SymbolMatch match;
	// Functions the patch carries, in patched-object symbol order.
	std::vector<IncludedFunction> functions;
	// Data of the patched object the patch defines itself: new data, and read-only local
	// data whose contents changed (with every function that uses it). Every other datum is
	// the running program's instance.
	std::vector<uint32_t> own_data;
	// Changes that cannot be live-patched; the patch must not be built when not empty.
	std::vector<Refusal> refusals;

	bool empty() const noexcept
	{
		return functions.empty() && refusals.empty();
	}
};

ObjectDiff diff_objects(const ObjectFile &original, const ObjectFile &patched);

// What a relocation points at, normalised (exposed for the assembly and the tests).
struct RelocationTarget {
	enum Kind {
		undefined, // an undefined symbol: `name`
		absolute,  // SHN_ABS: `offset` is the value
		symbol,    // a FUNC/OBJECT/TLS symbol `symbol_index`, `offset` bytes from its start
		string,    // a string literal `text`, `offset` into it
		constant,  // a constant-pool entry `text` (raw bytes), `offset` into it
		anonymous, // a section without a symbol there (a jump table): `section_index`,
		           // `offset`
	} kind = undefined;
	uint32_t symbol_index = 0;
	uint32_t section_index = 0;
	int64_t offset = 0;
	std::string name;
	std::string text;
};

RelocationTarget relocation_target(const ObjectFile &obj, const ObjRelocation &r);

} // namespace atlas::build_patch
