// SPDX-License-Identifier: MIT
// Running the build, patch(1) and the real compiler: no shell unless the caller asks for one.
#pragma once

#include "atlas/patch/result.hpp"

#include <string>
#include <vector>

namespace atlas::build_patch
{

struct RunOptions {
	std::string cwd; // empty: the current directory
	std::vector<std::string>
	    env;         // KEY=VALUE entries added to (or replacing in) the environment
	std::string log; // stdout and stderr appended to this file; empty: inherited
	bool stdout_to_log_only = false;
};

// Runs argv[0] (looked up in PATH) and waits. Returns its exit status; a process killed by
// a signal, or one that cannot be started, is an error naming it.
patch::Result<int> run_process(const std::vector<std::string> &argv, const RunOptions &options);

// The last `lines` lines of a file (for error messages quoting a build log).
std::string tail_of_file(const std::string &path, size_t lines);

} // namespace atlas::build_patch
