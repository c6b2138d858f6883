// Wait-free mode on simulated views: the patcher applies in a new view, each worker migrates
// at its own next point, the old view is retired.
#include "changes.hpp"

#include <gtest/gtest.h>
#include <latch>
#include <optional>

using namespace atlas_test;
using atlas::Mode;
using atlas::Outcome;

namespace
{

class WaitFreeTest : public ::testing::Test
{
protected:
	void SetUp() override
	{
		views = std::make_shared<FakeViewState>();
		atlas::RuntimeOptions options;
		options.views = std::make_unique<FakeViews>(views);
		options.events = events.sink();
		rt = atlas::Runtime::create(std::move(options));
		ASSERT_TRUE(rt);
		exempt_existing_threads(*rt);
		change = std::make_shared<ViewChange>(views, "fix");
	}
	void start_workers(int n)
	{
		std::latch registered(n);
		for (int i = 0; i < n; i++) {
			workers.push_back(spawn(views, [this, i, &registered] {
				ASSERT_TRUE(
				    rt->register_current_thread("worker-" + std::to_string(i)));
				registered.count_down();
				int last = 1;
				while (!stop.load(std::memory_order_acquire)) {
					atlas::quiescence_point();
					int v = change->version();
					// Between points the version never changes under a thread.
					if (v != change->version())
						inconsistent++;
					if (v != last)
						switches++;
					last = v;
					std::this_thread::yield();
				}
			}));
		}
		registered.wait();
	}
	void stop_workers()
	{
		stop.store(true, std::memory_order_release);
		for (auto &w : workers)
			w.join();
		workers.clear();
	}
	void TearDown() override
	{
		stop_workers();
		// Never leave a transition in flight for the next test.
		if (rt && rt->status().transition)
			(void)rt->revert_pending(5000ms);
	}
	bool all_workers_in(long view)
	{
		for (const auto &t : rt->status().threads)
			if (views->current_of(t.tid) != view)
				return false;
		return true;
	}

	std::shared_ptr<FakeViewState> views;
	EventRecorder events;
	std::unique_ptr<atlas::Runtime> rt;
	std::shared_ptr<ViewChange> change;
	std::vector<std::thread> workers;
	std::atomic<bool> stop{false};
	std::atomic<int> inconsistent{0};
	std::atomic<int> switches{0};
};

TEST_F(WaitFreeTest, WorkersMigrateAndOldViewIsRetired)
{
	start_workers(4);
	atlas::Report r = rt->apply(change, {Mode::automatic, 5000ms});
	ASSERT_EQ(r.outcome, Outcome::finished) << r.message;
	EXPECT_EQ(r.mode, Mode::wait_free);
	const long fresh = change->patched_view.load();
	EXPECT_GT(fresh, 0);
	EXPECT_EQ(views->base(), fresh);
	EXPECT_FALSE(views->live(0));
	EXPECT_TRUE(all_workers_in(fresh));
	EXPECT_EQ(rt->status().base_view, fresh);
	EXPECT_EQ(events.count("thread_migrated"), 4u);
	EXPECT_EQ(events.count("base_switched"), 1u);
	EXPECT_EQ(events.count("view_deleted"), 1u);
	stop_workers();
	EXPECT_EQ(inconsistent.load(), 0);
}

TEST_F(WaitFreeTest, RepeatedApplyRevertCycles)
{
	start_workers(3);
	for (int round = 0; round < 5; round++) {
		atlas::Report a = rt->apply(change, {Mode::wait_free, 5000ms});
		ASSERT_EQ(a.outcome, Outcome::finished) << a.message;
		long base = views->base();
		ASSERT_TRUE(all_workers_in(base));
		atlas::Report b = rt->revert("fix", {Mode::wait_free, 5000ms});
		ASSERT_EQ(b.outcome, Outcome::finished) << b.message;
		ASSERT_NE(views->base(), base);
		ASSERT_FALSE(views->live(base));
		ASSERT_TRUE(all_workers_in(views->base()));
		change->patched_view = 0;
		change->unpatched_view = 0;
	}
	EXPECT_EQ(change->applies.load(), 5);
	EXPECT_EQ(change->reverts.load(), 5);
	EXPECT_EQ(change->unreachable_calls.load(), 5);
	EXPECT_TRUE(rt->status().applied.empty());
}

TEST_F(WaitFreeTest, LaggingThreadLeavesItPendingThenWaitFinishes)
{
	start_workers(2);
	std::latch registered(1), let_go(1);
	pid_t lagging_tid = 0;
	std::thread lagging = spawn(views, [&] {
		ASSERT_TRUE(rt->register_current_thread("slowpoke"));
		lagging_tid = gettid();
		registered.count_down();
		let_go.wait();
		atlas::quiescence_point();
	});
	registered.wait();
	atlas::Report r = rt->apply(change, {Mode::wait_free, 100ms});
	ASSERT_EQ(r.outcome, Outcome::pending) << r.message;
	ASSERT_EQ(r.lagging.size(), 1u);
	EXPECT_EQ(r.lagging[0].name, "slowpoke");
	EXPECT_NE(r.message.find("slowpoke"), std::string::npos);
	auto s = rt->status();
	ASSERT_TRUE(s.transition_state);
	EXPECT_EQ(*s.transition_state, Outcome::pending);
	// Other workers already run the new code; a second request must wait its turn.
	EXPECT_EQ(rt->apply(std::make_shared<ViewChange>(views, "other")).outcome,
	          Outcome::refused);
	let_go.count_down();
	lagging.join(); // migrated at its point, then died: either way it stops counting
	atlas::Report done = rt->wait(5000ms);
	ASSERT_EQ(done.outcome, Outcome::finished) << done.message;
	EXPECT_EQ(views->base(), change->patched_view.load());
	EXPECT_EQ(views->current_of(lagging_tid), change->patched_view.load());
}

TEST_F(WaitFreeTest, PendingThenRevertPendingRestoresOldView)
{
	start_workers(2);
	std::latch registered(1), let_go(1);
	std::thread lagging = spawn(views, [&] {
		ASSERT_TRUE(rt->register_current_thread("slowpoke"));
		registered.count_down();
		let_go.wait();
		atlas::quiescence_point();
	});
	registered.wait();
	ASSERT_EQ(rt->apply(change, {Mode::wait_free, 100ms}).outcome, Outcome::pending);
	const long fresh = change->patched_view.load();
	EXPECT_TRUE(eventually([&] {
		int migrated = 0;
		for (const auto &t : rt->status().threads)
			migrated += t.state == atlas::ThreadState::migrated;
		return migrated == 2;
	}));
	std::thread reverter([&] {
		atlas::Report back = rt->revert_pending(5000ms);
		EXPECT_EQ(back.outcome, Outcome::reverted) << back.message;
	});
	ASSERT_TRUE(events.wait_for("reverting"));
	let_go.count_down();
	lagging.join();
	reverter.join();
	EXPECT_EQ(views->base(), 0);
	EXPECT_FALSE(views->live(fresh));
	EXPECT_TRUE(all_workers_in(0));
	EXPECT_TRUE(rt->status().applied.empty());
	EXPECT_EQ(change->unreachable_calls.load(), 1);
	EXPECT_EQ(events.count("reverted"), 1u);
	stop_workers();
	EXPECT_EQ(inconsistent.load(), 0);
}

TEST_F(WaitFreeTest, BirthsStartInCreatorsViewAndMigrateAtFirstPoint)
{
	std::latch registered(1), let_go(1), child_registered(1), child_go(1);
	std::atomic<long> child_view_at_birth{-1}, child_view_after_point{-1};
	std::thread child;
	std::thread creator = spawn(views, [&] {
		ASSERT_TRUE(rt->register_current_thread("creator"));
		registered.count_down();
		let_go.wait(); // not migrated yet: its child is born in the old view
		child = spawn(views, [&] {
			ASSERT_TRUE(rt->register_current_thread("child"));
			child_view_at_birth = views->current_of_caller();
			child_registered.count_down();
			child_go.wait();
			atlas::quiescence_point();
			child_view_after_point = views->current_of_caller();
		});
		child_registered.wait();
		atlas::quiescence_point();
	});
	registered.wait();
	ASSERT_EQ(rt->apply(change, {Mode::wait_free, 50ms}).outcome, Outcome::pending);
	let_go.count_down();
	creator.join();
	EXPECT_EQ(child_view_at_birth.load(), 0);
	atlas::Report still = rt->wait(50ms);
	EXPECT_EQ(still.outcome, Outcome::pending);
	ASSERT_EQ(still.lagging.size(), 1u);
	EXPECT_EQ(still.lagging[0].name, "child");
	child_go.count_down();
	child.join();
	EXPECT_EQ(child_view_after_point.load(), change->patched_view.load());
	EXPECT_EQ(rt->wait(5000ms).outcome, Outcome::finished);
	EXPECT_GE(events.count("thread_exited"), 1u);
}

// A thread blocked in a bracketed call does not hold the transition up: it counts as migrated
// and moves to the new base when its call returns, before it runs application code.
TEST_F(WaitFreeTest, BlockedThreadDoesNotHoldTheTransitionUp)
{
	std::latch blocked(1), wake(1);
	std::atomic<long> view_after_exit{-1};
	std::atomic<int> version_after_exit{0};
	std::atomic<pid_t> sleeper_tid{0};
	std::thread sleeper = spawn(views, [&] {
		ASSERT_TRUE(rt->register_current_thread("sleeper"));
		sleeper_tid = gettid();
		atlas::blocking_enter();
		blocked.count_down();
		wake.wait();
		atlas::blocking_exit();
		view_after_exit = views->current_of_caller();
		version_after_exit = change->version();
	});
	blocked.wait();
	atlas::Report r = rt->apply(change, {Mode::wait_free, 5000ms});
	ASSERT_EQ(r.outcome, Outcome::finished) << r.message;
	EXPECT_NE(r.message.find("sleeper, view 0"), std::string::npos) << r.message;
	EXPECT_EQ(views->base(), change->patched_view.load());
	EXPECT_EQ(views->current_of(sleeper_tid.load()), 0); // still asleep in view 0
	wake.count_down();
	sleeper.join();
	EXPECT_EQ(view_after_exit.load(), change->patched_view.load());
	EXPECT_EQ(version_after_exit.load(), 2);
	EXPECT_EQ(rt->status().migrated_on_wake, 1u);
}

TEST_F(WaitFreeTest, FailedApplyDropsTheNewViewAndChangesNothing)
{
	start_workers(2);
	change->fail_apply = true;
	atlas::Report r = rt->apply(change, {Mode::wait_free, 1000ms});
	EXPECT_EQ(r.outcome, Outcome::failed);
	EXPECT_FALSE(views->live(1));
	EXPECT_EQ(views->base(), 0);
	EXPECT_TRUE(all_workers_in(0));
	EXPECT_FALSE(rt->status().transition);

	views->fail_create = true;
	change->fail_apply = false;
	r = rt->apply(change, {Mode::wait_free, 1000ms});
	EXPECT_EQ(r.outcome, Outcome::refused);
	EXPECT_NE(r.message.find("ENOMEM"), std::string::npos) << r.message;
}

TEST_F(WaitFreeTest, EventLogTellsTheWholeTransition)
{
	start_workers(2);
	ASSERT_TRUE(rt->apply(change, {Mode::wait_free, 5000ms}).ok());
	std::vector<std::string> order;
	for (const auto &line : events.lines()) {
		ASSERT_TRUE(line.contains("mono_ns"));
		std::string e = line["event"];
		// Under TSan its background thread is exempt: nobody migrates it, so it is
		// reported left in the retired view (UnregisteredThreadsLeftBehindAreReported).
		if (e == "threads_left_behind")
			continue;
		if (e == "thread_migrated") {
			EXPECT_GE(line["latency_ns"].get<long>(), 0);
			EXPECT_TRUE(line["name"].get<std::string>().starts_with("worker-"));
		}
		// The view calls that hold the views' mmap lock for writing carry their duration.
		if (e == "view_created" || e == "base_switched" || e == "view_deleted") {
			EXPECT_GE(line["call_ns"].get<long>(), 0) << e;
		}
		if (order.empty() || order.back() != e)
			order.push_back(e);
	}
	std::vector<std::string> expected = {"runtime_started", "request",         "view_created",
	                                     "change_applied",  "thread_migrated", "base_switched",
	                                     "view_deleted",    "finished"};
	EXPECT_EQ(order, expected);
}

} // namespace

namespace
{

// A view is freed only when its last thread leaves: an exempt thread (the control server's)
// idle in the old base keeps it live after the transition deleted it, and the process split.
// Runtime::follow_base() moves it into the base; status().single_view tells (the SHARE probe).
TEST_F(WaitFreeTest, ExemptThreadFollowsTheBaseSoOneViewIsLeft)
{
	start_workers(2);
	std::mutex mu;
	std::condition_variable cv;
	int asked = 0, answered = 0;
	bool quit = false;
	std::string last_error;
	std::atomic<pid_t> helper_tid{0};
	std::thread helper = spawn(views, [&] {
		helper_tid = gettid();
		std::unique_lock lock(mu);
		for (;;) {
			cv.wait(lock, [&] { return quit || asked != answered; });
			if (quit)
				break;
			lock.unlock();
			atlas::Expected<void> r = rt->follow_base();
			lock.lock();
			last_error = r.ok() ? "" : r.error().message;
			answered++;
			cv.notify_all();
		}
		views->forget_caller();
	});
	ASSERT_TRUE(eventually([&] { return helper_tid.load() != 0; }));
	ASSERT_TRUE(rt->exempt_thread(helper_tid.load()));
	auto follow = [&] {
		std::unique_lock lock(mu);
		asked++;
		cv.notify_all();
		cv.wait(lock, [&] { return asked == answered; });
		return last_error;
	};
	ASSERT_EQ(rt->status().single_view, std::optional<bool>(true));
	EXPECT_EQ(follow(), "");
	EXPECT_EQ(views->current_of(helper_tid.load()), 0) << "already in the base";

	atlas::Report r = rt->apply(change, {Mode::wait_free, 5000ms});
	ASSERT_EQ(r.outcome, Outcome::finished) << r.message;
	const long base = rt->status().base_view;
	EXPECT_NE(base, 0);
	EXPECT_FALSE(views->live(0)) << "the old base is deleted";
	EXPECT_EQ(views->current_of(helper_tid.load()), 0) << "but the helper is still in it";
	EXPECT_EQ(rt->status().single_view, std::optional<bool>(false));

	EXPECT_EQ(follow(), "");
	EXPECT_EQ(views->current_of(helper_tid.load()), base);
	EXPECT_EQ(rt->status().single_view, std::optional<bool>(true));
	EXPECT_EQ(rt->status().to_json().find("\"single_view\":true") != std::string::npos, true)
	    << rt->status().to_json();

	// Registered threads migrate at their points: refused there.
	std::string refused;
	spawn(views, [&] {
		(void)rt->register_current_thread("registered");
		atlas::Expected<void> f = rt->follow_base();
		refused = f.ok() ? "" : f.error().message;
		(void)rt->unregister_current_thread();
		views->forget_caller();
	}).join();
	EXPECT_NE(refused.find("registered thread"), std::string::npos) << refused;

	{
		std::lock_guard lock(mu);
		quit = true;
		cv.notify_all();
	}
	helper.join();
}

} // namespace

namespace
{

// An unregistered thread that waits for commands: follow the base, or quit.
class Helper
{
public:
	Helper(const std::shared_ptr<FakeViewState> &views, atlas::Runtime &rt) : rt_(rt)
	{
		thread_ = spawn(views, [this, views] {
			tid_ = gettid();
			std::unique_lock lock(mu_);
			for (;;) {
				cv_.wait(lock, [&] { return quit_ || asked_ != answered_; });
				if (quit_)
					break;
				lock.unlock();
				atlas::Expected<void> r = rt_.follow_base();
				lock.lock();
				error_ = r.ok() ? "" : r.error().message;
				answered_++;
				cv_.notify_all();
			}
			views->forget_caller();
		});
		(void)eventually([&] { return tid_.load() != 0; });
	}
	~Helper()
	{
		quit();
	}
	pid_t tid() const
	{
		return tid_.load();
	}
	std::string follow()
	{
		std::unique_lock lock(mu_);
		asked_++;
		cv_.notify_all();
		cv_.wait(lock, [&] { return asked_ == answered_; });
		return error_;
	}
	void quit()
	{
		{
			std::lock_guard lock(mu_);
			quit_ = true;
			cv_.notify_all();
		}
		if (thread_.joinable())
			thread_.join();
	}

private:
	atlas::Runtime &rt_;
	std::thread thread_;
	std::atomic<pid_t> tid_{0};
	std::mutex mu_;
	std::condition_variable cv_;
	int asked_ = 0, answered_ = 0;
	bool quit_ = false;
	std::string error_;
};

std::optional<atlas::ThreadInfo> behind(const atlas::StatusSnapshot &s, pid_t tid)
{
	for (const auto &t : s.left_behind)
		if (t.tid == tid)
			return t;
	return std::nullopt;
}

bool names(const std::string &text, pid_t tid)
{
	return text.find(std::to_string(tid) + " (") != std::string::npos;
}

// Nobody migrates a thread the runtime does not register (docs/live-patching.md, "Threads the
// runtime does not register": only registered threads migrate at their points): after a wait-free
// transition an exempt thread is still in the retired view and keeps it live. The runtime says so:
// the report's message and a threads_left_behind event name it (not a thread that promised to
// follow the base), status lists every such thread (left_behind, also in JSON) until it calls
// follow_base() or exits.
TEST_F(WaitFreeTest, UnregisteredThreadsLeftBehindAreReported)
{
	start_workers(2);
	Helper plain(views, *rt), follower(views, *rt);
	ASSERT_TRUE(rt->exempt_thread(plain.tid()));
	ASSERT_TRUE(rt->exempt_thread(follower.tid(), /*follows_base=*/true));
	EXPECT_FALSE(behind(rt->status(), plain.tid()));

	atlas::Report r = rt->apply(change, {Mode::wait_free, 5000ms});
	ASSERT_EQ(r.outcome, Outcome::finished) << r.message;
	const long base = rt->status().base_view;
	ASSERT_NE(base, 0);
	EXPECT_TRUE(names(r.message, plain.tid())) << r.message;
	EXPECT_FALSE(names(r.message, follower.tid())) << r.message;
	EXPECT_NE(r.message.find("retired view 0"), std::string::npos) << r.message;
	EXPECT_NE(r.message.find("follow_base"), std::string::npos) << r.message;
	EXPECT_FALSE(names(r.message, gettid()))
	    << "the patcher ends in the new base: " << r.message;
	ASSERT_EQ(events.count("threads_left_behind"), 1u);
	for (const auto &line : events.lines()) {
		if (line.value("event", "") != "threads_left_behind")
			continue;
		EXPECT_EQ(line["view"], 0);
		EXPECT_EQ(line["base_view"], base);
		bool has_plain = false, has_follower = false;
		for (const auto &t : line["threads"]) {
			has_plain |= t["tid"] == plain.tid();
			has_follower |= t["tid"] == follower.tid();
		}
		EXPECT_TRUE(has_plain) << line.dump();
		EXPECT_FALSE(has_follower) << line.dump();
	}
	auto s = rt->status();
	ASSERT_TRUE(behind(s, plain.tid())) << s.to_json();
	EXPECT_EQ(behind(s, plain.tid())->view, 0);
	EXPECT_NE(behind(s, plain.tid())->note.find("follow_base"), std::string::npos);
	ASSERT_TRUE(behind(s, follower.tid())) << "listed while behind, though not named";
	EXPECT_NE(behind(s, follower.tid())->note.find("when it wakes"), std::string::npos);
	EXPECT_FALSE(behind(s, gettid()));
	for (const auto &t : rt->status().threads)
		EXPECT_FALSE(behind(s, t.tid)) << "registered threads migrated";
	EXPECT_EQ(s.single_view, std::optional<bool>(false)) << "they keep view 0 live";
	const auto json = nlohmann::json::parse(s.to_json());
	bool in_json = false;
	for (const auto &t : json["left_behind"])
		in_json |= t["tid"] == plain.tid() && t["view"] == 0;
	EXPECT_TRUE(in_json) << json.dump();

	// Following the base takes them off the list, one by one.
	EXPECT_EQ(plain.follow(), "");
	EXPECT_FALSE(behind(rt->status(), plain.tid()));
	EXPECT_TRUE(behind(rt->status(), follower.tid()));
	EXPECT_EQ(follower.follow(), "");
	EXPECT_FALSE(behind(rt->status(), follower.tid()));
	EXPECT_EQ(rt->status().single_view, std::optional<bool>(true));

	// The next transition (a wait-free revert) leaves them behind again, in the view it
	// retired; a thread that exits is no longer listed.
	r = rt->revert(change->identity(), {Mode::wait_free, 5000ms});
	ASSERT_EQ(r.outcome, Outcome::finished) << r.message;
	EXPECT_TRUE(names(r.message, plain.tid())) << r.message;
	EXPECT_NE(r.message.find("retired view " + std::to_string(base)), std::string::npos)
	    << r.message;
	EXPECT_EQ(events.count("threads_left_behind"), 2u);
	s = rt->status();
	ASSERT_TRUE(behind(s, plain.tid()));
	EXPECT_EQ(behind(s, plain.tid())->view, base);
	plain.quit();
	EXPECT_TRUE(eventually([&] { return !behind(rt->status(), plain.tid()); }));
	EXPECT_TRUE(behind(rt->status(), follower.tid()));
	EXPECT_EQ(follower.follow(), "");
	EXPECT_FALSE(behind(rt->status(), follower.tid()));
}

// With unknown threads allowed (refuse_unknown_threads off), a thread the runtime knows
// nothing of is not migrated either: reported the same way.
TEST(WaitFreeUnknownThreads, AllowedUnknownThreadIsReportedLeftBehind)
{
	auto views = std::make_shared<FakeViewState>();
	EventRecorder events;
	atlas::RuntimeOptions options;
	options.views = std::make_unique<FakeViews>(views);
	options.events = events.sink();
	options.refuse_unknown_threads = false;
	auto rt = atlas::Runtime::create(std::move(options));
	ASSERT_TRUE(rt);
	Helper unknown(views, *rt);
	auto change = std::make_shared<ViewChange>(views, "fix");
	atlas::Report r = rt->apply(change, {Mode::wait_free, 5000ms});
	ASSERT_EQ(r.outcome, Outcome::finished) << r.message;
	EXPECT_TRUE(names(r.message, unknown.tid())) << r.message;
	EXPECT_EQ(events.count("threads_left_behind"), 1u);
	ASSERT_TRUE(behind(rt->status(), unknown.tid()));
	EXPECT_EQ(unknown.follow(), "");
	EXPECT_FALSE(behind(rt->status(), unknown.tid()));
	EXPECT_EQ(views->current_of(unknown.tid()), rt->status().base_view);
	unknown.quit();
	ASSERT_TRUE(rt->revert(change->identity(), {Mode::wait_free, 5000ms}).ok());
}

// A thread registered without a name (the preload registers threads as they are created) is
// named by its current comm in the event log too, as in status: programs name their threads
// after creating them.
TEST_F(WaitFreeTest, EventsNameThreadsByTheirCurrentComm)
{
	std::atomic<bool> named{false};
	workers.push_back(spawn(views, [&] {
		ASSERT_TRUE(rt->register_current_thread());
		pthread_setname_np(pthread_self(), "renamed-late");
		named = true;
		while (!stop.load(std::memory_order_acquire)) {
			atlas::quiescence_point();
			std::this_thread::yield();
		}
	}));
	ASSERT_TRUE(eventually([&] { return named.load(); }));
	atlas::Report r = rt->apply(change, {Mode::wait_free, 5000ms});
	ASSERT_EQ(r.outcome, Outcome::finished) << r.message;
	int migrated = 0;
	for (const auto &line : events.lines())
		if (line.value("event", "") == "thread_migrated") {
			migrated++;
			EXPECT_EQ(line.value("name", ""), "renamed-late") << line.dump();
		}
	EXPECT_EQ(migrated, 1);
}

// An event sink may call back into the runtime: no event is written with the runtime's lock
// held. A refusal before anything is published (creating the view failed) used to be.
TEST(WaitFreeEvents, SinkReadingStatusOnARefusalDoesNotDeadlock)
{
	auto views = std::make_shared<FakeViewState>();
	std::atomic<atlas::Runtime *> self{nullptr};
	std::atomic<int> statuses{0};
	atlas::RuntimeOptions options;
	options.views = std::make_unique<FakeViews>(views);
	options.events.callback = [&](std::string_view line) {
		atlas::Runtime *runtime = self.load();
		if (runtime && nlohmann::json::parse(line)["event"] == "refused") {
			EXPECT_FALSE(runtime->status().transition);
			statuses++;
		}
	};
	std::unique_ptr<atlas::Runtime> rt = atlas::Runtime::create(std::move(options));
	ASSERT_TRUE(rt);
	exempt_existing_threads(*rt);
	self = rt.get();
	views->fail_create = true;
	auto change = std::make_shared<ViewChange>(views, "fix");
	atlas::Report r = rt->apply(change, {Mode::wait_free, 1000ms});
	EXPECT_EQ(r.outcome, Outcome::refused) << r.message;
	EXPECT_EQ(statuses.load(), 1);
	self = nullptr;
}

} // namespace
