// SPDX-License-Identifier: MIT
// atlas-build-patch (also `atlas build-patch`): builds a live patch from a source diff
// (docs/patch-builder.md). Invoked as gcc/cc/g++/c++ by a build it runs, it is the compiler
// wrapper instead.
#include "builder.hpp"
#include "compiler_wrapper.hpp"
#include "progress.hpp"
#include "report.hpp"

#include <CLI/CLI.hpp>
#include <climits>
#include <fmt/format.h>
#include <unistd.h>

namespace
{

std::string self_path(const char *argv0)
{
	char buf[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
	if (n > 0)
		return std::string(buf, size_t(n));
	return argv0;
}

} // namespace

int main(int argc, char **argv)
{
	using namespace atlas::build_patch;
	if (is_wrapper_invocation(argv[0]))
		return wrapper_main(argc, argv);

	CLI::App app{"atlas build-patch: build a live patch of a running binary from a source "
	             "diff (docs/patch-builder.md)"};
	app.name("atlas build-patch");
	BuildOptions o;
	bool as_json = false, print = false;
	app.add_option("--src", o.source_dir, "the source tree the target was built from (clean)");
	std::string original_build;
	app.add_option("--original-build", original_build,
	               "instead of --src: the tree the target was built in, already built (its "
	               "objects are the original build's; only the patched build runs)");
	app.add_option("--diff", o.diff, "the fix: a unified diff against that tree");
	app.add_option("--target", o.target,
	               "the binary to patch (unstripped, or with its debug "
	               "file in /usr/lib/debug/.build-id)");
	app.add_option("--build", o.build_command,
	               "the build command, run by /bin/sh in the tree (default: make -j<cpus>)");
	app.add_option("--configure", o.configure_command,
	               "run by /bin/sh in the tree before the original build only, e.g. "
	               "\"./configure ...\" (the patched build runs --build alone)");
	app.add_option("-o,--output", o.output,
	               "the patch file to write (default: <build-id>-<name>.patch.o)");
	app.add_option("--name", o.name, "the patch's name (default: the diff's file name)");
	app.add_option("--work", o.work_dir,
	               "work directory (default: a temporary one, removed afterwards)");
	app.add_flag("--keep-work", o.keep_work, "keep the work directory (builds, logs, objects)");
	app.add_option("--cache", o.cache_dir,
	               "the cache of original builds (default: $ATLAS_BUILD_PATCH_CACHE, else "
	               "$XDG_CACHE_HOME/atlas/build-patch or ~/.cache/atlas/build-patch)");
	app.add_flag("!--no-cache", o.use_cache,
	             "build the original tree in full, neither reading nor filling the cache");
	app.add_flag("--json", as_json, "print the result as one JSON object on stdout");
	app.add_flag("--print-flags", print,
	             "print the compiler flags a program must be built with to be patchable");
	app.add_flag("!--no-line-directives", o.keep_lines,
	             "do not insert #line directives (shows __LINE__ churn; for debugging)");
	app.footer("Exit status: 0 patch written, 1 failed, 2 usage, 3 refused (the change cannot "
	           "be live-patched), 4 no change to this binary, 5 the target does not match "
	           "(flags missing, or the original build does not reproduce it).");
	try {
		app.parse(argc, argv);
	} catch (const CLI::ParseError &e) {
		return app.exit(e) == 0 ? 0 : int(Outcome::usage);
	}
	if (print) {
		print_flags(as_json);
		return 0;
	}
	if (!original_build.empty()) {
		if (!o.source_dir.empty()) {
			fmt::print(stderr,
			           "atlas build-patch: give --src (a clean tree, built here) "
			           "or --original-build (the tree the target was built in), "
			           "not both\n");
			return int(Outcome::usage);
		}
		o.source_dir = original_build;
		o.prebuilt = true;
	}
	if (o.source_dir.empty() || o.diff.empty() || o.target.empty()) {
		fmt::print(
		    stderr,
		    "atlas build-patch: give --src (or --original-build), --diff and --target (or "
		    "--print-flags); --help says more\n");
		return int(Outcome::usage);
	}
	o.self_exe = self_path(argv[0]);
	Progress progress(false);
	BuildReport report;
	try {
		report = build_patch_from_diff(o, progress);
	} catch (const std::exception &e) {
		report.outcome = Outcome::failed;
		report.message = fmt::format("internal error: {}", e.what());
	}
	if (as_json)
		fmt::print("{}\n", report_json(report).dump(2));
	else
		print_report(report);
	return int(report.outcome);
}
