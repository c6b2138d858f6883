// SPDX-License-Identifier: MIT
// What a gcc/g++ command line does, as far as the compiler wrapper needs to know: which C/C++
// sources it compiles into which objects, or which inputs it links into which output.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace atlas::build_patch
{

struct CompilerCommand {
	// -c: (source, object) pairs, paths as given (relative to the command's directory).
	std::vector<std::pair<std::string, std::string>> compiles;
	// Neither -c, -S nor -E: a link. Its output (a.out by default) and its non-source inputs
	// (objects, archives, libraries given as files).
	bool links = false;
	std::string link_output;
	std::vector<std::string> link_inputs;
	// C/C++ sources compiled and linked in one step: the wrapper cannot see their objects.
	std::vector<std::string> compiled_and_linked;
};

// Parses the arguments after the compiler's name.
CompilerCommand parse_compiler_command(const std::vector<std::string> &args);

// A C or C++ source by its extension (.c .cc .cp .cpp .cxx .c++ .C .CPP).
bool is_c_family_source(const std::string &path);

} // namespace atlas::build_patch
