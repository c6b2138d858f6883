// SPDX-License-Identifier: MIT
// What the compiler wrapper records of a build: one JSON file per compiler run in the phase's
// record directory (so that parallel make needs no locking), and a copy of each object it
// produced, taken right after the compile (later steps of the build may change or delete it).
#pragma once

#include "atlas/patch/result.hpp"

#include <string>
#include <vector>

namespace atlas::build_patch
{

// Environment of the wrapped compilers (set by the builder for each build).
inline constexpr const char *env_record_dir = "ATLAS_BUILD_PATCH_RECORDS";
inline constexpr const char *env_shim_dir = "ATLAS_BUILD_PATCH_SHIMS";
// Set in the environment of the compiler the wrapper runs: a wrapper started with it set was
// called by that compiler (a launcher such as ccache that found the shim in PATH).
inline constexpr const char *env_in_compiler = "ATLAS_BUILD_PATCH_IN_COMPILER";
inline constexpr const char *env_prefix_map = "ATLAS_BUILD_PATCH_PREFIX_MAP";

struct CompileRecord {
	std::string compiler;          // the real compiler run
	std::vector<std::string> args; // its arguments (after the compiler)
	std::string cwd;
	std::string source; // absolute
	std::string object; // absolute path the build wrote
	std::string copy;   // the wrapper's copy of it
	long long sequence = 0;
};

struct LinkRecord {
	std::string output;              // absolute
	std::vector<std::string> inputs; // absolute
	std::vector<std::string> compiled_and_linked;
	long long sequence = 0;
};

struct BuildRecords {
	std::vector<CompileRecord> compiles; // in the order they finished
	std::vector<LinkRecord> links;
};

patch::Result<void> write_compile_record(const std::string &dir, const CompileRecord &r);
patch::Result<void> write_link_record(const std::string &dir, const LinkRecord &r);
patch::Result<BuildRecords> read_build_records(const std::string &dir);

// A sequence number that orders records of one build (monotonic clock, nanoseconds).
long long record_sequence();

} // namespace atlas::build_patch
