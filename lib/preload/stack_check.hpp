// The stack check of preload mode (design sec. 2): a thread may complete a handshake only when
// no frame of a function the pending change replaces is on its stack, and never from inside a
// signal handler. Stacks are unwound with libunwind (local unwinding).
#ifndef ATLAS_PRELOAD_STACK_CHECK_HPP
#define ATLAS_PRELOAD_STACK_CHECK_HPP

#include <atlas/runtime.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <sys/types.h>
#include <vector>

namespace atlas::preload
{

constexpr std::size_t max_frames = 128;

// The calling thread's return addresses, innermost first.
struct StackTrace {
	std::uintptr_t ip[max_frames] = {};
	std::size_t depth = 0;
	bool signal_frame = false; // a signal handler is running somewhere on this stack
	bool truncated = false;    // deeper than max_frames: the rest is unknown
	bool failed = false;       // libunwind could not start
};

// Loads libunwind (once; call it before the first capture where loading is safe, i.e. not in
// a signal handler). False, with `error` saying why, if the stack check cannot work.
bool init_unwinder(std::string *error) noexcept;

// libunwind's dynamic registry, for code that no loaded object's .eh_frame_hdr describes: a
// patch's text (atlas::patch::LoadedPatch::unwind_table(), a binary-search table of its FDEs).
// Without it the stack check cannot unwind through a patched function and refuses every thread
// blocked below one.
struct FrameTable {
	std::uint64_t start_ip = 0, end_ip = 0;
	std::uint64_t segbase = 0;
	std::uint64_t table_data = 0;
	std::uint64_t table_len = 0; // in 8-byte words
};
// Registers `table` (_U_dyn_register, UNW_INFO_FORMAT_REMOTE_TABLE); the table must stay valid
// until cancelled. Returns the registration, or null when libunwind is missing or the table
// is empty (`error` says why when given).
void *register_frames(const FrameTable &table, std::string *error = nullptr) noexcept;
// Cancels a registration (_U_dyn_cancel): before the text it describes is unmapped.
void cancel_frames(void *registration) noexcept;

// Unwinds the calling thread's stack. Async-signal-safe as far as libunwind's local unwinding
// is; allocates nothing.
void capture_current(StackTrace &out) noexcept;

// Empty when `trace` may count as quiescent for a change replacing `ranges`, else why not.
// Conservative: an unknown or truncated stack, or a signal frame, is refused.
std::string check(const StackTrace &trace, const std::vector<AddressRange> &ranges);

// RuntimeOptions::may_complete for the calling thread, for a change touching `ranges`.
std::string check_current(const std::vector<AddressRange> &ranges);

// The stack a thread had when it entered a blocking call, readable by the patcher while the
// thread is blocked (RuntimeOptions::blocked_may_count). Written only by its thread; a
// sequence lock lets the patcher detect a snapshot rewritten under it.
class BlockedStack
{
public:
	void publish(const StackTrace &trace) noexcept;
	// False if the snapshot changed while being read (the thread is entering a new call).
	bool read(StackTrace &out) const noexcept;

	// The preload's kicks: set by the patcher when it sends one, cleared by the thread's kick
	// handler, so that at most one kick is queued per thread (the kick signal is a real-time
	// signal: its instances queue, against RLIMIT_SIGPENDING, while the thread blocks it).
	std::atomic<bool> kick_pending{false};

private:
	std::atomic<std::uint32_t> seq_{0};
	std::atomic<std::uintptr_t> ip_[max_frames] = {};
	std::atomic<std::size_t> depth_{0};
	std::atomic<bool> signal_frame_{false};
	std::atomic<bool> truncated_{false};
	std::atomic<bool> failed_{true}; // nothing published yet
};

// Blocked-call snapshots by thread id.
class BlockedStacks
{
public:
	// The calling thread's snapshot; null when memory is exhausted.
	BlockedStack *add(pid_t tid) noexcept;
	void remove(pid_t tid) noexcept;
	// For a kick to thread `tid`: true if none is pending (and marks one), false if one is
	// already queued or the thread is unknown. `unmark_kick(tid)` clears the mark (the signal
	// could not be sent).
	bool mark_kick(pid_t tid) noexcept;
	void unmark_kick(pid_t tid) noexcept;
	// RuntimeOptions::blocked_may_count, for a change touching `ranges`.
	std::string check(pid_t tid, const std::vector<AddressRange> &ranges) const;

private:
	mutable std::mutex mu_;
	std::vector<std::pair<pid_t, BlockedStack *>> stacks_;
};

} // namespace atlas::preload

#endif
