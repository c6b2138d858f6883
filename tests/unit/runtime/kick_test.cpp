// Kicks (RuntimeOptions::kick) in wait-free mode on simulated views, and the status note for
// objects loaded while two views exist (design sec. 3, "Lifecycle").
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

// A thread "blocked in a wrapped call": between blocking_enter() and blocking_exit() it waits
// on a condition variable that only a kick (or the end of the test) wakes. Without kicks it
// would stay in the old view forever.
class KickTest : public ::testing::Test
{
protected:
	void make_runtime(bool with_kick)
	{
		views = std::make_shared<FakeViewState>();
		atlas::RuntimeOptions options;
		options.views = std::make_unique<FakeViews>(views);
		options.events = events.sink();
		if (with_kick)
			options.kick = [this](pid_t tid) { kick(tid); };
		rt = atlas::Runtime::create(std::move(options));
		ASSERT_TRUE(rt);
		exempt_existing_threads(*rt);
		change = std::make_shared<ViewChange>(views, "fix");
	}
	void kick(pid_t tid)
	{
		std::lock_guard lock(mu);
		kicked_tids.push_back(tid);
		if (ignore_kicks > 0) {
			ignore_kicks--; // a missed kick: only costs delay
			return;
		}
		wake++;
		cv.notify_all();
	}
	void start_blocked(int n)
	{
		std::latch registered(n);
		for (int i = 0; i < n; i++) {
			threads.push_back(spawn(views, [this, i, &registered] {
				ASSERT_TRUE(
				    rt->register_current_thread("blocked-" + std::to_string(i)));
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
					atlas::blocking_exit(); // migrates here
					lock.lock();
				}
			}));
		}
		registered.wait();
		// Every thread is inside its "call".
		ASSERT_TRUE(eventually([&] {
			for (const auto &t : rt->status().threads)
				if (t.state != atlas::ThreadState::blocked)
					return false;
			return true;
		}));
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
	int wake = 0;
	int ignore_kicks = 0;
	std::vector<pid_t> tids, kicked_tids;
};

TEST_F(KickTest, BlockedThreadsAreKickedAndMigrate)
{
	make_runtime(true);
	start_blocked(3);
	const auto start = std::chrono::steady_clock::now();
	atlas::Report r = rt->apply(change, {Mode::wait_free, 5000ms});
	ASSERT_EQ(r.outcome, Outcome::finished) << r.message;
	EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
	{
		std::lock_guard lock(mu);
		for (pid_t tid : tids)
			EXPECT_NE(std::find(kicked_tids.begin(), kicked_tids.end(), tid),
			          kicked_tids.end())
			    << tid;
	}
	EXPECT_GE(rt->status().kicks_sent, 3u);
	auto lines = events.lines();
	bool finished_with_kicks = false;
	for (const auto &l : lines)
		if (l["event"] == "finished")
			finished_with_kicks = l.value("kicks", 0) >= 3;
	EXPECT_TRUE(finished_with_kicks);
	// Revert: kicked again, back to the old code.
	r = rt->revert("fix", {Mode::wait_free, 5000ms});
	EXPECT_EQ(r.outcome, Outcome::finished) << r.message;
}

TEST_F(KickTest, MissedKicksAreRepeated)
{
	make_runtime(true);
	start_blocked(1);
	ignore_kicks = 3;
	atlas::Report r = rt->apply(change, {Mode::wait_free, 5000ms});
	ASSERT_EQ(r.outcome, Outcome::finished) << r.message;
	std::lock_guard lock(mu);
	EXPECT_GE(kicked_tids.size(), 4u);
}

TEST_F(KickTest, WithoutKicksABlockedThreadLeavesItPending)
{
	make_runtime(false);
	start_blocked(1);
	atlas::Report r = rt->apply(change, {Mode::wait_free, 200ms});
	EXPECT_EQ(r.outcome, Outcome::pending) << r.message;
	ASSERT_EQ(r.lagging.size(), 1u);
	EXPECT_EQ(r.lagging[0].state, atlas::ThreadState::blocked);
	EXPECT_EQ(rt->status().kicks_sent, 0u);
	r = rt->revert_pending(5000ms);
	EXPECT_EQ(r.outcome, Outcome::reverted) << r.message;
}

TEST_F(KickTest, GlobalModeNeverKicks)
{
	make_runtime(true);
	start_blocked(2);
	atlas::Report r = rt->apply(change, {Mode::global, 5000ms});
	ASSERT_EQ(r.outcome, Outcome::finished) << r.message;
	r = rt->revert("fix", {Mode::global, 5000ms});
	ASSERT_EQ(r.outcome, Outcome::finished) << r.message;
	std::lock_guard lock(mu);
	EXPECT_TRUE(kicked_tids.empty());
	EXPECT_EQ(rt->status().kicks_sent, 0u);
}

// A library dlopen'ed while the old and the new view both exist is named in status until one
// view remains.
TEST_F(KickTest, DlopenWhileTwoViewsExistIsNotedInStatus)
{
	make_runtime(false);
	start_blocked(1); // lags: the transition stays pending with two views
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
