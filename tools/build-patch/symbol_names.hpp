// SPDX-License-Identifier: MIT
// Compiler-made symbol names, normalised so that the two builds of one translation unit can be
// matched although gcc numbers some names in order of appearance: function-local statics
// (`calls.0`, `calls.3` once another static is added before it) and clones
// (`f.constprop.0`, `f.isra.1`, `f.part.0`, `f.cold`, `f.lto_priv.0`).
#pragma once

#include <string>
#include <string_view>

namespace atlas::build_patch
{

// The name with every all-digit dot component removed: "calls.0" -> "calls",
// "f.constprop.1.isra.0" -> "f.constprop.isra", "f.cold" -> "f.cold".
std::string normalized_name(std::string_view name);

// A `.cold` piece: the unlikely part gcc splits from a function (`f.cold`, `f.cold.3`). It
// is entered by jumps from its parent, never called: it is patched with its parent and never
// redirected.
bool is_cold_piece(std::string_view name);

// A clone whose calling convention gcc chooses (constant propagation, scalar replacement of
// aggregates, partial inlining): callers depend on its body, so a changed clone pulls its
// callers into the patch.
bool is_clone(std::string_view name);

// The source-level function a compiler-made name belongs to: "f.constprop.0.cold" -> "f".
std::string_view base_function(std::string_view name);

} // namespace atlas::build_patch
