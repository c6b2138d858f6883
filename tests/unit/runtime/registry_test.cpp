// Registry, quiescence fast path, start-up probing, status.
#include "changes.hpp"

#include <gtest/gtest.h>
#include <latch>

using namespace atlas_test;

namespace
{

std::unique_ptr<atlas::Runtime> make_runtime(std::shared_ptr<FakeViewState> views,
                                             atlas::EventSink sink = {})
{
	atlas::RuntimeOptions options;
	options.views = std::make_unique<FakeViews>(std::move(views));
	options.events = std::move(sink);
	return atlas::Runtime::create(std::move(options));
}

TEST(RegistryTest, RegistersWithNameAndUnregistersAtThreadExit)
{
	auto rt = make_runtime(std::make_shared<FakeViewState>());
	ASSERT_TRUE(rt);
	std::latch registered(1), let_go(1);
	pid_t tid = 0;
	std::thread t([&] {
		ASSERT_TRUE(rt->register_current_thread("named"));
		tid = gettid();
		registered.count_down();
		let_go.wait();
	});
	registered.wait();
	auto s = rt->status();
	ASSERT_EQ(s.threads.size(), 1u);
	EXPECT_EQ(s.threads[0].name, "named");
	EXPECT_EQ(s.threads[0].tid, tid);
	EXPECT_EQ(s.threads[0].state, atlas::ThreadState::running);
	EXPECT_EQ(s.threads[0].view, 0);
	let_go.count_down();
	t.join(); // no explicit unregister: the thread_local destructor does it
	EXPECT_TRUE(rt->status().threads.empty());
}

TEST(RegistryTest, DefaultNameIsTheThreadsComm)
{
	auto rt = make_runtime(std::make_shared<FakeViewState>());
	std::thread t([&] {
		pthread_setname_np(pthread_self(), "commname");
		ASSERT_TRUE(rt->register_current_thread());
		EXPECT_EQ(rt->status().threads.at(0).name, "commname");
		EXPECT_TRUE(rt->unregister_current_thread());
		EXPECT_TRUE(rt->status().threads.empty());
		EXPECT_FALSE(rt->unregister_current_thread());
	});
	t.join();
}

TEST(RegistryTest, DoubleRegistrationIsAnError)
{
	auto rt = make_runtime(std::make_shared<FakeViewState>());
	auto other = make_runtime(std::make_shared<FakeViewState>());
	std::thread t([&] {
		ASSERT_TRUE(rt->register_current_thread("a"));
		atlas::Expected<void> again = rt->register_current_thread("a");
		EXPECT_FALSE(again);
		EXPECT_NE(again.error().message.find("already registered"), std::string::npos);
		atlas::Expected<void> elsewhere = other->register_current_thread("a");
		EXPECT_NE(elsewhere.error().message.find("another runtime"), std::string::npos);
	});
	t.join();
}

TEST(RegistryTest, RegisteredThreadOutlivesItsRuntime)
{
	auto rt = make_runtime(std::make_shared<FakeViewState>());
	std::latch registered(1), let_go(1);
	std::thread t([&] {
		ASSERT_TRUE(rt->register_current_thread("survivor"));
		registered.count_down();
		let_go.wait();
		atlas::quiescence_point();
	});
	registered.wait();
	rt.reset(); // the thread's registration keeps the state alive until it exits
	let_go.count_down();
	t.join();
}

TEST(RegistryTest, FastPathNeverEntersTheSlowPathWhileIdle)
{
	auto rt = make_runtime(std::make_shared<FakeViewState>());
	std::uint64_t before = rt->status().slow_path_entries;
	std::thread t([&] {
		ASSERT_TRUE(rt->register_current_thread("spinner"));
		for (int i = 0; i < 1'000'000; i++)
			atlas::quiescence_point();
		atlas::blocking_enter();
		atlas::blocking_exit();
	});
	t.join();
	EXPECT_EQ(rt->status().slow_path_entries, before);
}

TEST(RegistryTest, SlowPathIsEnteredOnlyWhileATransitionIsInFlight)
{
	auto views = std::make_shared<FakeViewState>();
	auto rt = make_runtime(views);
	exempt_existing_threads(*rt);
	auto change = std::make_shared<ViewChange>(views, "count");
	std::latch registered(1), transition_seen(1), let_go(1);
	std::uint64_t during = 0, after = 0;
	std::thread t = spawn(views, [&] {
		ASSERT_TRUE(rt->register_current_thread("counter"));
		registered.count_down();
		transition_seen.wait();
		std::uint64_t start = rt->status().slow_path_entries;
		atlas::quiescence_point(); // migrates
		during = rt->status().slow_path_entries - start;
		let_go.wait();
		start = rt->status().slow_path_entries;
		for (int i = 0; i < 100'000; i++)
			atlas::quiescence_point();
		after = rt->status().slow_path_entries - start;
	});
	registered.wait();
	ASSERT_EQ(rt->apply(change, {atlas::Mode::wait_free, 20ms}).outcome,
	          atlas::Outcome::pending);
	transition_seen.count_down();
	ASSERT_EQ(rt->wait(5000ms).outcome, atlas::Outcome::finished);
	let_go.count_down();
	t.join();
	EXPECT_EQ(during, 1u);
	EXPECT_EQ(after, 0u);
}

// The preload's threads meet transitions in blocking_exit(), not at quiescence points: those
// handshakes count too (status showed 0 after every thread had parked or migrated so).
TEST(RegistryTest, BlockingExitThatMeetsATransitionCounts)
{
	auto views = std::make_shared<FakeViewState>();
	auto rt = make_runtime(views);
	exempt_existing_threads(*rt);
	auto change = std::make_shared<ViewChange>(views, "count-exit");
	std::latch registered(1), transition_seen(1), let_go(1);
	std::uint64_t during = 0, after = 0;
	std::thread t = spawn(views, [&] {
		ASSERT_TRUE(rt->register_current_thread("blocker"));
		atlas::blocking_enter();
		registered.count_down();
		transition_seen.wait();
		std::uint64_t start = rt->status().slow_path_entries;
		atlas::blocking_exit(); // migrates to the new base
		during = rt->status().slow_path_entries - start;
		EXPECT_EQ(views->current_of_caller(), change->patched_view.load());
		let_go.wait();
		start = rt->status().slow_path_entries;
		for (int i = 0; i < 1000; i++) {
			atlas::blocking_enter();
			atlas::blocking_exit();
		}
		after = rt->status().slow_path_entries - start;
	});
	registered.wait();
	// Blocked: it does not hold the transition up, and migrates when it wakes.
	ASSERT_EQ(rt->apply(change, {atlas::Mode::wait_free, 5000ms}).outcome,
	          atlas::Outcome::finished);
	transition_seen.count_down();
	let_go.count_down();
	t.join();
	EXPECT_EQ(during, 1u);
	EXPECT_EQ(after, 0u);
}

TEST(RegistryTest, MissingViewsMeanGlobalOnlyAndSaySo)
{
	auto views = std::make_shared<FakeViewState>();
	views->unavailable = true;
	EventRecorder events;
	auto rt = make_runtime(views, events.sink());
	ASSERT_TRUE(rt);
	auto s = rt->status();
	EXPECT_FALSE(s.views_available);
	EXPECT_NE(s.views_note.find("global mode only"), std::string::npos);
	auto lines = events.lines();
	ASSERT_FALSE(lines.empty());
	EXPECT_EQ(lines[0]["event"], "runtime_started");
	EXPECT_EQ(lines[0]["views"], false);
	auto json = nlohmann::json::parse(s.to_json());
	EXPECT_EQ(json["mode"], "global only");
}

TEST(RegistryTest, KernelViewOpsReportNoViewsOnAStockKernel)
{
	// On the project's kernel this probes real views; on a stock kernel ENOSYS.
	auto ops = atlas::kernel_view_ops();
	atlas::ViewResult cur = ops->current();
	if (!cur.ok()) {
		EXPECT_EQ(cur.error, ENOSYS);
	}
	auto rt = atlas::Runtime::create({});
	ASSERT_TRUE(rt);
	EXPECT_EQ(rt->status().views_available, cur.ok());
}

TEST(RegistryTest, EventLogGoesToAFileDescriptor)
{
	int fds[2];
	ASSERT_EQ(pipe(fds), 0);
	{
		atlas::RuntimeOptions options;
		auto views = std::make_shared<FakeViewState>();
		views->unavailable = true;
		options.views = std::make_unique<FakeViews>(views);
		options.events.fd = fds[1];
		auto rt = atlas::Runtime::create(std::move(options));
		ASSERT_TRUE(rt);
	}
	close(fds[1]);
	char buf[4096];
	ssize_t n = read(fds[0], buf, sizeof(buf) - 1);
	close(fds[0]);
	ASSERT_GT(n, 0);
	std::string text(buf, static_cast<size_t>(n));
	ASSERT_EQ(text.back(), '\n');
	auto line = nlohmann::json::parse(text.substr(0, text.find('\n')));
	EXPECT_EQ(line["event"], "runtime_started");
}

} // namespace
