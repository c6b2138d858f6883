// SPDX-License-Identifier: MIT
// The member names of an ar(1) archive (GNU and BSD-style short names, GNU long names; thin
// archives name their members by path), so that the objects a link takes from a static
// library can be told apart from the other objects of a build.
#pragma once

#include "atlas/patch/result.hpp"

#include <string>
#include <vector>

namespace atlas::build_patch
{

// The member names (file names for a regular archive, paths as stored for a thin one), in
// archive order, without the symbol tables.
patch::Result<std::vector<std::string>> archive_members(const std::string &path);

} // namespace atlas::build_patch
