// SPDX-License-Identifier: MIT
/*
 * Wait-free live patching on the views kernel (docs/live-patching.md, "Runtime core", "Modes and
 * the transition state machine", "Deadlines"): four worker
 * threads call a function while it is patched, re-patched, stacked and reverted in wait-free
 * mode, and once in global mode. Checks, as TAP: every transition finishes with the mode
 * asked for; a thread changes code only at its quiescence points (two calls between points
 * always agree); afterwards every thread runs the expected version; each wait-free transition
 * switched the base to the new view and deleted the old one (event log), so the process is
 * back to one view (the runtime's single_view probe; the next patch loads).
 *
 * Usage: wait_free PATCH_A PATCH_B (patches of this program's code_version, built by
 * atlas-mkpatch; see CMakeLists.txt).
 */
#include <atlas/mmview.h>
#include <atlas/patch/loader.hpp>
#include <atlas/runtime.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "../tap.h"

// The function the patches replace. noinline and extern: callers go through its entry.
extern "C" __attribute__((noinline)) int code_version(int salt)
{
	static volatile int calls;
	calls = calls + 1;
	return 1 + salt * 0;
}

namespace
{

constexpr int workers = 4;

struct Worker {
	std::atomic<int> last{0};
	std::atomic<long> rounds{0};
	std::atomic<long> mixed{0}; // two calls between quiescence points disagreed
};

Worker worker_state[workers];
std::atomic<bool> stop{false};
std::atomic<int> registered{0};

void worker_main(atlas::Runtime *rt, int i)
{
	(void)rt->register_current_thread("worker" + std::to_string(i));
	registered++;
	Worker &w = worker_state[i];
	while (!stop.load(std::memory_order_relaxed)) {
		atlas::quiescence_point();
		int a = code_version(i);
		for (int k = 0; k < 2000; k++)
			asm volatile("" ::: "memory"); // work between the calls, not optimised away
		int b = code_version(i);
		if (a != b)
			w.mixed++;
		w.last.store(b, std::memory_order_relaxed);
		w.rounds++;
	}
	(void)rt->unregister_current_thread();
}

// Waits until every worker has completed a round with version `want` (they do so at once after
// the transition: the next round starts at a quiescence point).
bool all_run(int want)
{
	for (int tries = 0; tries < 2000; tries++) {
		int ok = 0;
		long start[workers];
		for (int i = 0; i < workers; i++)
			start[i] = worker_state[i].rounds.load();
		std::this_thread::sleep_for(std::chrono::milliseconds(5));
		for (int i = 0; i < workers; i++)
			ok += worker_state[i].rounds.load() > start[i] &&
			      worker_state[i].last.load() == want;
		if (ok == workers)
			return true;
	}
	return false;
}

std::mutex events_mu;
std::vector<std::string> events;

int count_events(const char *name)
{
	std::lock_guard lock(events_mu);
	int n = 0;
	const std::string key = std::string("\"event\":\"") + name + "\"";
	for (const auto &e : events)
		n += e.find(key) != std::string::npos;
	return n;
}

const char *outcome_name(atlas::Outcome o)
{
	switch (o) {
	case atlas::Outcome::finished:
		return "finished";
	case atlas::Outcome::already_applied:
		return "already_applied";
	case atlas::Outcome::refused:
		return "refused";
	case atlas::Outcome::failed:
		return "failed";
	case atlas::Outcome::pending:
		return "pending";
	case atlas::Outcome::reverting:
		return "reverting";
	case atlas::Outcome::reverted:
		return "reverted";
	}
	return "?";
}

// The runtime's probe (MMVIEW_SHARE on a page of its own fails EPERM while several views are
// live, a deleted one still occupied included); mmap alone no longer tells: the kernel replays
// it on every view.
bool single_view_left(const atlas::Runtime &rt)
{
	return rt.status().single_view == std::optional<bool>(true);
}

} // namespace

int main(int argc, char **argv)
{
	if (argc != 3) {
		std::fprintf(stderr, "usage: wait_free PATCH_A PATCH_B\n");
		return 2;
	}
	setvbuf(stdout, nullptr, _IOLBF, 0);
	tap_plan(14);

	atlas::RuntimeOptions options;
	options.events.callback = [](std::string_view line) {
		std::lock_guard lock(events_mu);
		events.emplace_back(line);
	};
	std::unique_ptr<atlas::Runtime> rt = atlas::Runtime::create(std::move(options));
	atlas::StatusSnapshot st = rt->status();
	tap_check(st.views_available, "the runtime found views and unshared its text%s%s",
	          st.views_note.empty() ? "" : ": ", st.views_note.c_str());

	std::vector<std::thread> threads;
	for (int i = 0; i < workers; i++)
		threads.emplace_back(worker_main, rt.get(), i);
	while (registered.load() < workers)
		std::this_thread::sleep_for(std::chrono::milliseconds(1));

	auto load = [](const char *path,
	               std::vector<std::shared_ptr<const atlas::patch::LoadedPatch>> earlier)
	    -> std::shared_ptr<atlas::CodeChange> {
		atlas::patch::LoadOptions lo;
		lo.earlier = std::move(earlier);
		auto r = atlas::patch::load_patch(path, lo);
		if (!r) {
			tap_diag("loading %s: %s", path, r.error().message.c_str());
			return nullptr;
		}
		return std::move(r).value();
	};
	const atlas::Request wait_free{atlas::Mode::wait_free, std::chrono::milliseconds(20000)};
	const atlas::Request global{atlas::Mode::global, std::chrono::milliseconds(20000)};
	auto step = [&](const char *what, atlas::Report rep, atlas::Mode mode, int want) {
		tap_check(rep.ok() && rep.mode == mode && all_run(want),
		          "%s: %s in %s mode, every worker runs version %d (%s; %.1f ms)", what,
		          outcome_name(rep.outcome),
		          mode == atlas::Mode::wait_free ? "wait-free" : "global", want,
		          rep.message.c_str(),
		          std::chrono::duration<double, std::milli>(rep.duration).count());
	};

	tap_check(all_run(1), "workers run version 1 before any patch");
	std::shared_ptr<atlas::CodeChange> a = load(argv[1], {});
	tap_check(a != nullptr, "patch A loads");
	if (!a)
		return tap_finish();
	step("apply A", rt->apply(a, wait_free), atlas::Mode::wait_free, 2);
	tap_check(count_events("base_switched") == 1 && count_events("view_deleted") == 1 &&
	              single_view_left(*rt),
	          "the new view became the base and the old one was deleted: one view is left");
	step("revert A", rt->revert(a->identity(), wait_free), atlas::Mode::wait_free, 1);

	// A reverted patch is unmapped once no view can run it: load it again to re-apply.
	a = load(argv[1], {});
	auto a_loaded = std::dynamic_pointer_cast<const atlas::patch::LoadedPatch>(a);
	std::shared_ptr<atlas::CodeChange> b = a ? load(argv[2], {a_loaded}) : nullptr;
	tap_check(a && b, "patches A and B load after two transitions (mmap works again)");
	if (!a || !b)
		return tap_finish();
	step("apply A again", rt->apply(a, wait_free), atlas::Mode::wait_free, 2);
	step("apply B on A", rt->apply(b, wait_free), atlas::Mode::wait_free, 3);
	step("revert B", rt->revert(b->identity(), wait_free), atlas::Mode::wait_free, 2);
	step("revert A", rt->revert(a->identity(), wait_free), atlas::Mode::wait_free, 1);
	a = load(argv[1], {});
	if (!a)
		return tap_finish();
	step("apply A in global mode", rt->apply(a, global), atlas::Mode::global, 2);
	step("revert A in global mode", rt->revert(a->identity(), global), atlas::Mode::global, 1);

	stop = true;
	for (auto &t : threads)
		t.join();
	long mixed = 0, rounds = 0;
	for (auto &w : worker_state) {
		mixed += w.mixed.load();
		rounds += w.rounds.load();
	}
	tap_check(mixed == 0,
	          "no worker changed code between two quiescence points (%ld of %ld rounds mixed)",
	          mixed, rounds);
	tap_diag("event log: %d base switches, %d views deleted, %d migrations",
	         count_events("base_switched"), count_events("view_deleted"),
	         count_events("thread_migrated"));
	return tap_finish();
}
