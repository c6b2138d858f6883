// SPDX-License-Identifier: MIT
// atlas build-patch end to end on prog/ (a Makefile-built C program) and the diffs in diffs/:
// the target is built from a copy of prog/ the way its Makefile says, the tool builds the
// patch from prog/ and the diff as a user would, and the patch is applied to a running
// instance of the target through the preload library and the atlas CLI (not under the
// sanitizers, which cannot run LD_PRELOAD programs). Refused diffs are checked for the
// symbol and the reason they name.
#include "../preload/spawn.hpp"

#include <cstdlib>
#include <fstream>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

namespace
{

struct Tool {
	int status = -1;
	std::string out;     // stdout + stderr
	nlohmann::json json; // with --json: the result object
};

std::string make_temp_dir(const char *what)
{
	std::string tmpl = std::string("/tmp/atlas-bp-") + what + "-XXXXXX";
	if (!mkdtemp(tmpl.data()))
		return {};
	return tmpl;
}

// A build of prog/ in its own directory: `make` with the Makefile's flags or others.
std::string build_target(const std::string &dir, const std::string &make_args = "")
{
	std::string out;
	int st = atlas_test::run_command(
	    "cp -a " ATLAS_BP_PROG "/. " + dir + "/ && make -C " + dir + " " + make_args, &out);
	EXPECT_EQ(st, 0) << out;
	return dir + "/prog";
}

class BuildPatch : public ::testing::Test
{
protected:
	static void SetUpTestSuite()
	{
		target_dir_ = make_temp_dir("target");
		target_ = build_target(target_dir_);
	}
	static void TearDownTestSuite()
	{
		std::system(("rm -rf " + target_dir_).c_str());
	}
	void SetUp() override
	{
		work_ = make_temp_dir("out");
		ASSERT_FALSE(work_.empty());
	}
	void TearDown() override
	{
		std::system(("rm -rf " + work_).c_str());
	}

	// atlas-build-patch --json for one of the diffs; the patch goes to <work>/<diff>.patch.o.
	Tool build(const std::string &diff, const std::string &extra = "",
	           const std::string &target = "")
	{
		Tool t;
		t.status = atlas_test::run_command(
		    "(" + std::string(ATLAS_BUILD_PATCH) +
		        " --json --src " ATLAS_BP_PROG " --diff " + ATLAS_BP_DIFFS "/" + diff +
		        ".patch --target " + (target.empty() ? target_ : target) + " -o " + work_ +
		        "/" + diff + ".patch.o " + extra + " 2>" + work_ + "/stderr.txt)",
		    &t.out);
		t.json = nlohmann::json::parse(t.out, nullptr, false);
		std::string err;
		atlas_test::run_command("cat " + work_ + "/stderr.txt", &err);
		t.out += err;
		return t;
	}

	static std::set<std::string> redirected(const Tool &t)
	{
		std::set<std::string> out;
		for (const auto &r : t.json["redirects"])
			out.insert(r["target"].get<std::string>());
		return out;
	}

	std::string patch_of(const std::string &diff) const
	{
		return work_ + "/" + diff + ".patch.o";
	}

	static std::string target_dir_, target_;
	std::string work_;
};

std::string BuildPatch::target_dir_, BuildPatch::target_;

using Names = std::set<std::string>;

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
	EXPECT_NE(out.find("give --src, --diff and --target"), std::string::npos) << out;
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

#ifdef ATLAS_BP_APPLY

namespace
{

// The target running under the preload library, patched and reverted by the atlas CLI.
class Running
{
public:
	explicit Running(const std::string &target)
	{
		xdg_ = make_temp_dir("xdg");
		setenv("XDG_RUNTIME_DIR", xdg_.c_str(), 1);
		started_ = atlas_test::start_process(p_, target, {"LD_PRELOAD=" ATLAS_PRELOAD_LIB});
		if (started_)
			first_ = p_.line();
	}
	~Running()
	{
		p_.stop();
		std::system(("rm -rf " + xdg_).c_str());
	}
	bool started() const
	{
		return started_;
	}
	const std::string &first() const
	{
		return first_;
	}
	std::string next()
	{
		return p_.line();
	}
	int cli(const std::string &args, std::string &out)
	{
		return atlas_test::run_command(std::string(ATLAS_CLI) + " " + args, &out);
	}
	std::string pid() const
	{
		return std::to_string(p_.pid);
	}

private:
	atlas_test::Process p_;
	std::string xdg_, first_;
	bool started_ = false;
};

} // namespace

// Builds `diff`, checks the state before, after apply and after revert. The state line is
// "state <compute(3)> <grade(4)> <heavy(2)> <label(2)> <where()>".
#define EXPECT_PATCHED(diff, expected_redirects, after)                                            \
	do {                                                                                       \
		Tool t = build(diff);                                                              \
		ASSERT_EQ(t.status, 0) << t.out;                                                   \
		EXPECT_EQ(redirected(t), expected_redirects) << t.out;                             \
		Running r(target_);                                                                \
		ASSERT_TRUE(r.started());                                                          \
		ASSERT_EQ(r.first(), "state 107 59 47 small 17");                                  \
		std::string out;                                                                   \
		ASSERT_EQ(r.cli("apply " + r.pid() + " " + patch_of(diff) +                        \
		                    " --mode global --deadline 5000",                              \
		                out),                                                              \
		          0)                                                                       \
		    << out;                                                                        \
		EXPECT_EQ(r.next(), after);                                                        \
		ASSERT_EQ(r.cli("revert " + r.pid() + " " diff " --mode global", out), 0) << out;  \
		EXPECT_EQ(r.next(), "state 107 59 47 small 17");                                   \
		ASSERT_EQ(                                                                         \
		    r.cli("apply " + r.pid() + " " + patch_of(diff) + " --mode global", out), 0)   \
		    << out;                                                                        \
		EXPECT_EQ(r.next(), after);                                                        \
	} while (0)

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
