// SPDX-License-Identifier: MIT
// Applying the fix (a unified diff, as `git format-patch`, `diff -u` or a Debian quilt patch
// write it) to the builder's copy of the source tree with patch(1), then keeping the line
// numbers of unchanged lines (line_directives.hpp) in every C/C++ file it touched.
#pragma once

#include "atlas/patch/result.hpp"

#include <string>
#include <vector>

namespace atlas::build_patch
{

struct DiffFile {
	std::string old_path; // as written in the diff ("a/src/x.c"), "/dev/null" for a new file
	std::string new_path; // "/dev/null" for a deleted file
};

// The files a unified diff names, in order.
std::vector<DiffFile> files_of_diff(const std::string &text);

struct AppliedDiff {
	int strip = 1;                     // the -p level that matched the tree
	std::vector<std::string> modified; // relative to the tree
	std::vector<std::string> created;
	std::vector<std::string> deleted;
	size_t line_directives = 0;
	std::vector<std::string> warnings;
};

// Applies `diff_path` to `tree`; patch(1)'s output goes to `log`. When keep_lines, inserts
// #line directives into the touched C/C++ sources and headers.
patch::Result<AppliedDiff> apply_diff(const std::string &tree, const std::string &diff_path,
                                      const std::string &log, bool keep_lines);

} // namespace atlas::build_patch
