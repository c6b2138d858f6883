// SPDX-License-Identifier: MIT
// The builder's copy of the source tree and the builds run in it through the compiler
// wrapper: the original build first (everything), then, after the diff is applied, the
// patched build, which the build system makes incremental (only what the diff touched is
// recompiled, plus the link).
#pragma once

#include "build_records.hpp"

#include <filesystem>
#include <string>

namespace atlas::build_patch
{

class WorkTree
{
public:
	// Copies `source` (without .git, keeping modification times, which make and autotools
	// rely on) to <work>/tree and installs the compiler links in <work>/bin.
	static patch::Result<WorkTree> create(const std::string &work, const std::string &source,
	                                      const std::string &self_exe);
	// The same with <work>/tree a copy of `built_tree`, an original build of `source`
	// kept by the cache (build_cache.hpp).
	static patch::Result<WorkTree> restore(const std::string &work,
	                                       const std::string &built_tree,
	                                       const std::string &source,
	                                       const std::string &self_exe);

	const std::string &tree() const noexcept
	{
		return tree_;
	}
	const std::string &work() const noexcept
	{
		return work_;
	}
	// Runs `command` (through /bin/sh) in the tree with the wrapper in PATH; the records
	// go to <work>/records/<phase>, the output to <work>/<phase>.log. A failing build is an
	// error quoting the end of the log.
	patch::Result<BuildRecords> build(const std::string &phase, const std::string &command);
	std::string log_of(const std::string &phase) const;

	// How many files the copy took.
	size_t files_copied() const noexcept
	{
		return files_;
	}

private:
	std::string work_, tree_, shims_, source_;
	size_t files_ = 0;
};

// Copies the directory `from` to `to` (created), without .git directories, keeping the
// files' modification times; returns how many files it copied.
patch::Result<size_t> copy_tree(const std::filesystem::path &from, const std::filesystem::path &to);

// The build command for a tree that does not say: make, in parallel.
std::string default_build_command(const std::string &tree);

} // namespace atlas::build_patch
