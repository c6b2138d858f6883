// SPDX-License-Identifier: MIT
// atlas build-patch end to end on cxxprog/ (a Makefile-built, multi-threaded C++ program) and
// the diffs in cxxdiffs/: a template member function instantiated in two units, a virtual
// function, a lambda behind std::function, a function an exception is thrown through, a
// function-local static with its guard variable. Each patch is built from cxxprog/ and the
// diff, applied to a running instance of the original program through the preload library
// and the atlas CLI in global mode while three threads call every patched function and check
// each result, reverted, and applied again (not under the sanitizers, which cannot run
// LD_PRELOAD programs).
#include "../preload/spawn.hpp"

#include <cstdlib>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

namespace
{

std::string make_temp_dir(const char *what)
{
	std::string tmpl = std::string("/tmp/atlas-bpcxx-") + what + "-XXXXXX";
	if (!mkdtemp(tmpl.data()))
		return {};
	return tmpl;
}

using Names = std::set<std::string>;

class BuildPatchCxx : public ::testing::Test
{
protected:
	static void SetUpTestSuite()
	{
		target_dir_ = make_temp_dir("target");
		std::string out;
		const int st = atlas_test::run_command(
		    "cp -a " ATLAS_BP_CXXPROG "/. " + target_dir_ + "/ && make -C " + target_dir_,
		    &out);
		ASSERT_EQ(st, 0) << out;
		target_ = target_dir_ + "/cxxprog";
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

	struct Tool {
		int status = -1;
		std::string out;
		nlohmann::json json;
	};

	// atlas-build-patch --json for one of the diffs; the patch goes to <work>/<diff>.patch.o.
	Tool build(const std::string &diff)
	{
		Tool t;
		t.status = atlas_test::run_command(
		    "(" + std::string(ATLAS_BUILD_PATCH) +
		        " --json --src " ATLAS_BP_CXXPROG " --diff " + ATLAS_BP_CXXDIFFS "/" +
		        diff + ".patch --target " + target_ + " -o " + patch_of(diff) + " 2>" +
		        work_ + "/stderr.txt)",
		    &t.out);
		t.json = nlohmann::json::parse(t.out, nullptr, false);
		std::string err;
		atlas_test::run_command("cat " + work_ + "/stderr.txt", &err);
		t.out += err;
		return t;
	}

	static Names redirected(const Tool &t)
	{
		Names out;
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

std::string BuildPatchCxx::target_dir_, BuildPatchCxx::target_;

} // namespace

#ifdef ATLAS_BP_APPLY

namespace
{

// The state line: "state <Accumulator<int>{40}.add(2)> <total_area(square 3, 1)>
// <make_scaler()(5)> <level(7)> <session_id()>".
constexpr const char *original_state = "state 42 10 10 7 1";

// cxxprog under the preload library, patched and reverted by the atlas CLI.
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
	std::string next(int timeout_ms = 10000)
	{
		return p_.line(timeout_ms);
	}
	// Stops the program; its last line ("bye" when no worker saw a wrong result since).
	std::string stop()
	{
		return p_.stop();
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

// Builds `diff`, checks the redirects, then the state before, after apply, after revert and
// after the second apply; a worker thread that saw a result neither the original's nor the
// fix's would have printed "error ..." in between.
#define EXPECT_CXX_PATCHED(diff, expected_redirects, after)                                        \
	do {                                                                                       \
		Tool t = build(diff);                                                              \
		ASSERT_EQ(t.status, 0) << t.out;                                                   \
		EXPECT_EQ(redirected(t), expected_redirects) << t.out;                             \
		Running r(target_);                                                                \
		ASSERT_TRUE(r.started());                                                          \
		ASSERT_EQ(r.first(), original_state);                                              \
		std::string out;                                                                   \
		ASSERT_EQ(r.cli("apply " + r.pid() + " " + patch_of(diff) +                        \
		                    " --mode global --deadline 5000",                              \
		                out),                                                              \
		          0)                                                                       \
		    << out;                                                                        \
		EXPECT_EQ(r.next(), after);                                                        \
		ASSERT_EQ(r.cli("revert " + r.pid() + " " diff " --mode global", out), 0) << out;  \
		EXPECT_EQ(r.next(), original_state);                                               \
		ASSERT_EQ(                                                                         \
		    r.cli("apply " + r.pid() + " " + patch_of(diff) + " --mode global", out), 0)   \
		    << out;                                                                        \
		EXPECT_EQ(r.next(), after);                                                        \
		EXPECT_EQ(r.next(200), "");                                                        \
		EXPECT_EQ(r.stop(), "bye");                                                        \
	} while (0)

// Accumulator<int>::add, defined in the header, is instantiated in main.cpp and shapes.cpp
// (one COMDAT group each): one redirect, the second unit's copy kept private.
TEST_F(BuildPatchCxx, AppliedTemplateMemberFunctionInTwoUnits)
{
	EXPECT_CXX_PATCHED("cxx_template", Names{"_ZNK11AccumulatorIiE3addEi"},
	                   "state 43 11 10 7 1");
}

// Square::area, a virtual function (the vtable keeps pointing at the original entry, which
// jumps to the patch); gcc also inlined it speculatively into total_area, which comes along.
TEST_F(BuildPatchCxx, AppliedVirtualFunction)
{
	EXPECT_CXX_PATCHED("cxx_virtual",
	                   (Names{"_ZNK12_GLOBAL__N_16Square4areaEv", "_Z10total_areaRK5Shapei"}),
	                   "state 42 11 10 7 1");
}

// The lambda make_scaler() returns lives in std::function's invoker, which is patched.
TEST_F(BuildPatchCxx, AppliedLambdaBehindStdFunction)
{
	EXPECT_CXX_PATCHED("cxx_lambda",
	                   Names{"_ZNSt17_Function_handlerIFiiEZ11make_scalervEUliE_E9_M_"
	                         "invokeERKSt9_Any_dataOi"},
	                   "state 42 10 15 7 1");
}

// The patched parse_level throws: the exception unwinds through the patch's code (its FDE is
// in the patch) to the original caller's handler.
TEST_F(BuildPatchCxx, AppliedFunctionAnExceptionIsThrownThrough)
{
	EXPECT_CXX_PATCHED("cxx_exception", Names{"_Z11parse_leveli"},
	                   "state 42 10 10 caught:level 7 above 5 1");
}

// session_id()'s `static Session s` and its guard variable are the program's: the patched
// code sees the session constructed before the patch (id 1, so 101), never constructs a
// second one (which would have id 2, so 102).
TEST_F(BuildPatchCxx, AppliedFunctionLocalStaticWithItsGuardBoundToTheProgramsInstance)
{
	Tool first = build("cxx_static_guard");
	ASSERT_EQ(first.status, 0) << first.out;
	Names refs;
	for (const auto &r : first.json["references"])
		refs.insert(r["symbol"].get<std::string>());
	EXPECT_TRUE(refs.count("work.cpp:_ZZ10session_idvE1s")) << first.out;
	EXPECT_TRUE(refs.count("work.cpp:_ZGVZ10session_idvE1s")) << first.out;
	EXPECT_CXX_PATCHED("cxx_static_guard", Names{"_Z10session_idv"}, "state 42 10 10 7 101");
}

#endif
