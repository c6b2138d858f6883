// SPDX-License-Identifier: MIT
// Does the original build reproduce the running binary? Each function the patch replaces must
// have, in the original build's object, the same size and the same bytes as in the target,
// except where the linker writes (relocated fields, and the instruction bytes its relaxations
// may rewrite). A target built from other sources or with other flags fails here, naming the
// function, instead of receiving a patch computed against code it does not run.
#pragma once

#include "elf_object.hpp"
#include "target_image.hpp"

#include <optional>
#include <string>

namespace atlas::build_patch
{

// Empty if `symbol` of `original` matches `target` byte for byte modulo relocations; else
// why not ("size 52 in the build, 48 in the target", "bytes differ at offset 0x1c").
std::optional<std::string> reproduction_mismatch(const ObjectFile &original, uint32_t symbol,
                                                 const TargetImage &target,
                                                 const patch::TargetSymbol &target_symbol);

} // namespace atlas::build_patch
