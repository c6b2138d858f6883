// Global mode: every registered thread parked or blocked while the change is written.
#include "changes.hpp"

#include <gtest/gtest.h>
#include <latch>
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

using namespace atlas_test;
using atlas::Mode;
using atlas::Outcome;

namespace
{

class GlobalTest : public ::testing::Test
{
protected:
	void SetUp() override
	{
		target.entry = version_one;
		for (auto &b : target.bytes)
			b = 1;
		atlas::RuntimeOptions options;
		options.views = make_views();
		options.events = events.sink();
		adjust(options);
		rt = atlas::Runtime::create(std::move(options));
		ASSERT_TRUE(rt);
		exempt_existing_threads(*rt);
	}
	virtual void adjust(atlas::RuntimeOptions &) {}
	virtual std::unique_ptr<atlas::ViewOps> make_views()
	{
		auto state = std::make_shared<FakeViewState>();
		state->unavailable = true; // a stock kernel
		return std::make_unique<FakeViews>(state);
	}

	// Workers that loop over quiescence points and observe the target.
	void start_workers(int n)
	{
		std::latch registered(n);
		for (int i = 0; i < n; i++) {
			workers.emplace_back([this, i, &registered] {
				ASSERT_TRUE(
				    rt->register_current_thread("worker-" + std::to_string(i)));
				registered.count_down();
				while (!stop.load(std::memory_order_acquire)) {
					atlas::quiescence_point();
					int v = observe(target, torn);
					if (v == 2)
						saw_two++;
					std::this_thread::yield();
				}
			});
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
	}

	Target target;
	EventRecorder events;
	std::unique_ptr<atlas::Runtime> rt;
	std::vector<std::thread> workers;
	std::atomic<bool> stop{false};
	std::atomic<int> torn{0};
	std::atomic<int> saw_two{0};
};

TEST_F(GlobalTest, WorkersParkWhileChangeIsAppliedRevertedAndReapplied)
{
	start_workers(4);
	auto change = std::make_shared<SwapChange>(target, "swap");
	for (int round = 0; round < 5; round++) {
		atlas::Report applied = rt->apply(change, {Mode::automatic, 5000ms});
		ASSERT_EQ(applied.outcome, Outcome::finished) << applied.message;
		EXPECT_EQ(applied.mode, Mode::global);
		atlas::Report reverted = rt->revert("swap", {Mode::global, 5000ms});
		ASSERT_EQ(reverted.outcome, Outcome::finished) << reverted.message;
	}
	ASSERT_TRUE(rt->apply(change, {Mode::global, 5000ms}).ok());
	int before = saw_two.load();
	EXPECT_TRUE(eventually([&] { return saw_two.load() > before + 8; }));
	stop_workers();
	EXPECT_EQ(torn.load(), 0);
	EXPECT_EQ(change->applies.load(), 6);
	EXPECT_EQ(change->reverts.load(), 5);
	EXPECT_EQ(target.entry(), 2);
	EXPECT_EQ(events.count("finished"), 11u);
	EXPECT_GE(events.count("thread_parked"), 4u);
}

TEST_F(GlobalTest, ReapplyingReportsAlreadyApplied)
{
	start_workers(2);
	auto change = std::make_shared<SwapChange>(target, "once");
	ASSERT_TRUE(rt->apply(change).ok());
	atlas::Report again = rt->apply(std::make_shared<SwapChange>(target, "once"));
	EXPECT_EQ(again.outcome, Outcome::already_applied);
	EXPECT_TRUE(again.ok());
	EXPECT_EQ(change->applies.load(), 1);
}

// Global mode serialises every thread's instruction stream before it runs rewritten code: after
// apply()/revert() and before the threads are released, membarrier(PRIVATE_EXPEDITED_SYNC_CORE)
// when the kernel has it (queried here independently), logged with its outcome; without it the
// status and runtime_started say so.
TEST_F(GlobalTest, MembarrierSyncCoreBeforeRelease)
{
	const long cmds = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
	const bool kernel_has = cmds >= 0 && (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE);
	const auto s = rt->status();
	EXPECT_EQ(s.membarrier_sync_core, kernel_has) << s.membarrier_note;
	if (!kernel_has) {
		EXPECT_FALSE(s.membarrier_note.empty());
	}
	start_workers(2);
	auto change = std::make_shared<SwapChange>(target, "barrier");
	ASSERT_EQ(rt->apply(change).outcome, Outcome::finished);
	ASSERT_EQ(rt->revert(change->identity()).outcome, Outcome::finished);
	std::vector<std::string> order;
	int barriers = 0;
	for (const auto &line : events.lines()) {
		const std::string e = line["event"];
		if (e == "runtime_started") {
			EXPECT_EQ(line["membarrier_sync_core"], kernel_has);
		}
		if (e == "membarrier") {
			barriers++;
			EXPECT_EQ(line["sync_core"], kernel_has) << line.dump();
			EXPECT_EQ(line["ok"], kernel_has) << line.dump();
		}
		if (e == "change_applied" || e == "membarrier" || e == "finished")
			order.push_back(e);
	}
	EXPECT_EQ(barriers, 2);
	const std::vector<std::string> expected = {"change_applied", "membarrier", "finished",
	                                           "change_applied", "membarrier", "finished"};
	EXPECT_EQ(order, expected);
}

TEST_F(GlobalTest, LaggingThreadMeansRefusedUnchangedAndNamed)
{
	start_workers(2);
	std::latch lagging_registered(1), let_go(1);
	std::thread lagging([&] {
		ASSERT_TRUE(rt->register_current_thread("stuck-worker"));
		lagging_registered.count_down();
		let_go.wait(); // never reaches a quiescence point meanwhile
	});
	lagging_registered.wait();
	auto change = std::make_shared<SwapChange>(target, "late");
	atlas::Report r = rt->apply(change, {Mode::global, 150ms});
	EXPECT_EQ(r.outcome, Outcome::refused);
	EXPECT_NE(r.message.find("stuck-worker"), std::string::npos) << r.message;
	// It never reached a point: the advice is to add points (or bracket blocking calls).
	EXPECT_NE(r.message.find("make them call atlas_quiescence_point()"), std::string::npos)
	    << r.message;
	ASSERT_EQ(r.lagging.size(), 1u);
	EXPECT_EQ(r.lagging[0].name, "stuck-worker");
	// The kernel's word on where it is: in futex (std::latch::wait), and where it waits.
	EXPECT_EQ(r.lagging[0].where.rfind("in futex", 0), 0u) << r.lagging[0].where;
	EXPECT_NE(r.message.find("stuck-worker, running, view 0, in futex"), std::string::npos)
	    << r.message;
	EXPECT_EQ(change->applies.load(), 0);
	EXPECT_TRUE(rt->status().applied.empty());
	// The parked workers were released: none is parked any more.
	EXPECT_TRUE(eventually([&] {
		for (const auto &t : rt->status().threads)
			if (t.state == atlas::ThreadState::parked)
				return false;
		return true;
	}));
	let_go.count_down();
	lagging.join();
	EXPECT_EQ(target.entry(), 1);
	EXPECT_EQ(events.count("refused"), 1u);
	// And a retry without the laggard succeeds.
	EXPECT_TRUE(rt->apply(change, {Mode::global, 5000ms}).ok());
}

class GlobalParkBoundTest : public GlobalTest
{
	void adjust(atlas::RuntimeOptions &options) override
	{
		options.park_bound = 30ms;
	}
};

// A barrier that cannot complete (one thread never reaches a point) releases the parked
// threads after the park bound and tries again: over a 600 ms deadline no worker waits in a
// point much longer than 30 ms, where it waited the whole deadline before.
TEST_F(GlobalParkBoundTest, RefusedBarrierParksNobodyLongerThanTheBound)
{
	std::atomic<bool> done{false};
	std::atomic<std::int64_t> longest_ns{0};
	std::latch registered(3);
	std::vector<std::thread> parkers;
	for (int i = 0; i < 2; i++)
		parkers.emplace_back([&, i] {
			ASSERT_TRUE(rt->register_current_thread("parker-" + std::to_string(i)));
			registered.count_down();
			while (!done.load()) {
				const auto t0 = std::chrono::steady_clock::now();
				atlas::quiescence_point();
				const std::int64_t ns =
				    std::chrono::nanoseconds(std::chrono::steady_clock::now() - t0)
				        .count();
				std::int64_t seen = longest_ns.load();
				while (ns > seen && !longest_ns.compare_exchange_weak(seen, ns)) {
				}
				std::this_thread::sleep_for(1ms);
			}
		});
	std::latch let_go(1);
	std::thread stuck([&] {
		ASSERT_TRUE(rt->register_current_thread("stuck"));
		registered.count_down();
		let_go.wait();
	});
	registered.wait();
	auto change = std::make_shared<SwapChange>(target, "bounded");
	atlas::Report r = rt->apply(change, {Mode::global, 600ms});
	EXPECT_EQ(r.outcome, Outcome::refused) << r.message;
	EXPECT_NE(r.message.find(" ms parked)"), std::string::npos) << r.message;
	EXPECT_NE(r.message.find("attempts of at most 30 ms parked"), std::string::npos)
	    << r.message;
	ASSERT_EQ(r.lagging.size(), 1u);
	EXPECT_EQ(r.lagging[0].name, "stuck");
	EXPECT_EQ(change->applies.load(), 0);
	done = true;
	let_go.count_down();
	for (auto &t : parkers)
		t.join();
	stuck.join();
	EXPECT_GT(longest_ns.load(), 0);
	EXPECT_LT(longest_ns.load(), 300'000'000) << "a worker stayed parked that long";
	// With the laggard gone the next apply completes.
	EXPECT_TRUE(rt->apply(change, {Mode::global, 5000ms}).ok());
}

TEST_F(GlobalTest, BlockedThreadCountsAsQuiescentAndParksInExit)
{
	std::latch blocked(1), wake(1);
	std::atomic<int> seen_after_exit{0};
	std::thread sleeper([&] {
		ASSERT_TRUE(rt->register_current_thread("sleeper"));
		atlas::blocking_enter();
		blocked.count_down();
		wake.wait(); // the "blocking call"
		atlas::blocking_exit();
		// Must not get here before the change is complete: reads race otherwise (TSan).
		seen_after_exit = target.entry();
	});
	blocked.wait();
	auto change = std::make_shared<SwapChange>(target, "while-blocked");
	const pid_t sleeper_tid = [&] {
		pid_t tid = 0;
		eventually([&] {
			auto threads = rt->status().threads;
			if (threads.size() == 1)
				tid = threads[0].tid;
			return tid != 0;
		});
		return tid;
	}();
	change->during_apply = [&] {
		// The blocked thread wakes up mid-write: its exit must park it.
		wake.count_down();
		EXPECT_TRUE(eventually([&] {
			auto t = find_thread(*rt, sleeper_tid);
			return t && t->state == atlas::ThreadState::parked;
		}));
	};
	atlas::Report r = rt->apply(change, {Mode::global, 5000ms});
	ASSERT_EQ(r.outcome, Outcome::finished) << r.message;
	sleeper.join();
	EXPECT_EQ(seen_after_exit.load(), 2);
}

TEST_F(GlobalTest, UnknownThreadIsRefusedAndNamed)
{
	std::latch started(1), let_go(1);
	std::thread stranger([&] {
		pthread_setname_np(pthread_self(), "stranger");
		started.count_down();
		let_go.wait();
	});
	started.wait();
	auto change = std::make_shared<SwapChange>(target, "unknown");
	atlas::Report r = rt->apply(change, {Mode::global, 2000ms});
	EXPECT_EQ(r.outcome, Outcome::refused);
	EXPECT_NE(r.message.find("stranger"), std::string::npos) << r.message;
	EXPECT_EQ(change->applies.load(), 0);
	let_go.count_down();
	stranger.join();
}

// One gathering attempt for the whole test: with the default 50 ms park bound, a loaded host
// (sanitizers, -j2) can take longer than that to start the child, the attempt is released, and
// the child passes its quiescence point while the program runs between attempts, before the
// change, as it should (docs/live-patching.md, the park bound). The test is about a thread born
// while threads are parked.
class GlobalOneAttemptTest : public GlobalTest
{
	void adjust(atlas::RuntimeOptions &options) override
	{
		options.park_bound = 8000ms;
	}
};

TEST_F(GlobalOneAttemptTest, BirthsAndDeathsDuringTransition)
{
	start_workers(2);
	std::latch lagging_registered(1), let_go(1);
	std::atomic<int> child_saw{0};
	std::thread child;
	std::thread creator([&] {
		ASSERT_TRUE(rt->register_current_thread("creator"));
		lagging_registered.count_down();
		let_go.wait(); // lags until the transition is under way
		// Born mid-transition: must park before running, and sees the change after.
		std::latch child_registered(1);
		child = std::thread([&] {
			ASSERT_TRUE(rt->register_current_thread("child"));
			child_registered.count_down();
			atlas::quiescence_point();
			child_saw = target.entry();
		});
		child_registered.wait();
		// Dies without reaching a quiescence point: stops counting.
	});
	lagging_registered.wait();
	auto change = std::make_shared<SwapChange>(target, "births");
	std::thread patcher([&] {
		atlas::Report r = rt->apply(change, {Mode::global, 8000ms});
		EXPECT_EQ(r.outcome, Outcome::finished) << r.message;
	});
	// Gathering (past the first unknown-thread check, which the child would fail).
	ASSERT_TRUE(eventually([&] { return rt->status().transition.has_value(); }));
	let_go.count_down();
	creator.join();
	child.join();
	patcher.join();
	EXPECT_EQ(child_saw.load(), 2);
	EXPECT_EQ(change->applies.load(), 1);
	EXPECT_GE(events.count("thread_exited"), 1u);
}

TEST_F(GlobalTest, FailedChangeLeavesNothingApplied)
{
	start_workers(2);
	auto change = std::make_shared<SwapChange>(target, "broken");
	change->fail_apply = true;
	atlas::Report r = rt->apply(change);
	EXPECT_EQ(r.outcome, Outcome::failed) << r.message;
	EXPECT_NE(r.message.find("injected failure"), std::string::npos);
	EXPECT_TRUE(rt->status().applied.empty());
}

TEST_F(GlobalTest, RevertIsLastInFirstOutPerFunction)
{
	start_workers(1);
	Target other;
	other.entry = version_one;
	auto first = std::make_shared<SwapChange>(
	    target, "first", false, std::vector<atlas::AddressRange>{{0x1000, 0x1100, {}}});
	auto second = std::make_shared<SwapChange>(
	    other, "second", false, std::vector<atlas::AddressRange>{{0x1080, 0x1200, {}}});
	ASSERT_TRUE(rt->apply(first).ok());
	ASSERT_TRUE(rt->apply(second).ok());
	atlas::Report r = rt->revert("first");
	EXPECT_EQ(r.outcome, Outcome::refused);
	EXPECT_NE(r.message.find("revert second first"), std::string::npos) << r.message;
	EXPECT_TRUE(rt->revert("second").ok());
	EXPECT_TRUE(rt->revert("first").ok());
	EXPECT_EQ(rt->revert("first").outcome, Outcome::refused); // not applied any more
}

// A change stacked on another (it uses the other's code or data) needs that very object
// applied: created on top of "base", it is refused once "base" was reverted, and again once
// "base" is applied anew as another object; and "base" cannot be reverted under it.
TEST_F(GlobalTest, StackedChangeNeedsItsBaseApplied)
{
	start_workers(1);
	Target other;
	other.entry = version_one;
	auto base = std::make_shared<SwapChange>(target, "base");
	ASSERT_TRUE(rt->apply(base).ok());
	auto top = std::make_shared<SwapChange>(other, "top");
	top->bases = {base};
	ASSERT_TRUE(rt->revert("base").ok()); // between the top's creation and its apply
	const size_t requests = events.count("request");

	atlas::Report r = rt->apply(top);
	EXPECT_EQ(r.outcome, Outcome::refused) << r.message;
	EXPECT_EQ(r.transition, 0u) << "refused before any transition";
	for (const char *word : {"top was loaded on top of base", "no longer applied",
	                         "nothing changed", "Load top again", "applying base again"})
		EXPECT_NE(r.message.find(word), std::string::npos) << word << ": " << r.message;
	EXPECT_EQ(top->applies.load(), 0);
	EXPECT_EQ(other.entry, version_one);
	EXPECT_EQ(events.count("request"), requests) << "no transition started";

	auto base2 = std::make_shared<SwapChange>(target, "base");
	ASSERT_TRUE(rt->apply(base2).ok());
	r = rt->apply(top);
	EXPECT_EQ(r.outcome, Outcome::refused) << r.message;
	EXPECT_NE(r.message.find("another copy"), std::string::npos) << r.message;
	EXPECT_EQ(top->applies.load(), 0);

	auto top2 = std::make_shared<SwapChange>(other, "top");
	top2->bases = {base2};
	ASSERT_TRUE(rt->apply(top2).ok());
	r = rt->revert("base");
	EXPECT_EQ(r.outcome, Outcome::refused) << r.message;
	EXPECT_NE(r.message.find("top stacks on base"), std::string::npos) << r.message;
	EXPECT_NE(r.message.find("revert top first"), std::string::npos) << r.message;
	EXPECT_EQ(base2->reverts.load(), 0);
	EXPECT_TRUE(rt->revert("top").ok());
	EXPECT_TRUE(rt->revert("base").ok());
	EXPECT_TRUE(rt->status().applied.empty());
}

TEST_F(GlobalTest, CalledFromRegisteredThreadIsRefused)
{
	std::thread t([&] {
		ASSERT_TRUE(rt->register_current_thread("self-patcher"));
		atlas::Report r = rt->apply(std::make_shared<SwapChange>(target, "self"));
		EXPECT_EQ(r.outcome, Outcome::refused);
		EXPECT_NE(r.message.find("unregistered control thread"), std::string::npos);
	});
	t.join();
}

TEST_F(GlobalTest, WaitFreeRequestedWithoutViewsIsRefused)
{
	atlas::Report r = rt->apply(std::make_shared<SwapChange>(target, "wf"), {Mode::wait_free});
	EXPECT_EQ(r.outcome, Outcome::refused);
	EXPECT_NE(r.message.find("ENOSYS"), std::string::npos) << r.message;
}

// Views exist, but the change changes a protocol between threads.
class GlobalWithViewsTest : public GlobalTest
{
protected:
	std::unique_ptr<atlas::ViewOps> make_views() override
	{
		views = std::make_shared<FakeViewState>();
		return std::make_unique<FakeViews>(views);
	}
	std::shared_ptr<FakeViewState> views;
};

TEST_F(GlobalWithViewsTest, RequiresGlobalIsAppliedGloballyEvenWithViews)
{
	start_workers(2);
	auto change = std::make_shared<SwapChange>(target, "protocol", true);
	atlas::Report r = rt->apply(change);
	ASSERT_EQ(r.outcome, Outcome::finished) << r.message;
	EXPECT_EQ(r.mode, Mode::global);
	EXPECT_EQ(views->creates(), 0);
	EXPECT_EQ(
	    rt->apply(std::make_shared<SwapChange>(target, "protocol2", true), {Mode::wait_free})
	        .outcome,
	    Outcome::refused);
}

} // namespace
