// The stack check of preload mode (docs/live-patching.md, "Unmodified programs (preload)"): a
// thread may complete a handshake only when no frame of a function the pending change replaces is
// on its stack, and never from inside a signal handler. Stacks are unwound with libunwind (local
// unwinding).
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

namespace detail
{
// libunwind's getcontext, once init_unwinder() found it (null before, or without libunwind).
extern std::atomic<int (*)(void *)> getcontext_fn;
constexpr std::size_t context_size = 1024; // >= sizeof(unw_context_t), checked in the .cpp
} // namespace detail

// Where a thread blocked in a wrapped call has its stack, for the patcher to check
// (RuntimeOptions::blocked_may_count).
//
// Unwinding costs microseconds and most blocking calls end before any transition needs to
// know, so the thread records only its registers on entry (enter(): a getcontext, some tens
// of nanoseconds) and the patcher unwinds from them when it asks (inspect()). That is valid
// while the frame that called enter() is active, and its callers unchanged: the thread is
// then inside the blocking call, which only uses the stack below that frame. A small state
// machine keeps it so: inspect() holds the thread at leave() (the call returned, the frame is
// about to go) until the unwinding is done, so the thread waits for at most one unwinding,
// and only while a transition is pending; otherwise leave() is one compare-and-swap.
class BlockedStack
{
public:
	// The calling function is about to block, in a call whose frame stays active until it
	// calls leave(). Inlined always, so that the registers recorded are its own. Never
	// from a signal handler that may leave by longjmp (the frame would vanish unannounced).
	__attribute__((always_inline)) void enter() noexcept
	{
		auto get = detail::getcontext_fn.load(std::memory_order_relaxed);
		has_context_ = get && get(context_) == 0;
		state_.store(blocked, std::memory_order_release);
	}
	// The blocking call returned (or the frame is being unwound): after this the stack may
	// change. Waits for an inspection in progress. Async-signal-safe.
	void leave() noexcept;
	// Blocked again after leave(), in the same frame as the last enter(): a signal handler
	// that interrupted the call returned into it. Async-signal-safe.
	void reenter() noexcept
	{
		state_.store(blocked, std::memory_order_release);
	}
	// The patcher: unwinds the thread's stack from its enter(), holding the thread at
	// leave() meanwhile. False if the thread is not blocked (entering or leaving a call).
	bool inspect(StackTrace &out) noexcept;
	// Runs `fn` with the thread held in its blocked frame (inspect()'s core; tests hold it
	// longer). False, without running it, if the thread is not blocked.
	template <typename Fn>
	bool hold(Fn &&fn) noexcept
	{
		std::uint32_t expected = blocked;
		if (!state_.compare_exchange_strong(expected, inspecting,
		                                    std::memory_order_acq_rel))
			return false;
		fn();
		release();
		return true;
	}

private:
	void release() noexcept; // ends a hold(), waking the thread if it waits in leave()
	enum : std::uint32_t {
		running,           // no frame recorded
		blocked,           // the frame of enter() is active: the patcher may inspect it
		inspecting,        // the patcher is unwinding it
		inspecting_waited, // ... and the thread waits in leave() for the end
	};
	alignas(16) unsigned char context_[detail::context_size] = {};
	bool has_context_ = false;
	std::atomic<std::uint32_t> state_{running};
};

// Leaves the blocked state when the scope ends, however it ends (a return, or the forced
// unwinding of pthread_cancel inside the blocking call).
class BlockedScope
{
public:
	explicit BlockedScope(BlockedStack *stack) noexcept : stack_(stack) {}
	~BlockedScope()
	{
		if (stack_)
			stack_->leave();
	}
	BlockedScope(const BlockedScope &) = delete;
	BlockedScope &operator=(const BlockedScope &) = delete;

private:
	BlockedStack *stack_;
};

// The blocked-call records of the registered threads, by thread id. The lock is taken to add
// and remove a thread (its start and exit) and by the patcher, never on a wrapped call.
class BlockedStacks
{
public:
	// The calling thread's snapshot; null when memory is exhausted.
	BlockedStack *add(pid_t tid) noexcept;
	void remove(pid_t tid) noexcept;
	// RuntimeOptions::blocked_may_count, for a change touching `ranges`.
	std::string check(pid_t tid, const std::vector<AddressRange> &ranges) const;

private:
	mutable std::mutex mu_;
	std::vector<std::pair<pid_t, BlockedStack *>> stacks_;
};

} // namespace atlas::preload

#endif
