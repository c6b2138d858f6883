// Threads blocked in bracketed calls during wait-free transitions (simulated views): they count
// as migrated when their quiescence check passes, the transition finishes without them, and
// each moves to the newest base when its call returns, before it runs application code. Also
// the status note for objects loaded while two views exist (docs/live-patching.md, "dlopen while
// two views exist").
#include "changes.hpp"

#include <atlas/runtime_json.hpp>
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <latch>

using namespace atlas_test;
using atlas::Mode;
using atlas::Outcome;

namespace
{

// Sleepers: registered threads that sit between blocking_enter() and blocking_exit() until the
// test wakes them, then record where they run and block again. `verdict` is the quiescence
// check of a thread (as the preload's stack check: blocked_may_count by the patcher for a
// blocked thread, may_complete by the thread itself when it wakes): empty = quiescent.
class MigrateOnWakeTest : public ::testing::Test
{
protected:
	void SetUp() override
	{
		views = std::make_shared<FakeViewState>();
		atlas::RuntimeOptions options;
		options.views = std::make_unique<FakeViews>(views);
		options.events = events.sink();
		options.blocked_may_count = [this](pid_t tid, const atlas::CodeChange &) {
			std::lock_guard lock(mu);
			checks[tid]++;
			auto it = verdict.find(tid);
			return it == verdict.end() ? std::string() : it->second;
		};
		options.may_complete = [this](const atlas::CodeChange &) {
			std::lock_guard lock(mu);
			auto it = verdict.find(gettid());
			return it == verdict.end() ? std::string() : it->second;
		};
		rt = atlas::Runtime::create(std::move(options));
		ASSERT_TRUE(rt);
		exempt_existing_threads(*rt);
		change = std::make_shared<ViewChange>(views, "fix");
	}
	void start_sleepers(int n)
	{
		std::latch registered(n);
		for (int i = 0; i < n; i++) {
			threads.push_back(spawn(views, [this, i, &registered] {
				ASSERT_TRUE(
				    rt->register_current_thread("sleeper-" + std::to_string(i)));
				{
					std::lock_guard lock(mu);
					tids.push_back(gettid());
				}
				registered.count_down();
				std::unique_lock lock(mu);
				while (!stop) {
					const int seen = wake;
					lock.unlock();
					atlas::blocking_enter();
					lock.lock();
					cv.wait(lock, [&] { return stop || wake != seen; });
					lock.unlock();
					atlas::blocking_exit(); // migrates here if it must
					const long here = views->current_of_caller();
					const int version = change->version();
					lock.lock();
					woke_in[gettid()] = here;
					woke_version[gettid()] = version;
					woken++;
					cv.notify_all();
				}
			}));
		}
		registered.wait();
		ASSERT_TRUE(all_blocked());
	}
	bool all_blocked()
	{
		return eventually([&] {
			for (const auto &t : rt->status().threads)
				if (t.state != atlas::ThreadState::blocked)
					return false;
			return true;
		});
	}
	// Wakes every sleeper once and waits until each has run (and blocked again).
	void wake_all()
	{
		std::unique_lock lock(mu);
		const int target = woken + int(tids.size());
		wake++;
		cv.notify_all();
		ASSERT_TRUE(cv.wait_for(lock, 10s, [&] { return woken >= target; }));
		lock.unlock();
		ASSERT_TRUE(all_blocked());
	}
	void TearDown() override
	{
		{
			std::lock_guard lock(mu);
			stop = true;
			cv.notify_all();
		}
		for (auto &t : threads)
			t.join();
		if (rt && rt->status().transition)
			(void)rt->revert_pending(5000ms);
	}

	std::shared_ptr<FakeViewState> views;
	EventRecorder events;
	std::unique_ptr<atlas::Runtime> rt;
	std::shared_ptr<ViewChange> change;
	std::vector<std::thread> threads;
	std::mutex mu;
	std::condition_variable cv;
	bool stop = false;
	int wake = 0, woken = 0;
	std::vector<pid_t> tids;
	std::map<pid_t, std::string> verdict;
	std::map<pid_t, int> checks;
	std::map<pid_t, long> woke_in;
	std::map<pid_t, int> woke_version;
};

TEST_F(MigrateOnWakeTest, TransitionFinishesWhileThreadsSleepAndTheyMoveWhenTheyWake)
{
	start_sleepers(3);
	const auto start = std::chrono::steady_clock::now();
	atlas::Report r = rt->apply(change, {Mode::wait_free, 5000ms});
	ASSERT_EQ(r.outcome, Outcome::finished) << r.message;
	EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
	const long fresh = change->patched_view.load();
	EXPECT_EQ(views->base(), fresh);
	EXPECT_FALSE(views->live(0)); // deleted, though its sleepers keep it
	for (pid_t tid : tids)
		EXPECT_EQ(views->current_of(tid), 0) << tid;

	// Status: blocked in the retired view, migrating on wake; and in JSON.
	atlas::StatusSnapshot s = rt->status();
	ASSERT_EQ(s.threads.size(), 3u);
	for (const auto &t : s.threads) {
		EXPECT_EQ(t.state, atlas::ThreadState::blocked);
		EXPECT_EQ(t.view, 0);
		EXPECT_TRUE(t.migrates_on_wake) << t.tid;
	}
	auto j = nlohmann::json::parse(s.to_json());
	EXPECT_TRUE(j["threads"][0]["migrates_on_wake"].get<bool>());
	EXPECT_EQ(j["migrated_on_wake"], 0);

	// The event log: one thread_migrates_on_wake per sleeper, listed in "finished".
	EXPECT_EQ(events.count("thread_migrates_on_wake"), 3u);
	for (const auto &l : events.lines()) {
		if (l["event"] == "finished") {
			EXPECT_EQ(l["migrate_on_wake"].size(), 3u) << l.dump();
		}
	}

	wake_all();
	{
		std::lock_guard lock(mu);
		for (pid_t tid : tids) {
			EXPECT_EQ(woke_in[tid], fresh) << tid;
			EXPECT_EQ(woke_version[tid], 2) << tid;
		}
	}
	s = rt->status();
	EXPECT_EQ(s.migrated_on_wake, 3u);
	for (const auto &t : s.threads) {
		EXPECT_EQ(t.view, fresh);
		EXPECT_FALSE(t.migrates_on_wake);
	}
	// Each blocked call was checked once for the one generation.
	std::lock_guard lock(mu);
	for (pid_t tid : tids)
		EXPECT_EQ(checks[tid], 1) << tid;
}

// Sleepers that slept through two transitions (apply, then revert) wake into the newest base.
TEST_F(MigrateOnWakeTest, SleepersSkipIntermediateViews)
{
	start_sleepers(2);
	ASSERT_EQ(rt->apply(change, {Mode::wait_free, 5000ms}).outcome, Outcome::finished);
	atlas::Report r = rt->revert("fix", {Mode::wait_free, 5000ms});
	ASSERT_EQ(r.outcome, Outcome::finished) << r.message;
	const long newest = views->base();
	EXPECT_EQ(newest, change->unpatched_view.load());
	EXPECT_GT(newest, change->patched_view.load());
	EXPECT_FALSE(views->live(change->patched_view.load()));
	wake_all();
	std::lock_guard lock(mu);
	for (pid_t tid : tids) {
		EXPECT_EQ(woke_in[tid], newest) << tid;
		EXPECT_EQ(woke_version[tid], 1) << tid;
	}
}

// A blocked thread whose check refuses (a replaced function on its stack) holds the transition
// up, named with the reason, until it leaves the call.
TEST_F(MigrateOnWakeTest, RefusedBlockedThreadLagsWithTheReason)
{
	start_sleepers(2);
	{
		std::lock_guard lock(mu);
		verdict[tids[1]] = "blocked below fix's function f";
	}
	atlas::Report r = rt->apply(change, {Mode::wait_free, 100ms});
	ASSERT_EQ(r.outcome, Outcome::pending) << r.message;
	ASSERT_EQ(r.lagging.size(), 1u);
	EXPECT_EQ(r.lagging[0].tid, tids[1]);
	EXPECT_EQ(r.lagging[0].state, atlas::ThreadState::blocked);
	EXPECT_EQ(r.lagging[0].note, "blocked below fix's function f");
	EXPECT_FALSE(r.lagging[0].migrates_on_wake);
	for (const auto &t : rt->status().threads)
		EXPECT_EQ(t.migrates_on_wake, t.tid == tids[0]) << t.tid;
	// It leaves its call with the function gone from its stack: it migrates then (the
	// transition's own handshake), and blocks again in the new view.
	{
		std::lock_guard lock(mu);
		verdict.clear();
	}
	wake_all();
	r = rt->wait(5000ms);
	ASSERT_EQ(r.outcome, Outcome::finished) << r.message;
	std::lock_guard lock(mu);
	for (pid_t tid : tids)
		EXPECT_EQ(woke_in[tid], change->patched_view.load()) << tid;
}

// A check holds for one blocked call only: a thread that left its call (and could have entered
// a replaced function since) is checked again in its next one.
TEST_F(MigrateOnWakeTest, EveryBlockedCallIsCheckedAnew)
{
	start_sleepers(2);
	{
		std::lock_guard lock(mu);
		verdict[tids[1]] = "blocked below fix's function f";
	}
	atlas::Report r = rt->apply(change, {Mode::wait_free, 100ms});
	ASSERT_EQ(r.outcome, Outcome::pending) << r.message;
	int before;
	{
		std::lock_guard lock(mu);
		before = checks[tids[0]];
	}
	EXPECT_GE(before, 1);
	// Sleeper 0 (counted) wakes: the transition's handshake moves it to the target; then it
	// blocks again in the target view and needs no check at all.
	wake_all();
	r = rt->wait(100ms);
	ASSERT_EQ(r.outcome, Outcome::pending) << r.message;
	{
		std::lock_guard lock(mu);
		EXPECT_EQ(woke_in[tids[0]], change->patched_view.load());
		EXPECT_EQ(checks[tids[0]], before);
		// Sleeper 1 was refused and stayed in view 0; its new call was checked again.
		EXPECT_EQ(woke_in[tids[1]], 0);
		EXPECT_GE(checks[tids[1]], 2);
	}
	r = rt->revert_pending(5000ms);
	EXPECT_EQ(r.outcome, Outcome::reverted) << r.message;
}

// A global transition after a wait-free one: a sleeper still in the retired view counts as
// blocked, and when it wakes it parks if the change is being written, then follows the base.
TEST_F(MigrateOnWakeTest, GlobalTransitionAfterWaitFreeMovesSleepersToTheBase)
{
	start_sleepers(2);
	ASSERT_EQ(rt->apply(change, {Mode::wait_free, 5000ms}).outcome, Outcome::finished);
	auto second = std::make_shared<ViewChange>(views, "second");
	atlas::Report r = rt->apply(second, {Mode::global, 5000ms});
	ASSERT_EQ(r.outcome, Outcome::finished) << r.message;
	for (const auto &t : rt->status().threads)
		EXPECT_TRUE(t.migrates_on_wake) << t.tid;
	wake_all();
	std::lock_guard lock(mu);
	for (pid_t tid : tids)
		EXPECT_EQ(woke_in[tid], views->base()) << tid;
}

// A library dlopen'ed while the old and the new view both exist is named in status until one
// view remains.
TEST_F(MigrateOnWakeTest, DlopenWhileTwoViewsExistIsNotedInStatus)
{
	start_sleepers(1);
	{
		std::lock_guard lock(mu);
		verdict[tids[0]] = "lagging on purpose"; // the transition stays pending, split
	}
	EXPECT_TRUE(rt->status().loaded_while_split.empty());
	atlas::Report r = rt->apply(change, {Mode::wait_free, 100ms});
	ASSERT_EQ(r.outcome, Outcome::pending) << r.message;
	EXPECT_TRUE(rt->status().loaded_while_split.empty());
	void *lib = dlopen(ATLAS_DLOPEN_PROBE, RTLD_NOW | RTLD_LOCAL);
	ASSERT_NE(lib, nullptr) << dlerror();
	atlas::StatusSnapshot s = rt->status();
	ASSERT_EQ(s.loaded_while_split.size(), 1u) << s.to_json();
	EXPECT_NE(s.loaded_while_split[0].name.find("dlopen_probe"), std::string::npos);
	EXPECT_EQ(s.loaded_while_split[0].transition, r.transition);
	EXPECT_NE(s.loaded_while_split[0].note.find("cannot be unshared until one view remains"),
	          std::string::npos)
	    << s.loaded_while_split[0].note;
	auto j = nlohmann::json::parse(s.to_json());
	ASSERT_EQ(j["loaded_while_split"].size(), 1u);
	EXPECT_EQ(j["loaded_while_split"][0]["transition"], r.transition);
	// Still listed once (not once per status call).
	EXPECT_EQ(rt->status().loaded_while_split.size(), 1u);
	r = rt->revert_pending(5000ms);
	ASSERT_EQ(r.outcome, Outcome::reverted) << r.message;
	EXPECT_TRUE(rt->status().loaded_while_split.empty());
	dlclose(lib);
}

} // namespace
