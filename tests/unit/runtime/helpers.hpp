// Test support: a simulated ViewOps, an event recorder and thread helpers.
#ifndef ATLAS_TESTS_RUNTIME_HELPERS_HPP
#define ATLAS_TESTS_RUNTIME_HELPERS_HPP

#include <atlas/runtime.hpp>
#include <atlas/simulated_views.hpp>

#include <chrono>
#include <condition_variable>
#include <dirent.h>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

namespace atlas_test
{

using namespace std::chrono_literals;

// The simulated views (lib/internal/atlas/simulated_views.hpp, the model the preload's test
// hook runs on too): which view each thread is in, which views exist, which is the base.
// Threads the simulation has not seen are in the view their creator was in when spawned
// through spawn(), else in the initial base view 0.
using FakeViewState = atlas::SimulatedViews;

class FakeViews final : public atlas::ViewOps
{
public:
	explicit FakeViews(std::shared_ptr<FakeViewState> state) : state_(std::move(state)) {}
	atlas::ViewResult create() override
	{
		return state_->create();
	}
	atlas::ViewResult remove(atlas::ViewId id) override
	{
		return state_->remove(id);
	}
	atlas::ViewResult migrate(atlas::ViewId id) override
	{
		return state_->migrate(id);
	}
	atlas::ViewResult current() override
	{
		return state_->current();
	}
	atlas::ViewResult switch_base() override
	{
		return state_->switch_base();
	}
	atlas::ViewResult unshare(std::uintptr_t start, std::size_t len) override
	{
		return state_->unshare(start, len);
	}
	atlas::ViewResult share(std::uintptr_t start, std::size_t len) override
	{
		return state_->share(start, len);
	}

private:
	std::shared_ptr<FakeViewState> state_;
};

// A thread that starts in its creator's simulated view, as a real thread would.
inline std::thread spawn(const std::shared_ptr<FakeViewState> &views, std::function<void()> body)
{
	long view = views ? views->current_of_caller() : 0;
	return std::thread([views, view, body = std::move(body)] {
		if (views)
			views->place_caller(view);
		body();
	});
}

// Collects event-log lines and lets a test wait for one.
class EventRecorder
{
public:
	atlas::EventSink sink()
	{
		atlas::EventSink s;
		s.callback = [this](std::string_view line) {
			std::lock_guard lock(mu_);
			lines_.push_back(nlohmann::json::parse(line));
			cv_.notify_all();
		};
		return s;
	}
	bool wait_for(const std::string &event, std::chrono::milliseconds timeout = 10s)
	{
		std::unique_lock lock(mu_);
		return cv_.wait_for(lock, timeout, [&] { return count_locked(event) > 0; });
	}
	size_t count(const std::string &event)
	{
		std::lock_guard lock(mu_);
		return count_locked(event);
	}
	std::vector<nlohmann::json> lines()
	{
		std::lock_guard lock(mu_);
		return lines_;
	}

private:
	size_t count_locked(const std::string &event)
	{
		size_t n = 0;
		for (const auto &l : lines_)
			n += l.value("event", "") == event;
		return n;
	}
	std::mutex mu_;
	std::condition_variable cv_;
	std::vector<nlohmann::json> lines_;
};

// The threads that exist before a test starts (main, sanitizer helpers) never run changed
// code: exempt them so that the unknown-thread check only sees the test's own threads.
inline void exempt_existing_threads(atlas::Runtime &rt)
{
	// TSan starts its background thread at the first pthread_create: make it exist now.
	std::thread([] {}).join();
	DIR *dir = opendir("/proc/self/task");
	if (!dir)
		return;
	while (struct dirent *e = readdir(dir)) {
		long tid = std::strtol(e->d_name, nullptr, 10);
		if (tid > 0)
			(void)rt.exempt_thread(static_cast<pid_t>(tid));
	}
	closedir(dir);
}

// Waits (bounded) until @pred holds, re-checking after yielding.
template <typename Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = 10s)
{
	auto end = std::chrono::steady_clock::now() + timeout;
	while (!pred()) {
		if (std::chrono::steady_clock::now() > end)
			return false;
		std::this_thread::yield();
	}
	return true;
}

inline std::optional<atlas::ThreadInfo> find_thread(const atlas::Runtime &rt, pid_t tid)
{
	for (const auto &t : rt.status().threads)
		if (t.tid == tid)
			return t;
	return std::nullopt;
}

} // namespace atlas_test

#endif
