// SPDX-License-Identifier: MIT
// What builder_test.cpp (prog/, a C program) and cxx_builder_test.cpp (cxxprog/, a C++ one)
// share: a target built from a copy of the program's directory with its Makefile, the tool
// run on one of the program's diffs, the target running under the preload library (only with
// ATLAS_BP_APPLY: the sanitizer builds cannot run LD_PRELOAD programs), and the check of a
// patch applied, reverted and applied again.
#pragma once

#include "../preload/spawn.hpp"

#include <cstdlib>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

namespace atlas_bp_test
{

using Names = std::set<std::string>;

struct Tool {
	int status = -1;
	std::string out;     // stdout + stderr
	nlohmann::json json; // with --json: the result object
};

inline std::string make_temp_dir(const std::string &what)
{
	std::string tmpl = "/tmp/atlas-bp-" + what + "-XXXXXX";
	if (!mkdtemp(tmpl.data()))
		return {};
	return tmpl;
}

// A build of the program in `src` in its own directory `dir`: `make` with the Makefile's flags
// or others; returns the binary's path.
inline std::string build_target(const std::string &src, const std::string &binary,
                                const std::string &dir, const std::string &make_args = "")
{
	std::string out;
	const int st = atlas_test::run_command(
	    "cp -a " + src + "/. " + dir + "/ && make -C " + dir + " " + make_args, &out);
	EXPECT_EQ(st, 0) << out;
	return dir + "/" + binary;
}

// One suite per program: Program gives `src` (its directory), `diffs` (the directory of its
// .patch files) and `binary` (what its Makefile builds). The target is built once per suite.
template <typename Program>
class BuilderFixture : public ::testing::Test
{
protected:
	static void SetUpTestSuite()
	{
		target_dir_ = make_temp_dir("target");
		ASSERT_FALSE(target_dir_.empty());
		target_ = build_target(Program::src, Program::binary, target_dir_);
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
		    "(" + std::string(ATLAS_BUILD_PATCH) + " --json --src " + Program::src +
		        " --diff " + Program::diffs + "/" + diff + ".patch --target " +
		        (target.empty() ? target_ : target) + " -o " + patch_of(diff) + " " +
		        extra + " 2>" + work_ + "/stderr.txt)",
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

	static inline std::string target_dir_, target_;
	std::string work_;
};

#ifdef ATLAS_BP_APPLY

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
	Running(const Running &) = delete;
	Running &operator=(const Running &) = delete;
	bool started() const
	{
		return started_;
	}
	const std::string &first() const
	{
		return first_;
	}
	// The program's next line ("" when none came within timeout_ms).
	std::string next(int timeout_ms = 10000)
	{
		return p_.line(timeout_ms);
	}
	// Stops the program; returns its last line.
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

// Builds `diff` (a string literal), checks its redirects, then the program's state line
// before (`first_state`), after apply (`after_state`), after revert (`first_state` again) and
// after the second apply. The trailing arguments are statements run at the end with the running
// program as `r` (the C++ tests check it saw no wrong result).
#define EXPECT_BP_PATCHED(first_state, diff, expected_redirects, after_state, ...)                 \
	do {                                                                                       \
		::atlas_bp_test::Tool t = build(diff);                                             \
		ASSERT_EQ(t.status, 0) << t.out;                                                   \
		EXPECT_EQ(redirected(t), expected_redirects) << t.out;                             \
		::atlas_bp_test::Running r(target_);                                               \
		ASSERT_TRUE(r.started());                                                          \
		ASSERT_EQ(r.first(), first_state);                                                 \
		std::string out;                                                                   \
		ASSERT_EQ(r.cli("apply " + r.pid() + " " + patch_of(diff) +                        \
		                    " --mode global --deadline 5000",                              \
		                out),                                                              \
		          0)                                                                       \
		    << out;                                                                        \
		EXPECT_EQ(r.next(), after_state);                                                  \
		ASSERT_EQ(r.cli("revert " + r.pid() + " " diff " --mode global", out), 0) << out;  \
		EXPECT_EQ(r.next(), first_state);                                                  \
		ASSERT_EQ(                                                                         \
		    r.cli("apply " + r.pid() + " " + patch_of(diff) + " --mode global", out), 0)   \
		    << out;                                                                        \
		EXPECT_EQ(r.next(), after_state);                                                  \
		__VA_ARGS__                                                                        \
	} while (0)

#endif

} // namespace atlas_bp_test
