// SPDX-License-Identifier: MIT
// Producing a patch file: the last step of atlas-mkpatch and of the automatic patch builder.
#pragma once

#include "atlas/patch/format.hpp"
#include "atlas/patch/result.hpp"

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace atlas::patch
{

// Appends the `.atlas.patch` section holding `metadata` to a compiled x86-64 relocatable
// object (with libelf, leaving the compiler's sections untouched), computes and stores the
// content hash (metadata.content_hash is ignored), and parses the result with every check of
// parse_patch(): what this returns is a valid patch, or an error saying why it would not be.
Expected<std::vector<uint8_t>> build_patch(std::span<const uint8_t> object,
                                           const Metadata &metadata);

// Writes bytes to `path` atomically (a temporary file in the same directory, then rename).
Expected<void> write_file(const std::string &path, std::span<const uint8_t> bytes);

} // namespace atlas::patch
