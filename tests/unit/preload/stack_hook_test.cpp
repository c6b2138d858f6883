// The runtime's quiescence-check hook with the real stack check (explicit API: runs in the
// plain, ASan+UBSan and TSan builds).
#include "../runtime/changes.hpp"
#include "../runtime/helpers.hpp"
#include "stack_check.hpp"

#include <csignal>
#include <gtest/gtest.h>
#include <pthread.h>
#include <thread>

using namespace atlas_test;

extern "C" {
extern char __start_atlas_hook_test[];
extern char __stop_atlas_hook_test[];
}

namespace
{

std::atomic<bool> leave{false};
std::atomic<bool> inside{false};

// A "replaced function": the worker loops over points inside it until told to leave.
__attribute__((noinline, section("atlas_hook_test"))) void replaced_loop()
{
	inside = true;
	while (!leave.load())
		atlas::quiescence_point();
	inside = false;
	asm volatile("" ::: "memory");
}

// Blocks (announced) inside the replaced function.
std::atomic<bool> release_blocked{false};
__attribute__((noinline, section("atlas_hook_test"))) void
replaced_blocking(atlas::preload::BlockedStack *stack)
{
	stack->enter(); // what a wrapper does before blocking
	atlas::blocking_enter();
	inside = true;
	while (!release_blocked.load())
		std::this_thread::sleep_for(1ms);
	atlas::blocking_exit();
	stack->leave();
	inside = false;
	asm volatile("" ::: "memory");
}

atlas::AddressRange replaced_range()
{
	return {reinterpret_cast<std::uintptr_t>(__start_atlas_hook_test),
	        reinterpret_cast<std::uintptr_t>(__stop_atlas_hook_test),
	        {}};
}

struct Fixture : ::testing::Test {
	atlas::preload::BlockedStacks stacks;
	std::unique_ptr<atlas::Runtime> rt;
	void SetUp() override
	{
		std::string error;
		ASSERT_TRUE(atlas::preload::init_unwinder(&error)) << error;
		leave = false;
		release_blocked = false;
		inside = false;
		atlas::RuntimeOptions o;
		// Global mode: simulated views that are unavailable.
		auto unavailable = std::make_shared<FakeViewState>();
		unavailable->unavailable = true;
		o.views = std::make_unique<FakeViews>(unavailable);
		o.may_complete = [](const atlas::CodeChange &c) {
			return atlas::preload::check_current(c.replaced_functions());
		};
		o.blocked_may_count = [this](pid_t tid, const atlas::CodeChange &c) {
			return stacks.check(tid, c.replaced_functions());
		};
		rt = atlas::Runtime::create(std::move(o));
		exempt_existing_threads(*rt);
	}
};

TEST(StackCheck, FindsOwnFrameAndIgnoresOthers)
{
	std::string error;
	ASSERT_TRUE(atlas::preload::init_unwinder(&error)) << error;
	atlas::preload::StackTrace trace;
	atlas::preload::capture_current(trace);
	ASSERT_FALSE(trace.failed);
	EXPECT_GT(trace.depth, 2u);
	EXPECT_FALSE(trace.signal_frame);
	// This test's own caller chain is on the stack: a range over this function's frame hits.
	atlas::AddressRange here{trace.ip[0] - 1,
	                         trace.ip[0] + 1}; // no -Wmissing-field-initializers
	EXPECT_NE(atlas::preload::check(trace, {here}), "");
	EXPECT_EQ(atlas::preload::check(trace, {replaced_range()}), "");
	EXPECT_EQ(atlas::preload::check(trace, {}), "");
}

std::atomic<bool> handler_signal_frame{false};
std::atomic<bool> handler_ran{false};
void handler(int)
{
	atlas::preload::StackTrace trace;
	atlas::preload::capture_current(trace);
	handler_signal_frame = trace.signal_frame;
	handler_ran = true;
}

TEST(StackCheck, SeesSignalFrames)
{
	std::string error;
	ASSERT_TRUE(atlas::preload::init_unwinder(&error)) << error;
	struct sigaction sa {
	}, old{};
	sa.sa_handler = handler;
	sigaction(SIGUSR2, &sa, &old);
	pthread_kill(pthread_self(), SIGUSR2);
	sigaction(SIGUSR2, &old, nullptr);
	ASSERT_TRUE(handler_ran.load());
	EXPECT_TRUE(handler_signal_frame.load());
	atlas::preload::StackTrace trace;
	trace.signal_frame = true;
	trace.depth = 0;
	EXPECT_NE(atlas::preload::check(trace, {}).find("signal handler"), std::string::npos);
}

TEST(BlockedStack, NotBlockedIsNotInspected)
{
	atlas::preload::BlockedStack stack;
	atlas::preload::StackTrace trace;
	EXPECT_FALSE(stack.inspect(trace));
	stack.enter();
	stack.leave();
	EXPECT_FALSE(stack.inspect(trace));
}

// The gate itself: a thread that returns from its blocking call while the patcher holds it
// waits in leave() until the patcher is done, and leaves at once after.
TEST(BlockedStack, LeaveWaitsForTheHoldToEnd)
{
	atlas::preload::BlockedStack stack;
	std::atomic<bool> held{false}, left{false};
	std::thread thread([&] {
		stack.enter();
		while (!held.load())
			std::this_thread::sleep_for(1ms);
		stack.leave(); // the call returned while the patcher holds the frame
		left = true;
	});
	bool left_while_held = true;
	bool ok = false;
	while (!ok)
		ok = stack.hold([&] {
			held = true;
			std::this_thread::sleep_for(100ms);
			left_while_held = left.load();
		});
	thread.join();
	EXPECT_FALSE(left_while_held) << "leave() returned while the patcher held the frame";
	EXPECT_TRUE(left.load());
	atlas::preload::StackTrace trace;
	EXPECT_FALSE(stack.inspect(trace)) << "the thread left: nothing to inspect";
}

// One "blocking call": records, spins a little, leaves. In the test's section, so that the
// patcher can tell its frame.
__attribute__((noinline, section("atlas_hook_test"))) void
blocked_briefly(atlas::preload::BlockedStack *stack, int spin)
{
	stack->enter();
	for (int i = 0; i < spin; i++)
		asm volatile("" ::: "memory");
	stack->leave();
	asm volatile("" ::: "memory");
}

// Overwrites the stack where blocked_briefly's frame was, as any later call would.
__attribute__((noinline)) void scribble(int depth)
{
	volatile unsigned char buf[256];
	for (auto &b : buf)
		b = 0xa5;
	if (depth > 0)
		scribble(depth - 1);
}

// The patcher unwinds a thread's stack from the registers it recorded while the thread races
// it: entering, leaving, and scribbling over where its frame was. A stress test (under TSan
// too): every inspection that succeeds must unwind the whole stack, through the recording
// frame, without a failure or a scribbled address. That the gate holds the thread is tested
// deterministically above.
TEST(BlockedStack, InspectionHoldsTheFrameItUnwinds)
{
	std::string error;
	ASSERT_TRUE(atlas::preload::init_unwinder(&error)) << error;
	atlas::preload::BlockedStack stack;
	std::atomic<bool> stop{false};
	std::thread thread([&] {
		for (int round = 0; !stop.load(); round++) {
			blocked_briefly(&stack, round % 64);
			scribble(3);
		}
	});
	const auto range = replaced_range();
	int inspected = 0, bad = 0;
	const auto until = std::chrono::steady_clock::now() + 1s;
	while (std::chrono::steady_clock::now() < until) {
		atlas::preload::StackTrace trace;
		if (!stack.inspect(trace))
			continue;
		inspected++;
		bool in_frame = false, garbage = false;
		for (std::size_t i = 0; i < trace.depth; i++) {
			in_frame |= trace.ip[i] >= range.start && trace.ip[i] < range.end;
			garbage |= (trace.ip[i] & 0xffffffffu) == 0xa5a5a5a5u;
		}
		if (trace.failed || trace.truncated || !in_frame || garbage)
			bad++;
	}
	stop = true;
	thread.join();
	EXPECT_GT(inspected, 0);
	EXPECT_EQ(bad, 0) << "of " << inspected << " inspections";
}

TEST_F(Fixture, PointInsideReplacedFunctionIsRefusedThenCompletes)
{
	Target t;
	auto shared = std::make_shared<SwapChange>(
	    t, "loop@1", false, std::vector<atlas::AddressRange>{replaced_range()});
	std::thread worker([&] {
		ASSERT_TRUE(rt->register_current_thread("looper").ok());
		replaced_loop();
		// Outside: points complete.
		while (!release_blocked.load())
			atlas::quiescence_point();
	});
	ASSERT_TRUE(eventually([&] { return inside.load(); }));
	atlas::Report r = rt->apply(shared, {atlas::Mode::global, 200ms});
	EXPECT_EQ(r.outcome, atlas::Outcome::refused) << r.message;
	ASSERT_EQ(r.lagging.size(), 1u);
	EXPECT_EQ(r.lagging[0].name, "looper");
	EXPECT_NE(r.lagging[0].note.find("stack holds a function the change replaces"),
	          std::string::npos)
	    << r.lagging[0].note;
	EXPECT_NE(r.message.find("stack holds"), std::string::npos) << r.message;
	// The thread did reach points: the advice must point at its note, not at adding points.
	EXPECT_NE(r.message.find("each note says why"), std::string::npos) << r.message;
	EXPECT_EQ(r.message.find("make them call"), std::string::npos) << r.message;
	EXPECT_EQ(shared->applies.load(), 0);

	leave = true;
	ASSERT_TRUE(eventually([&] { return !inside.load(); }));
	r = rt->apply(shared, {atlas::Mode::global, 5000ms});
	EXPECT_EQ(r.outcome, atlas::Outcome::finished) << r.message;
	EXPECT_EQ(shared->applies.load(), 1);
	release_blocked = true;
	worker.join();
}

TEST_F(Fixture, BlockedInsideReplacedFunctionIsLaggingThenCounts)
{
	Target t;
	auto shared = std::make_shared<SwapChange>(
	    t, "blocked@1", false, std::vector<atlas::AddressRange>{replaced_range()});
	std::atomic<bool> done{false};
	std::thread worker([&] {
		ASSERT_TRUE(rt->register_current_thread("blocker").ok());
		auto *stack = stacks.add(gettid());
		replaced_blocking(stack);
		// Blocked again, outside the replaced function: counts.
		stack->enter();
		atlas::blocking_enter();
		while (!done.load())
			std::this_thread::sleep_for(1ms);
		atlas::blocking_exit();
		stack->leave();
		stacks.remove(gettid());
	});
	ASSERT_TRUE(eventually([&] { return inside.load(); }));
	atlas::Report r = rt->apply(shared, {atlas::Mode::global, 200ms});
	EXPECT_EQ(r.outcome, atlas::Outcome::refused) << r.message;
	ASSERT_EQ(r.lagging.size(), 1u);
	EXPECT_EQ(r.lagging[0].state, atlas::ThreadState::blocked);
	EXPECT_NE(r.lagging[0].note.find("stack holds"), std::string::npos) << r.lagging[0].note;

	release_blocked = true;
	ASSERT_TRUE(eventually([&] { return !inside.load(); }));
	ASSERT_TRUE(eventually([&] {
		for (const auto &th : rt->status().threads)
			if (th.name == "blocker")
				return th.state == atlas::ThreadState::blocked;
		return false;
	}));
	r = rt->apply(shared, {atlas::Mode::global, 5000ms});
	EXPECT_EQ(r.outcome, atlas::Outcome::finished) << r.message;
	done = true;
	worker.join();
}

// A thread that enters a blocking call while the patcher gathers wakes it (no sleeping until
// the deadline).
TEST_F(Fixture, BlockingEnterWakesPatcher)
{
	Target t;
	auto shared = std::make_shared<SwapChange>(t, "wake@1");
	std::atomic<bool> go{false}, done{false};
	std::thread worker([&] {
		ASSERT_TRUE(rt->register_current_thread("late").ok());
		auto *stack = stacks.add(gettid());
		while (!go.load())
			std::this_thread::sleep_for(1ms);
		std::this_thread::sleep_for(100ms);
		stack->enter();
		atlas::blocking_enter();
		while (!done.load())
			std::this_thread::sleep_for(1ms);
		atlas::blocking_exit();
		stack->leave();
		stacks.remove(gettid());
	});
	go = true;
	auto start = std::chrono::steady_clock::now();
	atlas::Report r = rt->apply(shared, {atlas::Mode::global, 20000ms});
	auto took = std::chrono::steady_clock::now() - start;
	EXPECT_EQ(r.outcome, atlas::Outcome::finished) << r.message;
	EXPECT_LT(took, 10s);
	done = true;
	worker.join();
}

} // namespace
