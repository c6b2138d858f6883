// atlas/runtime.hpp - the in-process live-patching runtime (docs/live-patching.md).
//
// A Runtime keeps a registry of the application's threads, drives transitions (apply or revert
// one CodeChange) in global or wait-free mode, and reports what happened as a status snapshot
// and a JSON-lines event log. Threads take part through cheap quiescence points.
//
// Error handling: nothing here throws into the caller or terminates the process; every failure
// comes back as an Expected<void> (atlas/error.hpp) or a Report whose message names what
// failed and what to do.
#ifndef ATLAS_RUNTIME_HPP
#define ATLAS_RUNTIME_HPP

#include "atlas/error.hpp"

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

// The public API: visible outside libatlas.so, whose other symbols are hidden (lib/libatlas.cmake).
#pragma GCC visibility push(default)

namespace atlas
{

using ViewId = long;

struct AddressRange {
	std::uintptr_t start = 0;
	std::uintptr_t end = 0; // exclusive
	std::string name = {};  // what is there (a function's symbol), for messages; may be empty;
	                        // "= {}" lets users write AddressRange{start, end} under -Wextra
};

// One code change: implemented by the patch loader, and by tests. apply() and revert() run on
// the patcher thread while the transition guarantees that no registered thread can observe a
// partial write: every thread parked or blocked (global mode), or the patcher alone in a fresh
// view (wait-free mode). They must not throw; an exception is caught and treated as failure.
class CodeChange
{
public:
	virtual ~CodeChange() = default;
	// Name + content hash + target build-id: two changes with equal identity are the same.
	virtual std::string identity() const = 0;
	virtual Expected<void> apply() = 0;
	virtual Expected<void> revert() = 0;
	// The change alters a protocol between threads (lock order, meaning of shared data): old
	// and new code must never run concurrently, so it is always applied in global mode.
	virtual bool requires_global() const
	{
		return false;
	}
	// Entry ranges of the functions the change replaces; used for last-in-first-out revert
	// per function (and, later, the stack check of the preload wrappers).
	virtual std::vector<AddressRange> replaced_functions() const
	{
		return {};
	}
	// The changes this one stacks on: changes whose code or data its own code uses (a patch
	// that resolved symbols in an earlier patch). While this change is applied each of them
	// must be applied too, as these very objects: apply() is refused when one is not (it was
	// reverted after this change was created), and none of them can be reverted before this
	// change is. Called with the runtime's lock held (as replaced_functions()): it must not
	// call the Runtime.
	virtual std::vector<std::shared_ptr<const CodeChange>> stacked_on() const
	{
		return {};
	}
	// No view can run code of this change any more (its wait-free transition was reverted, or
	// the change was reverted and the last view holding it deleted): resources may be freed.
	virtual void unreachable() noexcept {}
};

// Result of a view operation, in the convention of atlas/mmview.h: value >= 0, or error = errno.
// Not an Expected (atlas/error.hpp): this is the system call's own convention, and the runtime
// branches on the errno (ENOSYS: no views; EPERM from share(): several views live) before it
// words any message, so a string would only be built to be dropped.
struct ViewResult {
	long value = 0;
	int error = 0;
	bool ok() const noexcept
	{
		return error == 0;
	}
};

// The address-space views operations the runtime needs (atlas/mmview.h), behind an interface so
// that the wait-free state machine can be tested with a simulation. Every operation acts on the
// calling thread, as the syscall does. Implementations must be thread-safe.
class ViewOps
{
public:
	virtual ~ViewOps() = default;
	virtual ViewResult create() = 0;           // new view, copy of the caller's
	virtual ViewResult remove(ViewId id) = 0;  // MMVIEW_DELETE
	virtual ViewResult migrate(ViewId id) = 0; // returns the view left
	virtual ViewResult current() = 0;          // ENOSYS: no views on this kernel
	virtual ViewResult switch_base() = 0;      // the caller's view becomes the base
	// MMVIEW_UNSHARE: [start, start + len) diverges per view from the next create() on.
	// The default does nothing (simulated views share everything).
	virtual ViewResult unshare(std::uintptr_t start, std::size_t len)
	{
		(void)start;
		(void)len;
		return ViewResult{0, 0};
	}
	// MMVIEW_SHARE. The runtime calls it on a page of its own that is never unshared, as a
	// probe: it succeeds while the process has one live view and fails EPERM with several
	// (a deleted view still occupied by a thread counts). The default: ENOSYS (unknown).
	virtual ViewResult share(std::uintptr_t start, std::size_t len)
	{
		(void)start;
		(void)len;
		return ViewResult{0, ENOSYS};
	}
};

// The real operations: the mmview syscall.
std::unique_ptr<ViewOps> kernel_view_ops();

enum class Mode {
	automatic, // wait-free when views exist and the change allows it, else global
	global,
	wait_free,
};

enum class ThreadState {
	running,
	parked,   // waiting at a quiescence point for a global transition to finish
	blocked,  // between blocking_enter() and blocking_exit(): counts as quiescent
	migrated, // moved to the target view of the wait-free transition in progress
};

enum class Outcome {
	finished,        // applied or reverted everywhere
	already_applied, // the same change (identity) is applied: nothing done
	refused,         // nothing changed; message says why (deadline, unknown threads, busy, ...)
	failed,          // the change itself failed; nothing changed (rolled back)
	pending,         // wait-free: applied in the new view, some threads have not migrated yet
	reverting,       // wait-free: going back to the old view, some threads still in the new one
	reverted,        // wait-free: a pending transition was undone; nothing changed
};

const char *to_string(Mode mode) noexcept;
const char *to_string(ThreadState state) noexcept;
const char *to_string(Outcome outcome) noexcept;

struct ThreadInfo {
	pid_t tid = 0;
	std::string name;
	ViewId view = 0;
	ThreadState state = ThreadState::running;
	std::int64_t last_quiescence_ns = 0; // CLOCK_MONOTONIC; 0: never took part in a transition
	// Why the thread has not completed its handshake for the transition in progress (a failed
	// migration, or a refusal of a quiescence check such as the preload's stack check).
	std::string note;
	// In the lagging threads of a refused or pending report: what the kernel says the thread
	// is doing ("in read, waiting in pipe_read", "running user code"); empty if unknown.
	std::string where;
	// Blocked in a bracketed call in a view other than the one it will run in (the retired
	// view of a finished wait-free transition, or the old view of one in progress, its
	// quiescence check passed): it migrates in blocking_exit(), before it runs application
	// code again. Until then it keeps that view live.
	bool migrates_on_wake = false;
};

struct Report {
	std::uint64_t transition = 0; // 0: rejected before a transition was started
	Outcome outcome = Outcome::refused;
	Mode mode = Mode::global; // the mode used (never automatic)
	std::string change;       // identity
	std::string message;
	std::vector<ThreadInfo> lagging; // threads that did not reach quiescence in time
	std::chrono::nanoseconds duration{0};

	// The request is complete and succeeded: finished, already applied, or reverted.
	bool ok() const noexcept
	{
		return outcome == Outcome::finished || outcome == Outcome::already_applied ||
		       outcome == Outcome::reverted;
	}
};

struct AppliedChange {
	std::string identity;
	Mode mode = Mode::global;
	std::uint64_t transition = 0;
	std::chrono::nanoseconds duration{0};
};

struct StatusSnapshot {
	bool views_available = false;
	std::string views_note; // why not, when unavailable
	bool membarrier_sync_core = false;
	std::string membarrier_note;
	ViewId base_view = 0;
	// With views: whether the process has a single live view (the ViewOps::share probe). A
	// deleted view stays live while a thread is in it: a registered thread blocked in it
	// (ThreadInfo::migrates_on_wake), or an exempt thread that never left it (see
	// Runtime::follow_base()). Empty when unknown (no views, or the probe failed).
	std::optional<bool> single_view;
	// The transition in progress (a wait-free one can stay pending after its deadline).
	std::optional<std::uint64_t> transition;
	std::optional<Outcome> transition_state; // pending or reverting
	ViewId target_view = 0;
	std::vector<ThreadInfo> threads;
	std::vector<pid_t> exempt_threads;
	std::vector<AppliedChange> applied; // oldest first
	std::optional<Report> last_report;
	// Process-wide count of handshakes begun: quiescence points that took the slow path and
	// blocking_exit() calls that met a transition.
	std::uint64_t slow_path_entries = 0;
	// Threads that woke in a retired view and migrated to the base before running
	// application code again (all transitions).
	std::uint64_t migrated_on_wake = 0;
	// Objects (shared libraries) loaded while a wait-free transition had several views live:
	// their text cannot be unshared until one view remains (docs/live-patching.md, "dlopen
	// while two views exist"). Listed while that lasts; empty once the transition has ended.
	struct LoadedWhileSplit {
		std::string name;
		std::uint64_t transition = 0;
		std::string note;
	};
	std::vector<LoadedWhileSplit> loaded_while_split;
	// With views: threads that are not registered (exempt threads, or unknown ones when they
	// are allowed) and are still in a view a wait-free transition retired, which they keep
	// live: tid, name (comm), that view, and a note saying what to do (follow_base()).
	// Nobody migrates them; empty once each has called follow_base() or exited.
	std::vector<ThreadInfo> left_behind;

	std::string to_json() const;
};

// Where the event log goes: a file descriptor (one JSON object per line) and/or a callback
// (one line without the newline). Called on the patcher thread, never with a runtime lock held.
struct EventSink {
	int fd = -1;
	std::function<void(std::string_view line)> callback;
};

struct RuntimeOptions {
	std::unique_ptr<ViewOps> views; // null: kernel_view_ops()
	EventSink events;
	std::chrono::milliseconds default_deadline{5000};
	// Global mode: the longest a thread stays parked waiting for the others. When the
	// barrier is not complete within it, every parked thread is released, the program runs
	// for as long again, and the patcher tries anew until the deadline: a refused transition
	// costs the program at most this per attempt, not the whole deadline.
	std::chrono::milliseconds park_bound{50};
	// Refuse a transition while /proc/self/task lists threads that are neither registered nor
	// exempt (they could run code being replaced).
	bool refuse_unknown_threads = true;

	// Quiescence checks (the preload library's stack check; both optional). They return an
	// empty string when the thread may count as quiescent for a transition of `change`, else
	// the reason, which is shown as the thread's note in status and in lagging lists.
	//
	// may_complete: on the thread itself, at a quiescence point or in blocking_exit(), before
	// it parks or migrates, with no runtime lock held. On refusal the thread goes on running
	// (it stays lagging) and asks again at its next point.
	std::function<std::string(const CodeChange &change)> may_complete;
	// blocked_may_count: by the patcher, for thread `tid` found between blocking_enter() and
	// blocking_exit() while a transition waits, with the runtime's lock held (it must not call
	// the Runtime). Asked once per bracketed call and transition generation. When it passes,
	// the thread counts as quiescent: in global mode it parks if it returns before the
	// change is written; in wait-free mode it counts as migrated and moves to the target (or,
	// once the transition has finished, to the base) in blocking_exit(), before application
	// code runs, so the transition need not wait for its call to return. On refusal the
	// thread counts as lagging until it leaves the call.
	std::function<std::string(pid_t tid, const CodeChange &change)> blocked_may_count;
};

struct Request {
	Mode mode = Mode::automatic;
	std::chrono::milliseconds deadline{0}; // 0: RuntimeOptions::default_deadline
};

namespace detail
{
// The runtime's state (lib/runtime/core.hpp): not part of the API, so not exported.
class __attribute__((visibility("hidden"))) Core;
// Number of transitions in progress in this process; quiescence points only look at this.
extern std::atomic<unsigned> transitions_in_flight;
void quiescence_slow_path() noexcept;
// In a child after fork(), before creating a new Runtime there: the calling thread (the only
// one in the child) forgets its registration without touching the parent's runtime state,
// whose locks another parent thread may have held at the fork; that state is leaked.
void forget_runtime_after_fork() noexcept;
} // namespace detail

class Runtime
{
public:
	// Never fails because views or membarrier are missing: those degrade, and the status and
	// event log say so. Returns null only when memory is exhausted.
	static std::unique_ptr<Runtime> create(RuntimeOptions options) noexcept;
	~Runtime();
	Runtime(const Runtime &) = delete;
	Runtime &operator=(const Runtime &) = delete;

	// Register the calling thread (name empty: its comm). A thread is registered with at most
	// one runtime; it is unregistered automatically when it exits.
	Expected<void> register_current_thread(std::string_view name = {}) noexcept;
	Expected<void> unregister_current_thread() noexcept;
	// Declare a thread that is not registered but never runs code a change replaces (a
	// sanitizer's or library's helper thread), so that unknown-thread checks accept it.
	// Nobody migrates an exempt thread: with views, after a wait-free transition it is still
	// in the retired view until it calls follow_base() (status: left_behind; event:
	// threads_left_behind; the report's message names it). `follows_base`: the thread calls
	// follow_base() whenever it wakes (the control server's threads), so it is listed in
	// status while behind but not named in reports and events.
	Expected<void> exempt_thread(pid_t tid, bool follows_base = false) noexcept;
	// With views, on an exempt (unregistered) thread: move into the base view. A wait-free
	// transition deletes the old view once every registered thread left it, but a view is
	// freed only when its last thread leaves: an exempt thread still there keeps it live (and
	// the process split into several views). Such threads call this when they wake up (the
	// control server's threads do after every connection). Does nothing without views or
	// while a transition is in progress (the base is about to change); refused on a
	// registered thread (those migrate at their quiescence points).
	Expected<void> follow_base() noexcept;

	// Transitions run on the calling thread (the patcher), which must not be registered.
	Report apply(std::shared_ptr<CodeChange> change, Request request = {}) noexcept;
	Report revert(std::string_view identity, Request request = {}) noexcept;
	// For a pending or reverting wait-free transition: keep waiting, or go back.
	Report wait(std::chrono::milliseconds deadline) noexcept;
	Report revert_pending(std::chrono::milliseconds deadline) noexcept;

	StatusSnapshot status() const noexcept;
	// The changes applied now, oldest first (as StatusSnapshot::applied): the very objects
	// given to apply(), one per identity. Empty if memory is exhausted.
	std::vector<std::shared_ptr<CodeChange>> applied_changes() const noexcept;

private:
	explicit Runtime(std::shared_ptr<detail::Core> core);
	std::shared_ptr<detail::Core> core_;
};

// A quiescence point of the calling thread: call it where no frame of a function that may be
// replaced is on the stack. Fast path: one relaxed load and a compare. Relaxed suffices: a
// transition only needs each thread to notice it eventually; everything the thread then reads
// is ordered by the runtime's mutex on the slow path.
inline void quiescence_point() noexcept
{
	if (detail::transitions_in_flight.load(std::memory_order_relaxed) == 0) [[likely]]
		return;
	detail::quiescence_slow_path();
}

// Bracket a call in which the thread may block for long (epoll_wait, accept, ...): in between
// it counts as quiescent. blocking_exit() completes the pending handshake before returning
// (park in global mode, migrate in wait-free mode) and, if a wait-free transition finished
// while the thread was blocked in the old view, migrates it to the new base. No-ops on
// unregistered threads.
void blocking_enter() noexcept;
void blocking_exit() noexcept;

} // namespace atlas

#pragma GCC visibility pop

#endif // ATLAS_RUNTIME_HPP
