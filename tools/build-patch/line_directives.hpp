// SPDX-License-Identifier: MIT
// Keeping __LINE__ where the diff did not change code. A fix that adds or removes lines moves
// every line after it, and each __LINE__ there (assert, logging macros) changes an immediate
// or a string in functions the fix never touched; every such function would look changed.
// Like the kernel's newer in-tree livepatch builder, the patched source gets `#line N`
// directives right after each changed block, so that unchanged lines keep the numbers they
// have in the original source (and so in the running program). Only code inside a changed
// block sees new numbers, and that code is in the patch anyway.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace atlas::build_patch
{

// For each line of `b`, the index of the same line in `a` when it is unchanged (part of a
// longest common subsequence of lines), else -1. Returns an empty vector when the
// difference is too large to compute cheaply (more than `max_edits` changed lines).
std::vector<long> unchanged_lines(const std::vector<std::string_view> &a,
                                  const std::vector<std::string_view> &b, size_t max_edits = 20000);

struct LineFix {
	std::string text;
	size_t directives = 0; // how many #line directives were inserted
	bool gave_up = false;  // the difference was too large: text is `patched` unchanged
};

// `patched` with a `#line N` directive before each unchanged line whose number differs from
// its number in `original` (where a directive may stand: not inside a comment, a raw string
// or a continued line; it is then placed before the next line where it may).
LineFix keep_line_numbers(std::string_view original, std::string_view patched);

// The lines of a text (without their '\n').
std::vector<std::string_view> split_lines(std::string_view text);

} // namespace atlas::build_patch
