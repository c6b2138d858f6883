// Test support: a simulated ViewOps, an event recorder and thread helpers.
#ifndef ATLAS_TESTS_RUNTIME_HELPERS_HPP
#define ATLAS_TESTS_RUNTIME_HELPERS_HPP

#include <atlas/runtime.hpp>

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

// Views simulated per thread: which view each thread is in, which views exist, which is the
// base. Threads the simulation has not seen are in the view their creator was in when spawned
// through spawn(), else in the initial base view 0.
class FakeViewState
{
public:
	bool unavailable = false; // every call fails with ENOSYS
	bool fail_create = false;

	long current_of(pid_t tid)
	{
		std::lock_guard lock(mu_);
		auto it = where_.find(tid);
		return it == where_.end() ? 0 : it->second;
	}
	long current_of_caller()
	{
		return current_of(gettid());
	}
	void place_caller(long view)
	{
		std::lock_guard lock(mu_);
		where_[gettid()] = view;
	}
	long base()
	{
		std::lock_guard lock(mu_);
		return base_;
	}
	bool live(long view)
	{
		std::lock_guard lock(mu_);
		return views_.count(view) && !deleted_.count(view);
	}
	int creates()
	{
		std::lock_guard lock(mu_);
		return creates_;
	}

	atlas::ViewResult create()
	{
		std::lock_guard lock(mu_);
		if (unavailable)
			return {0, ENOSYS};
		if (fail_create)
			return {0, ENOMEM};
		creates_++;
		views_.insert(next_);
		return {next_++, 0};
	}
	atlas::ViewResult remove(long id)
	{
		std::lock_guard lock(mu_);
		if (unavailable)
			return {0, ENOSYS};
		if (id == base_)
			return {0, EPERM};
		if (!views_.count(id) || deleted_.count(id))
			return {0, EINVAL};
		deleted_.insert(id);
		return {0, 0};
	}
	atlas::ViewResult migrate(long id)
	{
		std::lock_guard lock(mu_);
		if (unavailable)
			return {0, ENOSYS};
		if (!views_.count(id) || deleted_.count(id))
			return {0, EINVAL};
		long &here = where_.try_emplace(gettid(), 0).first->second;
		long previous = here;
		here = id;
		return {previous, 0};
	}
	atlas::ViewResult current()
	{
		if (unavailable)
			return {0, ENOSYS};
		return {current_of_caller(), 0};
	}
	atlas::ViewResult switch_base()
	{
		std::lock_guard lock(mu_);
		if (unavailable)
			return {0, ENOSYS};
		long here = where_.try_emplace(gettid(), 0).first->second;
		if (deleted_.count(here))
			return {0, EINVAL};
		base_ = here;
		return {here, 0};
	}
	// MMVIEW_SHARE as the runtime's single-view probe: EPERM while more than one view is
	// live, a deleted view still occupied by a (known, living) thread included.
	atlas::ViewResult share()
	{
		std::lock_guard lock(mu_);
		if (unavailable)
			return {0, ENOSYS};
		std::set<long> live;
		for (long v : views_)
			if (!deleted_.count(v))
				live.insert(v);
		for (const auto &[tid, v] : where_)
			if (exited_.count(tid) == 0)
				live.insert(v);
		return live.size() > 1 ? atlas::ViewResult{0, EPERM} : atlas::ViewResult{0, 0};
	}
	// The calling thread exits: the view it is in no longer counts as occupied by it.
	void forget_caller()
	{
		std::lock_guard lock(mu_);
		exited_.insert(gettid());
	}

private:
	std::mutex mu_;
	std::map<pid_t, long> where_;
	std::set<long> views_{0};
	std::set<long> deleted_;
	std::set<pid_t> exited_;
	long base_ = 0;
	long next_ = 1;
	int creates_ = 0;
};

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
	atlas::ViewResult share(std::uintptr_t, std::size_t) override
	{
		return state_->share();
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
