// SPDX-License-Identifier: MIT
// Which symbol of the target a symbol of the original build's object is. Globals by name;
// locals by name and the STT_FILE they follow (gcc records only the source's base name, so
// two units built from a/util.c and b/util.c both say "util.c": then the unit whose other
// local symbols in the target match the object's decides).
#pragma once

#include "atlas/patch/target.hpp"
#include "elf_object.hpp"

namespace atlas::build_patch
{

patch::Result<const patch::TargetSymbol *> resolve_in_target(const patch::TargetSymbols &target,
                                                             const ObjectFile &object,
                                                             uint32_t symbol,
                                                             patch::SymbolKind kind);

} // namespace atlas::build_patch
