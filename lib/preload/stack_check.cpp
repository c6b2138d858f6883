// Stack check with libunwind (see stack_check.hpp).
#define UNW_LOCAL_ONLY
#include "stack_check.hpp"

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstring>
#include <dlfcn.h>
#include <fmt/format.h>
#include <libunwind.h>
#include <linux/futex.h>
#include <mutex>
#include <new>
#include <sys/syscall.h>
#include <unistd.h>

namespace atlas::preload
{

std::atomic<int (*)(void *)> detail::getcontext_fn{nullptr};
static_assert(sizeof(unw_context_t) <= detail::context_size && alignof(unw_context_t) <= 16,
              "BlockedStack's room for a context is too small for this libunwind");

namespace
{

// libunwind is opened RTLD_LOCAL rather than linked: its shared library also exports
// _Unwind_RaiseException & co., which, in the global scope of a preloaded process, could take
// over the target's C++ exceptions from libgcc_s (and its static archive is not PIC).
struct Unwinder {
	int (*getcontext)(unw_context_t *) = nullptr;
	int (*init_local)(unw_cursor_t *, unw_context_t *) = nullptr;
	int (*step)(unw_cursor_t *) = nullptr;
	int (*get_reg)(unw_cursor_t *, unw_regnum_t, unw_word_t *) = nullptr;
	int (*is_signal_frame)(unw_cursor_t *) = nullptr;
	void (*dyn_register)(unw_dyn_info_t *) = nullptr; // optional: patch frames
	void (*dyn_cancel)(unw_dyn_info_t *) = nullptr;
	char error[256] = {};
};

// Trivially constructed, zero-initialised: usable from the preload library's constructor,
// which may run before this file's dynamic initialisers.
Unwinder unwinder;
std::once_flag unwinder_once;

template <typename T>
bool lookup(void *handle, T &slot, const char *name)
{
	slot = reinterpret_cast<T>(dlsym(handle, name));
	return slot != nullptr;
}

void open_unwinder() noexcept
{
	void *handle = dlopen("libunwind.so.8", RTLD_NOW | RTLD_LOCAL);
	if (!handle) {
		const char *why = dlerror();
		std::snprintf(unwinder.error, sizeof(unwinder.error),
		              "cannot load libunwind.so.8 (%s): install libunwind8; until then no "
		              "thread passes the stack check",
		              why ? why : "?");
		return;
	}
	Unwinder u;
	if (!lookup(handle, u.getcontext, "_Ux86_64_getcontext") ||
	    !lookup(handle, u.init_local, "_ULx86_64_init_local") ||
	    !lookup(handle, u.step, "_ULx86_64_step") ||
	    !lookup(handle, u.get_reg, "_ULx86_64_get_reg") ||
	    !lookup(handle, u.is_signal_frame, "_ULx86_64_is_signal_frame")) {
		std::snprintf(unwinder.error, sizeof(unwinder.error), "%s",
		              "libunwind.so.8 lacks the x86-64 local unwinding entry points");
		return;
	}
	// Dynamic registration (patch frames): optional, every libunwind 1.x has it.
	lookup(handle, u.dyn_register, "_U_dyn_register");
	lookup(handle, u.dyn_cancel, "_U_dyn_cancel");
	if (!u.dyn_register || !u.dyn_cancel)
		u.dyn_register = nullptr, u.dyn_cancel = nullptr;
	unwinder = u;
	detail::getcontext_fn.store(reinterpret_cast<int (*)(void *)>(u.getcontext),
	                            std::memory_order_relaxed);
}

} // namespace

bool init_unwinder(std::string *error) noexcept
{
	std::call_once(unwinder_once, open_unwinder);
	if (!unwinder.step && error)
		*error = unwinder.error;
	return unwinder.step != nullptr;
}

void *register_frames(const FrameTable &table, std::string *error) noexcept
{
	if (!init_unwinder(error))
		return nullptr;
	if (!unwinder.dyn_register) {
		if (error)
			*error = "libunwind.so.8 lacks _U_dyn_register";
		return nullptr;
	}
	if (table.table_len == 0 || table.end_ip <= table.start_ip) {
		if (error)
			*error = "no call frame information to register";
		return nullptr;
	}
	auto *di = new (std::nothrow) unw_dyn_info_t{};
	if (!di) {
		if (error)
			*error = "out of memory";
		return nullptr;
	}
	di->start_ip = static_cast<unw_word_t>(table.start_ip);
	di->end_ip = static_cast<unw_word_t>(table.end_ip);
	di->format = UNW_INFO_FORMAT_REMOTE_TABLE;
	di->u.rti.segbase = static_cast<unw_word_t>(table.segbase);
	di->u.rti.table_data = static_cast<unw_word_t>(table.table_data);
	di->u.rti.table_len = static_cast<unw_word_t>(table.table_len);
	unwinder.dyn_register(di);
	return di;
}

void cancel_frames(void *registration) noexcept
{
	if (!registration || !unwinder.dyn_cancel)
		return;
	auto *di = static_cast<unw_dyn_info_t *>(registration);
	unwinder.dyn_cancel(di);
	delete di;
}

namespace
{

// Unwinds from `context` (the calling thread's, or a blocked thread's: BlockedStack).
void walk(unw_context_t *context, StackTrace &out) noexcept
{
	out.depth = 0;
	out.signal_frame = false;
	out.truncated = false;
	out.failed = false;
	unw_cursor_t cursor;
	if (unwinder.init_local(&cursor, context) != 0) {
		out.failed = true;
		return;
	}
	for (;;) {
		unw_word_t ip = 0;
		if (unwinder.get_reg(&cursor, UNW_REG_IP, &ip) != 0 || ip == 0)
			break;
		if (out.depth == max_frames) {
			out.truncated = true;
			break;
		}
		out.ip[out.depth++] = static_cast<std::uintptr_t>(ip);
		if (unwinder.is_signal_frame(&cursor) > 0)
			out.signal_frame = true;
		// 0: the outermost frame; < 0: no unwind information, which the check treats
		// like a truncated stack (the rest is unknown).
		int stepped = unwinder.step(&cursor);
		if (stepped == 0)
			break;
		if (stepped < 0) {
			out.truncated = true;
			break;
		}
	}
}

long futex(std::atomic<std::uint32_t> *word, int op, std::uint32_t value) noexcept
{
	return syscall(SYS_futex, reinterpret_cast<std::uint32_t *>(word), op, value, nullptr,
	               nullptr, 0);
}

} // namespace

void capture_current(StackTrace &out) noexcept
{
	unw_context_t context;
	if (!init_unwinder(nullptr) || unwinder.getcontext(&context) != 0) {
		out = StackTrace{};
		out.failed = true;
		return;
	}
	walk(&context, out);
}

std::string check(const StackTrace &trace, const std::vector<AddressRange> &ranges)
{
	if (trace.failed) {
		std::string why;
		if (!init_unwinder(&why))
			return fmt::format("stack check unavailable: {}", why);
		return "stack check: libunwind could not unwind this thread's stack";
	}
	if (trace.signal_frame)
		return "inside a signal handler: a wrapped call there is never a quiescence point";
	for (std::size_t i = 0; i < trace.depth; i++) {
		// A return address may point just past its call at the end of a function: test
		// ip - 1 too (a false hit only delays this thread).
		const std::uintptr_t ip = trace.ip[i];
		for (const auto &r : ranges) {
			if ((ip >= r.start && ip < r.end) || (ip > r.start && ip - 1 < r.end))
				return fmt::format(
				    "stack holds {} (frame {}, ip {:#x} in [{:#x}, {:#x})); "
				    "retries at its next point",
				    r.name.empty() ? "a function the change replaces"
				                   : r.name + ", which the change replaces",
				    i, ip, r.start, r.end);
		}
	}
	if (trace.truncated && !ranges.empty())
		return fmt::format("stack check: stack not fully unwound ({} frames); cannot prove "
		                   "that no replaced function is on it",
		                   trace.depth);
	return {};
}

std::string check_current(const std::vector<AddressRange> &ranges)
{
	StackTrace trace;
	capture_current(trace);
	return check(trace, ranges);
}

void BlockedStack::leave() noexcept
{
	const int saved = errno;
	std::uint32_t s = state_.load(std::memory_order_acquire);
	for (;;) {
		if (s == running)
			break;
		if (s == blocked) {
			if (state_.compare_exchange_weak(s, running, std::memory_order_acq_rel))
				break;
			continue;
		}
		// Being unwound: tell the patcher to wake this thread, and sleep until it does.
		if (s == inspecting &&
		    !state_.compare_exchange_weak(s, inspecting_waited, std::memory_order_acq_rel))
			continue;
		futex(&state_, FUTEX_WAIT_PRIVATE, inspecting_waited);
		s = state_.load(std::memory_order_acquire);
	}
	errno = saved;
}

bool BlockedStack::inspect(StackTrace &out) noexcept
{
	return hold([&] {
		if (!has_context_) {
			out = StackTrace{};
			out.failed = true;
			return;
		}
		unw_context_t context;
		std::memcpy(&context, context_, sizeof(context));
		walk(&context, out);
	});
}

void BlockedStack::release() noexcept
{
	if (state_.exchange(blocked, std::memory_order_acq_rel) == inspecting_waited)
		futex(&state_, FUTEX_WAKE_PRIVATE, INT_MAX);
}

BlockedStack *BlockedStacks::add(pid_t tid) noexcept
{
	try {
		auto *stack = new BlockedStack;
		std::lock_guard lock(mu_);
		stacks_.emplace_back(tid, stack);
		return stack;
	} catch (...) {
		return nullptr;
	}
}

void BlockedStacks::remove(pid_t tid) noexcept
{
	std::lock_guard lock(mu_);
	auto it = std::find_if(stacks_.begin(), stacks_.end(),
	                       [&](const auto &e) { return e.first == tid; });
	if (it == stacks_.end())
		return;
	delete it->second;
	stacks_.erase(it);
}

std::string BlockedStacks::check(pid_t tid, const std::vector<AddressRange> &ranges) const
{
	StackTrace trace;
	{
		std::lock_guard lock(mu_);
		auto it = std::find_if(stacks_.begin(), stacks_.end(),
		                       [&](const auto &e) { return e.first == tid; });
		if (it == stacks_.end())
			return "blocked, but its stack was never recorded (a thread the preload "
			       "library did not start)";
		if (!it->second->inspect(trace))
			return "entering or leaving a blocking call";
	}
	return preload::check(trace, ranges);
}

} // namespace atlas::preload
