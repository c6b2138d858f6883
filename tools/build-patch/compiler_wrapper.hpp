// SPDX-License-Identifier: MIT
// The compiler wrapper: during a build, `gcc`, `cc`, `g++`, `c++` (and their target- and
// version-qualified names) in PATH are links to atlas-build-patch, which runs the real compiler
// with the same arguments (plus -ffile-prefix-map, so that __FILE__ and debug paths name the
// user's source tree, not the builder's copy) and records what it compiled and linked
// (build_records.hpp).
#pragma once

#include "atlas/patch/result.hpp"

#include <string>
#include <utility>
#include <vector>

namespace atlas::build_patch
{

// argv[0] names a compiler and the builder's environment is set: run as the wrapper.
bool is_wrapper_invocation(const char *argv0);

// The wrapper's main; returns the real compiler's exit status.
int wrapper_main(int argc, char **argv);

// Each compiler name the wrapper stands in for that PATH has, with the real compiler's path.
std::vector<std::pair<std::string, std::string>> real_compilers();

// Creates `dir` with a link to `self` for each compiler name found in PATH.
patch::Result<void> install_compiler_shims(const std::string &dir, const std::string &self);

} // namespace atlas::build_patch
