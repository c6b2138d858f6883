// The blocked-call torture test (docs/live-patching.md, "Unmodified programs (preload)",
// "Torture test"): torture_target under LD_PRELOAD on simulated views, transitions back to back
// for ATLAS_TORTURE_SECONDS (default 40; the long form: e.g. ATLAS_TORTURE_SECONDS=600),
// wait-free (3 of 4 rounds) and global (1 of 4), each apply + revert. Asserts: every transition
// finishes before its deadline although most threads sit in calls that end late or never,
// threads that slept through a transition moved to the new base when they woke, the
// application saw zero EINTR, and calls with a timeout ended after exactly their timeout.
// Plain build only (LD_PRELOAD, see preload_test.cpp).
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

TEST(PreloadTorture, BlockedThreadsNeverHoldUpATransitionNorSeeIt)
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
		auto resp = atlas::control::call(target.socket, req);
		EXPECT_TRUE(resp) << (resp ? "" : resp.error().message);
		return resp ? *resp : nlohmann::json();
	};
	// main + 24 threads, all in place.
	bool all = false;
	for (int i = 0; i < 500 && !all; i++) {
		all = call({{"verb", "status"}})["status"]["threads"].size() == 25;
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
	const auto woke = status.value("migrated_on_wake", std::uint64_t(0));
	const std::string last = target.stop();
	std::cout << "torture: " << seconds << " s, " << transitions << " transitions ("
	          << wait_free << " wait-free, " << global << " global), " << woke
	          << " threads moved to the base when they woke, worst " << worst_ns / 1000
	          << " us (" << worst_what << "), mean "
	          << (transitions ? total_ns / transitions / 1000 : 0) << " us, deadline "
	          << deadline_ms << " ms; target: " << last << std::endl;
	::testing::Test::RecordProperty("transitions", std::to_string(transitions));
	::testing::Test::RecordProperty("migrated_on_wake", std::to_string(woke));
	::testing::Test::RecordProperty("worst_us", std::to_string(worst_ns / 1000));
	EXPECT_GT(transitions, 20);
	EXPECT_GT(woke, 0u) << "threads blocked in timed calls sleep through wait-free "
	                       "transitions and must move to the base when they wake";
	// "eintr 0 calls N usr1 K timeouts_ok A timeouts_bad 0 selfcheck ok": the application's
	// own signal was handled.
	ASSERT_EQ(last.rfind("eintr 0 calls ", 0), 0u) << last;
	EXPECT_NE(last.find(" selfcheck ok"), std::string::npos) << last;
	EXPECT_EQ(last.find(" usr1 0 "), std::string::npos)
	    << "SIGUSR1 was never handled: " << last;
	// Calls that slept through transitions still end after exactly their timeout.
	EXPECT_NE(last.find(" timeouts_bad 0 "), std::string::npos) << last;
	EXPECT_EQ(last.find(" timeouts_ok 0 "), std::string::npos) << last;
	std::system(("rm -rf " + dir).c_str());
}

} // namespace
