// SPDX-License-Identifier: MIT
// Assembles the patch object from the object diffs of the changed translation units: a new
// relocatable object holding only what the patch carries (the included functions, the data it
// owns, the string literals, constants and jump tables they use, the FDEs of its functions),
// its relocations rewritten so that everything else is a reference into the running program:
//
//   - a global symbol stays an undefined symbol of that name (the loader's normal lookup);
//   - a local symbol (a static function or variable, a function-local static) becomes an
//     undefined stand-in "<file>:<name>" with a reference record naming the program's symbol;
//   - a call or address of the entry of a function the patch redirects goes through its
//     replacement symbol, made global, which the loader binds to the original entry (so
//     function pointers compare equal and stacked patches take the newest code); jumps into a
//     function's body (jump tables, .cold pieces, unwind tables) stay within the patch.
#pragma once

#include "elf_object.hpp"
#include "object_diff.hpp"

#include <optional>
#include <string>
#include <vector>

namespace atlas::build_patch
{

// One changed translation unit.
struct UnitDiff {
	const ObjectFile *original = nullptr;
	const ObjectFile *patched = nullptr;
	const ObjectDiff *diff = nullptr;
};

// A redirect, with the target named as the original object names it.
struct PlannedRedirect {
	std::string replacement; // the patch's function symbol
	std::string target_name; // in the original object (and so in the program)
	std::string file;        // its STT_FILE for a local symbol, else empty
	size_t unit = 0;         // index into the units
	uint32_t original_symbol = 0;
};

// A reference record: the patch's undefined `patch_symbol` is the program's symbol
// `target_name`: a local one (`file` its STT_FILE; `original_symbol` in unit `unit`'s
// original object), or a global of hidden visibility, which the link made local (no file).
struct PlannedReference {
	std::string patch_symbol;
	std::string target_name;
	std::string file;
	std::optional<size_t> unit;
	uint32_t original_symbol = 0;
};

struct AssembledPatch {
	std::vector<uint8_t> object; // a relocatable object without metadata
	std::vector<PlannedRedirect> redirects;
	std::vector<PlannedReference> references;
	size_t sections = 0;
	size_t fdes = 0;
};

// `file_name` becomes the object's STT_FILE symbol.
patch::Result<AssembledPatch> assemble_patch(const std::vector<UnitDiff> &units,
                                             const std::string &file_name);

} // namespace atlas::build_patch
