// The kick/blocked-call torture test (design sec. 7; docs/live-patching.md, "Kicks"):
// torture_target under LD_PRELOAD on simulated views, transitions back to back for
// ATLAS_TORTURE_SECONDS (default 40; the long form: e.g. ATLAS_TORTURE_SECONDS=600), wait-free
// (3 of 4 rounds) and global (1 of 4), each apply + revert. Asserts: every transition finishes
// before its deadline, kicks were sent, the application saw zero EINTR, and kicked calls with a
// timeout still ended after exactly their timeout (restarted with the time left). Plain build only
// (LD_PRELOAD, see preload_test.cpp).
#include "spawn.hpp"

#include <control.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <gtest/gtest.h>
#include <iostream>
#include <nlohmann/json.hpp>

using namespace std::chrono_literals;

namespace
{

TEST(PreloadTorture, KicksNeverReachTheApplication)
{
	int seconds = 40;
	if (const char *env = std::getenv("ATLAS_TORTURE_SECONDS"); env && std::atoi(env) > 0)
		seconds = std::atoi(env);
	constexpr int deadline_ms = 5000; // the runtime's default

	char tmpl[] = "/tmp/atlas-torture-XXXXXX";
	ASSERT_NE(mkdtemp(tmpl), nullptr);
	const std::string dir = tmpl;
	setenv("XDG_RUNTIME_DIR", dir.c_str(), 1);
	atlas_test::Process target;
	ASSERT_TRUE(atlas_test::start_process(
	    target, ATLAS_TORTURE_TARGET,
	    {"LD_PRELOAD=" ATLAS_PRELOAD_LIB, "ATLAS_PRELOAD_TEST_SIMULATED_VIEWS=1"}));
	auto call = [&](const nlohmann::json &req) {
		nlohmann::json resp;
		std::string error;
		EXPECT_TRUE(atlas::control::call(target.socket, req, resp, error)) << error;
		return resp;
	};
	// main + 22 threads, all in place.
	bool all = false;
	for (int i = 0; i < 500 && !all; i++) {
		all = call({{"verb", "status"}})["status"]["threads"].size() == 23;
		if (!all)
			std::this_thread::sleep_for(10ms);
	}
	ASSERT_TRUE(all) << call({{"verb", "status"}}).dump();
	ASSERT_EQ(call({{"verb", "status"}})["status"]["views_available"], true);
	std::this_thread::sleep_for(200ms); // into their blocking calls

	long transitions = 0, wait_free = 0, global = 0;
	std::int64_t worst_ns = 0, total_ns = 0;
	std::string worst_what;
	bool failed = false;
	const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
	for (int round = 0; std::chrono::steady_clock::now() < end && !failed; round++) {
		const std::string mode = round % 4 == 3 ? "global" : "wait-free";
		for (const char *verb : {"apply", "revert"}) {
			nlohmann::json req = {
			    {"verb", verb}, {"mode", mode}, {"deadline_ms", deadline_ms}};
			if (std::string(verb) == "apply")
				req["patch"] = "ok";
			else
				req["identity"] = "ok@test";
			auto r = call(req);
			if (r.value("outcome", "") != "finished") {
				ADD_FAILURE() << "round " << round << " " << verb << " " << mode
				              << ": " << r.dump();
				failed = true;
				if (r.value("outcome", "") == "pending")
					call({{"verb", "revert_pending"}, {"deadline_ms", 5000}});
				break;
			}
			const std::int64_t ns = r["report"].value("duration_ns", std::int64_t(0));
			EXPECT_LT(ns, std::int64_t(deadline_ms) * 1000000) << r.dump();
			if (ns > worst_ns) {
				worst_ns = ns;
				worst_what = std::string(verb) + " " + mode;
			}
			total_ns += ns;
			transitions++;
			(mode == "global" ? global : wait_free)++;
		}
	}
	auto status = call({{"verb", "status"}})["status"];
	const auto kicks = status.value("kicks_sent", std::uint64_t(0));
	const std::string last = target.stop();
	std::cout << "torture: " << seconds << " s, " << transitions << " transitions ("
	          << wait_free << " wait-free, " << global << " global), kicks " << kicks
	          << ", worst " << worst_ns / 1000 << " us (" << worst_what << "), mean "
	          << (transitions ? total_ns / transitions / 1000 : 0) << " us, deadline "
	          << deadline_ms << " ms; target: " << last << std::endl;
	::testing::Test::RecordProperty("transitions", std::to_string(transitions));
	::testing::Test::RecordProperty("kicks", std::to_string(kicks));
	::testing::Test::RecordProperty("worst_us", std::to_string(worst_ns / 1000));
	EXPECT_GT(transitions, 20);
	EXPECT_GT(kicks, 0u)
	    << "wait-free transitions with threads blocked for seconds or forever need kicks";
	// "eintr 0 calls N usr1 K timeouts_ok A timeouts_bad 0 selfcheck ok": the application's
	// own signal was handled.
	ASSERT_EQ(last.rfind("eintr 0 calls ", 0), 0u) << last;
	EXPECT_NE(last.find(" selfcheck ok"), std::string::npos) << last;
	EXPECT_EQ(last.find(" usr1 0 "), std::string::npos)
	    << "SIGUSR1 was never handled: " << last;
	// Calls kicked and restarted still end after exactly their timeout (the remaining time).
	EXPECT_NE(last.find(" timeouts_bad 0 "), std::string::npos) << last;
	EXPECT_EQ(last.find(" timeouts_ok 0 "), std::string::npos) << last;
	std::system(("rm -rf " + dir).c_str());
}

// A kick left pending from an earlier transition (a kick that arrived after a wrapper's window
// closed stays pending until the thread's next wrapped call) must never end a blocked call
// early: neither a wrapped call on a registered thread (the kick path restarts it with the time
// left) nor one made from a signal handler with a mask that does not block the kick signal
// (outside any kick window, the kick must stay pending). stale_kick_target makes the kick
// pending before each call and checks that every call ends by its timeout, without EINTR.
TEST(PreloadStaleKick, NeverEndsAWrappedCallEarly)
{
	char tmpl[] = "/tmp/atlas-stale-kick-XXXXXX";
	ASSERT_NE(mkdtemp(tmpl), nullptr);
	const std::string dir = tmpl;
	const int kick = SIGRTMAX - 2;
	std::string out;
	const int status = atlas_test::run_command(
	    "XDG_RUNTIME_DIR=" + dir + " ATLAS_PRELOAD_TEST_SIMULATED_VIEWS=1 ATLAS_KICK_SIGNAL=" +
	        std::to_string(kick) + " LD_PRELOAD=" ATLAS_PRELOAD_LIB " " ATLAS_STALE_KICK_TARGET,
	    &out);
	EXPECT_EQ(status, 0) << out;
	EXPECT_NE(out.find("stale-kick: 0 failures"), std::string::npos) << out;
	// The kick signal was really installed (simulated views): otherwise nothing was tested.
	EXPECT_EQ(out.find("cannot install the kick signal"), std::string::npos) << out;
	std::system(("rm -rf " + dir).c_str());
}

} // namespace
