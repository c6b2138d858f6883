// The thread registry and the registered threads' side of a transition: registration,
// exemption, quiescence points' slow path and blocking_enter()/blocking_exit()
// (docs/live-patching.md, "Runtime core"). What a thread does once it has met a transition
// lives with its mode: park_locked() in global.cpp, migrate_locked() in wait_free.cpp.
#include "core.hpp"

#include <algorithm>
#include <fmt/format.h>
#include <new>
#include <unistd.h>

namespace atlas::detail
{

std::atomic<unsigned> transitions_in_flight{0};
std::atomic<std::uint64_t> slow_path_entries{0};

namespace
{

// The calling thread's registration. The handle keeps the Core alive, so that a thread exiting
// after its Runtime was destroyed still unregisters safely. Used only in this file, so that
// the hot paths reach it without a TLS wrapper call.
struct ThreadHandle {
	std::shared_ptr<Core> core;
	ThreadRecord *record = nullptr;

	~ThreadHandle()
	{
		if (core && record)
			core->unregister(record);
	}
};

thread_local ThreadHandle tl_handle;

} // namespace

bool on_registered_thread() noexcept
{
	return tl_handle.record != nullptr;
}

Expected<void> Core::register_current_thread(std::string_view name)
{
	ThreadHandle &handle = tl_handle;
	if (handle.record) {
		return make_error(
		    Errc::bad_state,
		    fmt::format("thread {} is already registered{}; unregister it first", gettid(),
		                handle.core.get() == this ? "" : " with another runtime"));
	}
	auto record = std::make_unique<ThreadRecord>();
	record->tid = gettid();
	record->name = name.empty() ? thread_comm(record->tid) : std::string(name);
	// Programs often name their threads after creating them (pthread_setname_np): a thread
	// registered on creation (the preload library) is reported by its current comm.
	record->comm_name = name.empty();
	if (views_available_) {
		// A new thread runs in its creator's view (which may already be the target).
		ViewResult cur = views_->current();
		if (!cur.ok())
			return system_error(
			    cur.error,
			    fmt::format("registering thread {}: mmview current failed: {}",
			                record->tid, errno_text(cur.error)));
		record->view = cur.value;
	}

	std::unique_lock lock(mu_);
	// Nobody joins while the patcher writes: a thread born now waits here until release.
	cv_workers_.wait(lock, [&] {
		return !(tr_ && tr_->mode == Mode::global && tr_->phase == Phase::applying);
	});
	// Born during a transition: not acknowledged yet, so it parks or migrates at its first
	// point; otherwise up to date, and in the base (an unregistered creator may still be in
	// a view a transition retired: the new thread leaves it now, on itself).
	record->acked_gen = tr_ ? 0 : gen_counter_;
	if (!tr_)
		follow_base_locked(*record);
	handle.record = record.get();
	handle.core = shared_from_this();
	records_.push_back(std::move(record));
	cv_patcher_.notify_all();
	return {};
}

Expected<void> Core::unregister_current_thread()
{
	ThreadHandle &handle = tl_handle;
	if (!handle.record || handle.core.get() != this)
		return make_error(
		    Errc::bad_state,
		    fmt::format("thread {} is not registered with this runtime", gettid()));
	unregister(handle.record);
	handle.record = nullptr;
	handle.core.reset();
	return {};
}

void Core::unregister(ThreadRecord *record) noexcept
{
	std::lock_guard lock(mu_);
	auto it = std::find_if(records_.begin(), records_.end(),
	                       [&](const auto &r) { return r.get() == record; });
	if (it == records_.end())
		return;
	// A dying thread stops counting; the patcher logs it.
	if (tr_) {
		try {
			exited_during_.emplace_back(record->tid, name_locked(*record));
		} catch (...) {
		}
	}
	records_.erase(it);
	cv_patcher_.notify_all();
}

Expected<void> Core::exempt_thread(pid_t tid, bool follows_base)
{
	if (tid <= 0)
		return make_error(Errc::invalid_argument,
		                  fmt::format("exempt_thread: invalid thread id {}", tid));
	// Where it runs: known for the calling thread; another thread is taken to be in the base
	// (a process has one view outside transitions).
	ViewId view = base_view_;
	if (views_available_ && tid == gettid()) {
		ViewResult cur = views_->current();
		if (cur.ok())
			view = cur.value;
	}
	std::lock_guard lock(mu_);
	if (std::find(exempt_.begin(), exempt_.end(), tid) == exempt_.end())
		exempt_.push_back(tid);
	if (views_available_) {
		auto [it, added] = outside_.try_emplace(tid, Outside{view, follows_base});
		if (!added)
			it->second.follows_base = it->second.follows_base || follows_base;
		if (!added && tid == gettid())
			it->second.view = view;
	}
	return {};
}

Expected<void> Core::follow_base()
{
	if (!views_available_)
		return {};
	if (tl_handle.record)
		return make_error(Errc::bad_state,
		                  "follow_base: called from a registered thread, which migrates "
		                  "at its quiescence points; call it from exempt threads only");
	// Under mu_ with no patcher busy: no transition can start (and move the base) before the
	// migration is done.
	std::lock_guard lock(mu_);
	if (patcher_busy_ || tr_)
		return {}; // the base is about to change: call again afterwards
	ViewResult here = views_->current();
	if (!(here.ok() && here.value == base_view_)) {
		ViewResult moved = views_->migrate(base_view_);
		if (!moved.ok())
			return system_error(
			    moved.error,
			    fmt::format("follow_base: migrating thread {} into base view "
			                "{} failed: {}",
			                gettid(), base_view_, errno_text(moved.error)));
	}
	try {
		outside_[gettid()].view = base_view_;
	} catch (...) {
	}
	return {};
}

void Core::handshake(ThreadRecord &record) noexcept
{
	// Both ways in count: a quiescence point's slow path and a wrapped call's exit (the
	// preload's threads meet transitions only there).
	slow_path_entries.fetch_add(1, std::memory_order_relaxed);
	// Unlocked check: this thread already handled the newest generation. Then it is where it
	// must run: an acknowledged thread is in the base or the target, and one left blocked in
	// a retired view has not acknowledged the generation that retired it.
	if (gen_published_.load(std::memory_order_acquire) == record.acked_gen)
		return;
	std::unique_lock lock(mu_);
	for (;;) {
		if (!tr_ || record.acked_gen >= tr_->gen) {
			// Done with every transition so far; woken in a retired view, it moves to
			// the base first (during a global transition only once released: the base
			// is written until then, and this thread has parked for it).
			if (!tr_ || tr_->mode == Mode::global)
				follow_base_locked(record);
			if (record.view == base_view_ || (tr_ && tr_->mode == Mode::wait_free))
				record.acked_gen = gen_counter_;
			return;
		}
		const std::uint64_t gen = tr_->gen;
		const Check check = quiescence_check_locked(record, lock);
		if (check == Check::changed)
			continue;
		if (check == Check::refused)
			return;
		const std::int64_t now = monotonic_ns();
		record.last_quiescence_ns.store(now, std::memory_order_relaxed);
		if (tr_->mode == Mode::global) {
			park_locked(record, gen, now, lock);
			return;
		}
		if (!migrate_locked(record, gen, lock))
			return;
	}
}

Core::Check Core::quiescence_check_locked(ThreadRecord &record,
                                          std::unique_lock<std::mutex> &lock) noexcept
{
	const std::uint64_t gen = tr_->gen;
	// The quiescence check (the preload's stack check). Skipped when nothing is left to do
	// in wait-free mode, and once a global transition writes: then this thread was counted
	// as blocked (after its own check) and must park, not run.
	const bool needs_move = tr_->mode == Mode::global || record.view != tr_->target_view;
	if (!options_.may_complete || !needs_move ||
	    (tr_->mode == Mode::global && tr_->phase == Phase::applying))
		return Check::passed;
	std::shared_ptr<CodeChange> change = tr_->change;
	// Unlocked: the check may unwind the stack, which takes the loader's lock.
	lock.unlock();
	std::string refusal;
	try {
		refusal = options_.may_complete(*change);
	} catch (...) {
		refusal = "the quiescence check threw";
	}
	lock.lock();
	if (!tr_ || tr_->gen != gen)
		return Check::changed;
	if (!refusal.empty()) {
		// Not acknowledged: lagging, and asked again at the next point.
		record.error = std::move(refusal);
		cv_patcher_.notify_all();
		return Check::refused;
	}
	record.error.clear();
	return Check::passed;
}

void Core::follow_base_locked(ThreadRecord &record) noexcept
{
	if (!views_available_ || record.view == base_view_)
		return;
	// Under mu_: the base cannot be retired meanwhile (a wait-free transition publishes its
	// new base under mu_ before it ends). O(1), and it never waits for other threads.
	ViewResult moved = views_->migrate(base_view_);
	if (!moved.ok()) {
		// Runs on in the retired view (old code, same memory) and tries again at its
		// next wrapped call; status shows the error.
		record.error = fmt::format("woke in retired view {}; migrating to the base view "
		                           "{} failed: {}",
		                           record.view, base_view_, errno_text(moved.error));
		return;
	}
	record.view = base_view_;
	record.error.clear();
	migrated_on_wake_++;
}

void Core::blocking_enter(ThreadRecord &record) noexcept
{
	// A new call: the patcher's check of an earlier one no longer holds
	// (blocked_counts_locked).
	record.blocked_calls.store(record.blocked_calls.load(std::memory_order_relaxed) + 1,
	                           std::memory_order_relaxed);
	// seq_cst pairs with the patcher's increment of transitions_in_flight and its seq_cst
	// load of the state; see blocking_exit().
	record.state.store(ThreadState::blocked, std::memory_order_seq_cst);
	// A transition may be waiting for this thread, which now may count as quiescent and may
	// block for long: wake the patcher, or it would sleep until its deadline.
	if (transitions_in_flight.load(std::memory_order_seq_cst) != 0) {
		std::lock_guard lock(mu_);
		cv_patcher_.notify_all();
	}
}

void Core::blocking_exit(ThreadRecord &record) noexcept
{
	record.last_quiescence_ns.store(monotonic_ns(), std::memory_order_relaxed);
	// Dekker-style handshake with the patcher, which increments transitions_in_flight and
	// then reads each thread's state. Both sides are seq_cst (store then load), so either the
	// patcher sees "running" and waits for this thread, or this thread sees the transition and
	// completes the handshake before returning to application code. A transition that
	// finished while this thread was blocked in its old view published the new base before
	// leaving transitions_in_flight: then this thread sees that base and follows it.
	record.state.store(ThreadState::running, std::memory_order_seq_cst);
	if (transitions_in_flight.load(std::memory_order_seq_cst) == 0 &&
	    record.view == base_published_.load(std::memory_order_seq_cst)) [[likely]]
		return;
	handshake(record);
}

void forget_runtime_after_fork() noexcept
{
	ThreadHandle &handle = tl_handle;
	// Leaked on purpose: destroying the parent's Core could take a lock copied in the locked
	// state. A static slot, no allocation; a later fork overwrites it (leaking again).
	alignas(
	    std::shared_ptr<Core>) static unsigned char graveyard[sizeof(std::shared_ptr<Core>)];
	if (handle.core)
		new (graveyard) std::shared_ptr<Core>(std::move(handle.core));
	handle.record = nullptr;
	transitions_in_flight.store(0, std::memory_order_seq_cst);
}

void quiescence_slow_path() noexcept
{
	ThreadHandle &handle = tl_handle;
	if (handle.record)
		handle.core->handshake(*handle.record);
}

} // namespace atlas::detail

namespace atlas
{

void blocking_enter() noexcept
{
	auto &handle = detail::tl_handle;
	if (handle.record)
		handle.core->blocking_enter(*handle.record);
}

void blocking_exit() noexcept
{
	auto &handle = detail::tl_handle;
	if (handle.record)
		handle.core->blocking_exit(*handle.record);
}

} // namespace atlas
