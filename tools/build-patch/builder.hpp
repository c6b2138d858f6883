// SPDX-License-Identifier: MIT
// `atlas build-patch`: from an upstream source diff to a live patch of a running binary
// (docs/patch-builder.md). Copies the source tree, builds it through the compiler wrapper,
// applies the diff, rebuilds, diffs the objects that changed, checks that the original build
// reproduces the target's functions and writes the patch (the format of
// docs/patch-format.md, through atlas::patch::build_patch).
#pragma once

#include "object_diff.hpp"

#include <string>
#include <utility>
#include <vector>

namespace atlas::build_patch
{

class Progress;

struct BuildOptions {
	std::string source_dir;
	std::string diff;
	std::string target;
	std::string build_command;     // empty: default_build_command()
	std::string configure_command; // run before the original build only (e.g. ./configure)
	std::string output;            // empty: <build-id>-<name>.patch.o in the current directory
	std::string name;              // empty: from the diff's file name
	std::string work_dir;          // empty: a temporary directory, removed unless kept
	bool keep_work = false;
	bool keep_lines = true; // insert #line directives (false only to show why they matter)
	std::string self_exe;   // this program, for the compiler links
	// The cache of original builds (build_cache.hpp): empty means default_cache_dir().
	std::string cache_dir;
	bool use_cache = true;
	// --original-build: source_dir is already built (the build the target came from): its
	// objects are the original build's, only the patched build runs.
	bool prebuilt = false;
};

// Exit statuses of atlas build-patch.
enum class Outcome {
	written = 0,   // the patch was written
	failed = 1,    // a build failed, the diff did not apply, an I/O or internal error
	usage = 2,     // bad command line
	refused = 3,   // the change cannot be live-patched (the reasons name the symbols)
	no_change = 4, // the diff changes no code of this binary
	mismatch = 5,  // the target cannot be patched from this tree: flags missing, or the
	               // original build does not reproduce its functions
};

struct FunctionReport {
	std::string name;
	std::string why;
	std::string because;
	bool redirected = false;
};

struct UnitReport {
	std::string source;
	std::string object;
	std::vector<FunctionReport> functions;
	std::vector<std::string> own_data;
};

struct BuildReport {
	Outcome outcome = Outcome::failed;
	std::string message;
	std::string output;
	std::string name;
	std::string identity;
	std::string build_id;
	std::string target;
	std::vector<UnitReport> units;
	std::vector<Refusal> refusals;
	std::vector<std::string> mismatches;
	std::vector<std::pair<std::string, std::string>> redirects;  // target -> replacement
	std::vector<std::pair<std::string, std::string>> references; // patch symbol -> target
	std::vector<std::pair<std::string, double>> timings;
	std::vector<std::string> warnings;
	size_t line_directives = 0;
	size_t objects_built = 0;
	size_t objects_rebuilt = 0;
	std::string work_dir; // when kept
	// The original build: "built" (no cache), "stored" (built, then kept in the cache),
	// "reused" (copied from the cache), "given" (--original-build); the cache entry.
	std::string original_build = "built";
	std::string cache_entry;
};

BuildReport build_patch_from_diff(const BuildOptions &options, Progress &progress);

} // namespace atlas::build_patch
