// SPDX-License-Identifier: MIT
// atlas build-patch end to end on prog/ (a Makefile-built C program) and the diffs in diffs/:
// the target is built from a copy of prog/ the way its Makefile says, the tool builds the
// patch from prog/ and the diff as a user would, and the patch is applied to a running
// instance of the target through the preload library and the atlas CLI (not under the
// sanitizers, which cannot run LD_PRELOAD programs). Refused diffs are checked for the
// symbol and the reason they name.
#include "builder_fixture.hpp"

#include <fstream>

namespace
{

using atlas_bp_test::make_temp_dir;
using atlas_bp_test::Names;
using atlas_bp_test::Tool;

struct CProgram {
	static constexpr const char *src = ATLAS_BP_PROG;
	static constexpr const char *diffs = ATLAS_BP_DIFFS;
	static constexpr const char *binary = "prog";
};

class BuildPatch : public atlas_bp_test::BuilderFixture<CProgram>
{
};

// A build of prog/ in its own directory with other make arguments.
std::string build_target(const std::string &dir, const std::string &make_args)
{
	return atlas_bp_test::build_target(ATLAS_BP_PROG, "prog", dir, make_args);
}

} // namespace

TEST(BuildPatchFlags, PrintFlags)
{
	std::string out;
	ASSERT_EQ(atlas_test::run_command(ATLAS_BUILD_PATCH " --print-flags", &out), 0);
	EXPECT_EQ(out,
	          "-g -ffunction-sections -fdata-sections -flive-patching=inline-clone -fPIE\n");
	ASSERT_EQ(atlas_test::run_command(ATLAS_BUILD_PATCH " --print-flags --json", &out), 0);
	auto j = nlohmann::json::parse(out, nullptr, false);
	ASSERT_TRUE(j.is_object()) << out;
	EXPECT_EQ(j["compile"].size(), 5u);
	EXPECT_EQ(j["link"][1]["flag"], "-Wl,--build-id");
}

// `atlas build-patch` is this tool.
TEST(BuildPatchFlags, AtlasBuildPatchRunsTheTool)
{
	std::string out;
	ASSERT_EQ(atlas_test::run_command(ATLAS_CLI " build-patch --print-flags", &out), 0) << out;
	EXPECT_EQ(out,
	          "-g -ffunction-sections -fdata-sections -flive-patching=inline-clone -fPIE\n");
	EXPECT_EQ(atlas_test::run_command(ATLAS_CLI " build-patch --src", &out), 2) << out;
}

TEST(BuildPatchFlags, UsageErrors)
{
	std::string out;
	EXPECT_EQ(atlas_test::run_command(ATLAS_BUILD_PATCH, &out), 2) << out;
	EXPECT_NE(out.find("give --src (or --original-build), --diff and --target"),
	          std::string::npos)
	    << out;
	EXPECT_EQ(atlas_test::run_command(
	              ATLAS_BUILD_PATCH " --src /nonexistent --diff x --target y", &out),
	          2)
	    << out;
	EXPECT_NE(out.find("--src /nonexistent: not a directory"), std::string::npos) << out;
}

TEST_F(BuildPatch, OneFunctionWithAJumpTable)
{
	Tool t = build("one_function");
	ASSERT_EQ(t.status, 0) << t.out;
	ASSERT_TRUE(t.json.is_object()) << t.out;
	EXPECT_EQ(t.json["outcome"], "written");
	// classify is inlined into compute: both change; their .cold pieces come along.
	EXPECT_EQ(redirected(t), (Names{"classify", "compute"}));
	Names pieces;
	for (const auto &f : t.json["objects"][0]["functions"])
		if (f["why"] == "part of")
			pieces.insert(f["name"].get<std::string>());
	EXPECT_EQ(pieces, (Names{"classify.cold", "compute.cold"}));
	EXPECT_EQ(t.json["objects_rebuilt"], 1);
}

TEST_F(BuildPatch, GlobalInitialValueIsRefusedNamingTheVariable)
{
	Tool t = build("global_init");
	EXPECT_EQ(t.status, 3) << t.out;
	EXPECT_EQ(t.json["outcome"], "refused");
	ASSERT_EQ(t.json["refusals"].size(), 1u) << t.out;
	EXPECT_EQ(t.json["refusals"][0]["symbol"], "calc_limit");
	EXPECT_NE(t.out.find("variable 'calc_limit': its initial value changed"), std::string::npos)
	    << t.out;
	EXPECT_FALSE(std::ifstream(patch_of("global_init")).good())
	    << "a refused patch was written";
}

TEST_F(BuildPatch, CommentOnlyIsNoChangeToThisBinary)
{
	Tool t = build("comment_only");
	EXPECT_EQ(t.status, 4) << t.out;
	EXPECT_NE(t.out.find("no change to this binary"), std::string::npos) << t.out;
	EXPECT_FALSE(std::ifstream(patch_of("comment_only")).good());
}

// Lines moved, code unchanged: the #line directives keep where()'s __LINE__, so nothing
// changes. Without them (--no-line-directives) where() would be patched for nothing.
TEST_F(BuildPatch, MovedLinesAreNoChangeToThisBinary)
{
	Tool t = build("line_churn");
	EXPECT_EQ(t.status, 4) << t.out;
	EXPECT_NE(t.out.find("no change to this binary"), std::string::npos) << t.out;
	EXPECT_GE(t.json["line_directives"].get<int>(), 1) << t.out;

	Tool raw = build("line_churn", "--no-line-directives");
	ASSERT_EQ(raw.status, 0) << raw.out;
	EXPECT_EQ(redirected(raw), Names{"where"});
}

TEST_F(BuildPatch, TargetWithoutTheFlagsIsRefused)
{
	const std::string dir = make_temp_dir("noflags");
	const std::string target = build_target(dir, "CFLAGS='-O2 -g -fPIE'");
	Tool t = build("one_function", "", target);
	EXPECT_EQ(t.status, 5) << t.out;
	EXPECT_NE(t.out.find("not built to be patchable"), std::string::npos) << t.out;
	EXPECT_NE(t.out.find("-flive-patching=inline-clone"), std::string::npos) << t.out;
	std::system(("rm -rf " + dir).c_str());
}

TEST_F(BuildPatch, TargetTheBuildDoesNotReproduceIsRefusedNamingFunctions)
{
	const std::string dir = make_temp_dir("o1");
	const std::string target =
	    build_target(dir, "CFLAGS='-O1 -g -ffunction-sections -fdata-sections "
	                      "-flive-patching=inline-clone -fPIE'");
	Tool t = build("one_function", "", target);
	EXPECT_EQ(t.status, 5) << t.out;
	EXPECT_EQ(t.json["outcome"], "target_mismatch");
	EXPECT_NE(t.out.find("does not reproduce"), std::string::npos) << t.out;
	bool names_classify = false;
	for (const auto &m : t.json["mismatches"])
		names_classify =
		    names_classify || m.get<std::string>().starts_with("classify (calc.c)");
	EXPECT_TRUE(names_classify) << t.out;
	EXPECT_FALSE(std::ifstream(patch_of("one_function")).good());
	std::system(("rm -rf " + dir).c_str());
}

// A compiler launcher in PATH that looks for the real compiler in PATH itself, as ccache does
// from /usr/lib/ccache: it found the wrapper's shim again, which ran it again, without end.
// The wrapper now gives it CCACHE_PATH, PATH without the shims (the launcher here honours it
// as ccache does), and stops a launcher that still calls it back, saying why.
TEST_F(BuildPatch, CompilerLauncherInPathLikeCcache)
{
	const std::string dir = make_temp_dir("launcher");
	{
		std::ofstream cc(dir + "/cc");
		cc << "#!/bin/sh\n"
		      "# the first cc in CCACHE_PATH (else PATH, or PATH with "
		      "LAUNCHER_IGNORES_CCACHE_PATH)\n"
		      "# that is not this script\n"
		      "search=${CCACHE_PATH:-$PATH}; [ -n \"$LAUNCHER_IGNORES_CCACHE_PATH\" ] && "
		      "search=$PATH\n"
		      "IFS=:; for d in $search; do\n"
		      "  [ \"$d/cc\" -ef \"$0\" ] && continue\n"
		      "  [ -x \"$d/cc\" ] && exec \"$d/cc\" \"$@\"\n"
		      "done\n"
		      "exit 127\n";
	}
	ASSERT_EQ(std::system(("chmod +x " + dir + "/cc").c_str()), 0);
	const std::string path = std::getenv("PATH");
	setenv("PATH", (dir + ":" + path).c_str(), 1);
	Tool t = build("one_function", "--no-cache");
	setenv("PATH", (dir + ":" + path).c_str(), 1);
	setenv("LAUNCHER_IGNORES_CCACHE_PATH", "1", 1); // a launcher that finds the shim
	Tool again = build("one_function", "--no-cache");
	unsetenv("LAUNCHER_IGNORES_CCACHE_PATH");
	setenv("PATH", path.c_str(), 1);
	std::system(("rm -rf " + dir).c_str());

	ASSERT_EQ(t.status, 0) << t.out;
	EXPECT_EQ(redirected(t), (Names{"classify", "compute"}));
	EXPECT_EQ(again.status, 1) << again.out;
	EXPECT_NE(again.out.find("ran the wrapper again"), std::string::npos) << again.out;
}

// --original-build: the tree the target was built in is the original build; only the
// patched build runs (one object and the link), and the patch is the one --src gives.
TEST_F(BuildPatch, OriginalBuildGivenBuildsOnlyThePatchedTree)
{
	const std::string dir = make_temp_dir("built");
	const std::string target = build_target(dir, "");
	Tool t;
	t.status = atlas_test::run_command(std::string(ATLAS_BUILD_PATCH) +
	                                       " --json --original-build " + dir + " --diff " +
	                                       ATLAS_BP_DIFFS "/one_function.patch --target " +
	                                       target + " -o " + patch_of("given") + " 2>&1",
	                                   &t.out);
	const size_t brace = t.out.find("\n{");
	t.json = nlohmann::json::parse(brace == std::string::npos ? t.out : t.out.substr(brace),
	                               nullptr, false);
	ASSERT_EQ(t.status, 0) << t.out;
	EXPECT_EQ(t.json["original_build"], "given") << t.out;
	EXPECT_EQ(t.json["objects_rebuilt"], 1) << t.out;
	EXPECT_EQ(redirected(t), (Names{"classify", "compute"})) << t.out;
	EXPECT_TRUE(std::ifstream(patch_of("given")).good());
	// The given tree itself is not touched: its calc.c is the original.
	std::string grep;
	EXPECT_EQ(
	    atlas_test::run_command("cmp -s " + dir + "/calc.c " ATLAS_BP_PROG "/calc.c", &grep),
	    0);

	std::string out;
	EXPECT_EQ(atlas_test::run_command(std::string(ATLAS_BUILD_PATCH) +
	                                      " --src " ATLAS_BP_PROG " --original-build " + dir +
	                                      " --diff x --target y",
	                                  &out),
	          2)
	    << out;
	EXPECT_NE(out.find("not both"), std::string::npos) << out;
	std::system(("rm -rf " + dir).c_str());
}

#ifdef ATLAS_BP_APPLY

// The state line is "state <compute(3)> <grade(4)> <heavy(2)> <label(2)> <where()>".
#define EXPECT_PATCHED(diff, expected_redirects, after)                                            \
	EXPECT_BP_PATCHED("state 107 59 47 small 17", diff, expected_redirects, after)

TEST_F(BuildPatch, AppliedOneFunctionWithAJumpTable)
{
	EXPECT_PATCHED("one_function", (Names{"classify", "compute"}), "state 108 59 47 small 17");
}

// One diff changing two translation units: one patch.
TEST_F(BuildPatch, AppliedTwoUnits)
{
	EXPECT_PATCHED("two_units", (Names{"classify", "compute", "label"}),
	               "state 108 59 47 tiny 17");
}

// gcc made grade()'s switch a lookup table (CSWTCH.N, a local read-only datum): the patch
// carries the new table with grade.
TEST_F(BuildPatch, AppliedChangedLookupTable)
{
	EXPECT_PATCHED("lookup_table", Names{"grade"}, "state 107 60 47 small 17");
}

// label()'s function-local static `uses` is the program's instance: the patched code sees
// the count the program reached ("tiny" from the first call), not a fresh copy ("fresh").
TEST_F(BuildPatch, AppliedStaticLocalBoundToTheProgramsInstance)
{
	EXPECT_PATCHED("static_local", Names{"label"}, "state 107 59 47 tiny 17");
}

TEST_F(BuildPatch, AppliedNewFunction)
{
	EXPECT_PATCHED("new_function", Names{"compute"}, "state 407 59 47 small 17");
}

// The diff moves lines and changes label(): only label() is in the patch, where() keeps its
// line number.
TEST_F(BuildPatch, AppliedFixAmongMovedLines)
{
	EXPECT_PATCHED("churn_and_fix", Names{"label"}, "state 107 59 47 little 17");
}

// weigh() is only called through its constant-propagated clone weigh.constprop.0: the
// changed clone pulls its caller heavy() into the patch, which calls the patch's copy of the
// clone; the clone itself, local and called by nothing else, is carried but not redirected.
TEST_F(BuildPatch, AppliedChangedClonePullsItsCallers)
{
	Tool first = build("clone");
	ASSERT_EQ(first.status, 0) << first.out;
	bool carried = false;
	for (const auto &o : first.json["objects"])
		for (const auto &f : o["functions"])
			if (f["name"] == "weigh.constprop.0")
				carried = !f["redirected"].get<bool>();
	EXPECT_TRUE(carried) << first.out;
	EXPECT_PATCHED("clone", Names{"heavy"}, "state 107 59 2047 small 17");
}

#endif
