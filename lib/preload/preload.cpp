// libatlas-preload.so: the runtime for unmodified programs (docs/live-patching.md,
// "Unmodified programs (preload)").
//
// At load it creates the process's Runtime (with the stack check as its quiescence check) and
// the control socket server. It interposes pthread_create (threads register before the start
// routine and unregister at exit) and the calls where threads idle. Each wrapper records the
// thread's registers (for the patcher to unwind its stack if it must), announces "blocked",
// makes the real call and, in blocking_exit(), completes the handshake before the application
// runs again. Nothing here exits, aborts or throws.
//
// Kicks (wait-free mode only): the runtime's patcher sends the kick signal (a real-time signal
// this library owns) to threads blocked in a wrapped call outside the target view. The signal
// is blocked everywhere except around the wrapper's own system call (atomically through the
// sigmask variants ppoll/epoll_pwait/pselect where they exist), so that only that call can be
// interrupted; the wrapper then completes the handshake and restarts the call with the
// remaining timeout. No EINTR caused by a kick ever reaches the application, and
// sigaction/signal/pthread_sigmask/sigprocmask/sigsuspend/sigwait* are interposed so that the
// application can neither take, unblock nor wait for the kick signal.
#include "preload.h"
#include "simulated_views.hpp"
#include "stack_check.hpp"

#include <control.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <mutex>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/select.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if ATLAS_HAVE_PATCH_LOADER
#include <atlas/patch/loader.hpp>
#endif

namespace
{

using namespace atlas;

// The real functions, resolved once at load (before main, single-threaded).
struct Real {
	int (*pthread_create)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
	int (*epoll_wait)(int, epoll_event *, int, int);
	int (*epoll_pwait)(int, epoll_event *, int, int, const sigset_t *);
	// glibc >= 2.35; optional (null: the wrapper fails ENOSYS, as glibc would lack it).
	int (*epoll_pwait2)(int, epoll_event *, int, const timespec *, const sigset_t *);
	int (*poll)(pollfd *, nfds_t, int);
	int (*ppoll)(pollfd *, nfds_t, const timespec *, const sigset_t *);
	int (*select)(int, fd_set *, fd_set *, fd_set *, timeval *);
	int (*pselect)(int, fd_set *, fd_set *, fd_set *, const timespec *, const sigset_t *);
	int (*accept)(int, sockaddr *, socklen_t *);
	int (*accept4)(int, sockaddr *, socklen_t *, int);
	ssize_t (*read)(int, void *, size_t);
	ssize_t (*recv)(int, void *, size_t, int);
	ssize_t (*recvfrom)(int, void *, size_t, int, sockaddr *, socklen_t *);
	ssize_t (*recvmsg)(int, msghdr *, int);
	int (*nanosleep)(const timespec *, timespec *);
	int (*clock_nanosleep)(clockid_t, int, const timespec *, timespec *);
	int (*pthread_cond_wait)(pthread_cond_t *, pthread_mutex_t *);
	int (*pthread_cond_timedwait)(pthread_cond_t *, pthread_mutex_t *, const timespec *);
	int (*sem_wait)(sem_t *);
	int (*sem_timedwait)(sem_t *, const timespec *);
	int (*pause)();
	ssize_t (*readv)(int, const iovec *, int);
	ssize_t (*pread)(int, void *, size_t, off_t);
	ssize_t (*write)(int, const void *, size_t);
	ssize_t (*writev)(int, const iovec *, int);
	ssize_t (*pwrite)(int, const void *, size_t, off_t);
	int (*connect)(int, const sockaddr *, socklen_t);
	int (*pthread_mutex_lock)(pthread_mutex_t *);
	int (*pthread_mutex_trylock)(pthread_mutex_t *);
	int (*pthread_mutex_timedlock)(pthread_mutex_t *, const timespec *);
	int (*pthread_rwlock_rdlock)(pthread_rwlock_t *);
	int (*pthread_rwlock_tryrdlock)(pthread_rwlock_t *);
	int (*pthread_rwlock_wrlock)(pthread_rwlock_t *);
	int (*pthread_rwlock_trywrlock)(pthread_rwlock_t *);
	int (*pthread_barrier_wait)(pthread_barrier_t *);
	int (*pthread_join)(pthread_t, void **);
	pid_t (*waitpid)(pid_t, int *, int);
	int (*waitid)(idtype_t, id_t, siginfo_t *, int);
	int (*flock)(int, int);
	int (*sigwait)(const sigset_t *, int *);
	int (*sigwaitinfo)(const sigset_t *, siginfo_t *);
	int (*sigtimedwait)(const sigset_t *, siginfo_t *, const timespec *);
	int (*sigaction)(int, const struct sigaction *, struct sigaction *);
	int (*pthread_sigmask)(int, const sigset_t *, sigset_t *);
	int (*sigprocmask)(int, const sigset_t *, sigset_t *);
	int (*sigsuspend)(const sigset_t *);
	int (*signalfd)(int, const sigset_t *, int);
	int (*sigpending)(sigset_t *);
};

Real real;
bool real_ok = false;

Runtime *runtime = nullptr; // leaked on purpose: threads may run until the very end
control::Server *server = nullptr;
pid_t server_pid = 0; // the process that started `server`
preload::BlockedStacks *blocked_stacks = nullptr;
std::atomic<bool> active{false};
std::atomic<control::Loader *> test_loader{nullptr};
preload::SimulatedViews *simulated_views = nullptr; // ATLAS_PRELOAD_TEST_SIMULATED_VIEWS=1

// The kick signal (0: no kicks: views are missing or ATLAS_KICK_SIGNAL=0). Set once in the
// constructor, before any thread of the application exists.
int kick_signal = 0;
pid_t kick_pid = 0;

// Per thread, async-signal-safe (initial-exec TLS of a preloaded object needs no allocation).
#define ATLAS_TLS_IE __attribute__((tls_model("initial-exec")))
// A kick arrived (set by the kick handler).
thread_local volatile sig_atomic_t tl_kicked ATLAS_TLS_IE = 0;
// This thread's "a kick is queued" mark (BlockedStack::kick_pending), cleared by the handler.
thread_local std::atomic<bool> *tl_kick_pending ATLAS_TLS_IE = nullptr;
// Application handlers run on this thread (all, and those without SA_RESTART).
thread_local volatile sig_atomic_t tl_app_handlers ATLAS_TLS_IE = 0;
thread_local volatile sig_atomic_t tl_app_nonrestart ATLAS_TLS_IE = 0;
// Whether the application believes the kick signal is blocked on this thread (it is always
// blocked outside wrapped calls; the application's own view is what it set).
thread_local bool tl_app_blocks_kick ATLAS_TLS_IE = false;

// Per thread: set for threads the preload registered; creating_internal while the runtime
// starts its own threads (they are exempt, not registered).
struct ThreadContext {
	preload::BlockedStack *stack = nullptr;
	pid_t tid = 0;
	bool inside = false;  // in a wrapper: nested wrapped calls are not points
	bool blocked = false; // between blocking_enter() and blocking_exit() of a wrapper
	~ThreadContext()
	{
		tl_kick_pending = nullptr;
		// Thread exit: the runtime unregisters the thread through its own thread_local.
		if (stack && blocked_stacks)
			blocked_stacks->remove(tid);
	}
};
thread_local ThreadContext tl_context;
thread_local bool tl_creating_internal = false;

void note(const std::string &message) noexcept
{
	// stderr only: the application's stdout is not ours.
	std::string line = fmt::format("atlas-preload[{}]: {}\n", getpid(), message);
	(void)!::write(STDERR_FILENO, line.data(), line.size());
}

template <typename T>
bool resolve(T &slot, const char *name, const char *version = nullptr) noexcept
{
	void *sym = version ? dlvsym(RTLD_NEXT, name, version) : dlsym(RTLD_NEXT, name);
	slot = reinterpret_cast<T>(sym);
	if (!sym)
		note(fmt::format("cannot resolve {}{}{}: {}; the preload library stays inactive",
		                 name, version ? "@" : "", version ? version : "", dlerror()));
	return sym != nullptr;
}

bool resolve_all() noexcept
{
	bool ok = true;
	ok &= resolve(real.pthread_create, "pthread_create");
	ok &= resolve(real.epoll_wait, "epoll_wait");
	ok &= resolve(real.epoll_pwait, "epoll_pwait");
	ok &= resolve(real.poll, "poll");
	ok &= resolve(real.ppoll, "ppoll");
	ok &= resolve(real.select, "select");
	ok &= resolve(real.pselect, "pselect");
	ok &= resolve(real.accept, "accept");
	ok &= resolve(real.accept4, "accept4");
	ok &= resolve(real.read, "read");
	ok &= resolve(real.recv, "recv");
	ok &= resolve(real.recvfrom, "recvfrom");
	ok &= resolve(real.recvmsg, "recvmsg");
	ok &= resolve(real.nanosleep, "nanosleep");
	ok &= resolve(real.clock_nanosleep, "clock_nanosleep");
	// Unversioned dlsym would give the pre-2.3.2 condition variables (a different ABI).
	ok &= resolve(real.pthread_cond_wait, "pthread_cond_wait", "GLIBC_2.3.2");
	ok &= resolve(real.pthread_cond_timedwait, "pthread_cond_timedwait", "GLIBC_2.3.2");
	ok &= resolve(real.sem_wait, "sem_wait");
	ok &= resolve(real.sem_timedwait, "sem_timedwait");
	ok &= resolve(real.pause, "pause");
	ok &= resolve(real.readv, "readv");
	ok &= resolve(real.pread, "pread64");
	ok &= resolve(real.write, "write");
	ok &= resolve(real.writev, "writev");
	ok &= resolve(real.pwrite, "pwrite64");
	ok &= resolve(real.connect, "connect");
	ok &= resolve(real.pthread_mutex_lock, "pthread_mutex_lock");
	ok &= resolve(real.pthread_mutex_trylock, "pthread_mutex_trylock");
	ok &= resolve(real.pthread_mutex_timedlock, "pthread_mutex_timedlock");
	ok &= resolve(real.pthread_rwlock_rdlock, "pthread_rwlock_rdlock");
	ok &= resolve(real.pthread_rwlock_tryrdlock, "pthread_rwlock_tryrdlock");
	ok &= resolve(real.pthread_rwlock_wrlock, "pthread_rwlock_wrlock");
	ok &= resolve(real.pthread_rwlock_trywrlock, "pthread_rwlock_trywrlock");
	ok &= resolve(real.pthread_barrier_wait, "pthread_barrier_wait");
	ok &= resolve(real.pthread_join, "pthread_join");
	ok &= resolve(real.waitpid, "waitpid");
	ok &= resolve(real.waitid, "waitid");
	ok &= resolve(real.flock, "flock");
	ok &= resolve(real.sigwait, "sigwait");
	ok &= resolve(real.sigwaitinfo, "sigwaitinfo");
	ok &= resolve(real.sigtimedwait, "sigtimedwait");
	ok &= resolve(real.sigaction, "sigaction");
	ok &= resolve(real.pthread_sigmask, "pthread_sigmask");
	ok &= resolve(real.sigprocmask, "sigprocmask");
	ok &= resolve(real.sigsuspend, "sigsuspend");
	ok &= resolve(real.signalfd, "signalfd");
	real.epoll_pwait2 = reinterpret_cast<decltype(real.epoll_pwait2)>(
	    dlsym(RTLD_NEXT, "epoll_pwait2")); // optional: older glibc lacks it
	ok &= resolve(real.sigpending, "sigpending");
	return ok;
}

// Wrappers may run before our constructor (another library's constructor): resolve then.
void ensure_real() noexcept
{
	static std::once_flag once;
	if (!real_ok)
		std::call_once(once, [] { real_ok = resolve_all(); });
}

// Registers the calling thread with the runtime and records where its blocked stacks go.
void register_thread() noexcept
{
	if (!runtime || !blocked_stacks)
		return;
	ThreadContext &ctx = tl_context;
	ctx.tid = gettid();
	ctx.stack = blocked_stacks->add(ctx.tid);
	tl_kick_pending = ctx.stack ? &ctx.stack->kick_pending : nullptr;
	Result r = runtime->register_current_thread();
	if (!r) {
		note(fmt::format("thread {} not registered: {}", ctx.tid, r.message()));
		blocked_stacks->remove(ctx.tid);
		ctx.stack = nullptr;
	}
}

// How a kick may interrupt a wrapped call (see the file comment).
enum class Kick {
	none,    // not interruptible by a signal (pthread_cond_*): the kick stays blocked
	mask,    // the call takes the signal mask itself (ppoll, epoll_pwait, pselect, sigtimedwait
	         // via the set...): the wrapper passes one with the kick signal unblocked
	unblock, // the kick signal is unblocked just around the call (accept, recv, nanosleep, ...)
};

// Whether an application handler ran during the call in a way that makes EINTR the
// application's own: for calls the kernel restarts after SA_RESTART handlers (`restartable`),
// a handler without SA_RESTART; for the others, any handler.
struct HandlerWatch {
	sig_atomic_t all = tl_app_handlers;
	sig_atomic_t nonrestart = tl_app_nonrestart;
	bool app_eintr(bool restartable) const noexcept
	{
		return restartable ? tl_app_nonrestart != nonrestart : tl_app_handlers != all;
	}
};

// The calling thread's current mask with the kick signal removed (for Kick::mask calls).
sigset_t mask_without_kick(const sigset_t *given) noexcept
{
	sigset_t m;
	if (given)
		m = *given;
	else
		real.pthread_sigmask(SIG_BLOCK, nullptr, &m);
	sigdelset(&m, kick_signal);
	return m;
}

// Opens the kick window around one attempt of a Kick::unblock call.
class KickWindow
{
public:
	explicit KickWindow(bool open) noexcept : open_(open)
	{
		if (open_) {
			sigset_t k;
			sigemptyset(&k);
			sigaddset(&k, kick_signal);
			real.pthread_sigmask(SIG_UNBLOCK, &k, nullptr);
		}
	}
	~KickWindow()
	{
		if (open_) {
			const int saved = errno;
			sigset_t k;
			sigemptyset(&k);
			sigaddset(&k, kick_signal);
			real.pthread_sigmask(SIG_BLOCK, &k, nullptr);
			errno = saved;
		}
	}
	KickWindow(const KickWindow &) = delete;
	KickWindow &operator=(const KickWindow &) = delete;

private:
	bool open_;
};

// The usual convention: -1 and errno.
struct ErrnoEintr {
	template <typename R>
	bool operator()(R r) const noexcept
	{
		return r < 0 && errno == EINTR;
	}
};

// Application signal handlers running on this thread (handler_trampoline). A handler that
// leaves by longjmp does not count itself out; in_signal_handler() then finds out by
// unwinding, which only such a thread pays.
thread_local volatile sig_atomic_t tl_handler_depth ATLAS_TLS_IE = 0;

bool in_signal_handler() noexcept
{
	if (tl_handler_depth == 0)
		return false;
	preload::StackTrace trace;
	preload::capture_current(trace);
	if (trace.signal_frame || trace.failed)
		return true;
	tl_handler_depth = 0; // left by longjmp
	return false;
}

// A blocking call made by a registered thread outside signal handlers: bracketed.
//
// `attempt(kicks)` makes the real call once; `kicks` says whether the kick signal may
// interrupt it (Kick::mask calls then pass mask_without_kick()); the attempt recomputes its
// timeout from its own deadline, so that a restart continues with the remaining time.
// `eintr(result)` tells an interrupted call. A call interrupted by a kick, with no application
// handler that would have made it fail with EINTR without atlas, completes the handshake and
// is restarted: the application never sees it.
template <typename Attempt, typename Eintr = ErrnoEintr>
auto bracketed(Kick kick, bool restartable, Attempt &&attempt, Eintr eintr = {})
{
	ensure_real();
	ThreadContext &ctx = tl_context;
	// Nested: the runtime's own waits (its condition variables, in the handshake) and
	// libunwind's calls pass straight through, or the thread would re-enter the runtime.
	if (!ctx.stack || ctx.inside || !active.load(std::memory_order_relaxed))
		return attempt(false);
	ctx.inside = true;
	if (in_signal_handler()) { // never a quiescence point: just the call
		ctx.inside = false;
		return attempt(false);
	}
	// Only the registers: the patcher unwinds from them if a transition needs this thread
	// while it is blocked (BlockedStack); the scope ends the record on every way out.
	ctx.stack->enter();
	preload::BlockedScope blocked_scope(ctx.stack);
	atlas::blocking_enter();
	ctx.blocked = true;
	const bool kicks = kick_signal != 0 && kick != Kick::none;
	for (;;) {
		tl_kicked = 0;
		HandlerWatch handlers;
		bool skipped = false;
		auto result = [&] {
			const bool window_needed = kicks && kick == Kick::unblock;
			KickWindow window(window_needed);
			// A kick left pending (blocked) since the thread's last wrapped call
			// arrives as the window opens: handshake now rather than block with it
			// consumed.
			if (window_needed && tl_kicked) {
				skipped = true;
				return decltype(attempt(false)){};
			}
			return attempt(kicks);
		}();
		const int saved = errno;
		const bool ours = kicks && tl_kicked &&
		                  (skipped || (eintr(result) && !handlers.app_eintr(restartable)));
		if (!ours) {
			ctx.blocked = false;
			// Completes the handshake (with the stack check) before the application
			// runs again.
			atlas::blocking_exit();
			ctx.inside = false;
			errno = saved;
			return result;
		}
		// Kicked: migrate now (the stack is the one recorded on entry), then go back into
		// the call.
		ctx.blocked = false;
		atlas::blocking_exit();
		atlas::blocking_enter();
		ctx.blocked = true;
	}
}

// Locks: a point only when the lock is taken by another thread (the try fails), so that the
// uncontended path costs one try more than the plain call. The waits are futex waits that
// signals do not end (no kick can end them): a blocked waiter counts as quiescent, and
// migrates when it gets the lock.
template <typename Try, typename Wait>
int contended(Try &&try_lock, Wait &&wait)
{
	ensure_real();
	const int r = try_lock();
	if (r != EBUSY)
		return r;
	return bracketed(
	    Kick::none, true, [&](bool) { return wait(); }, [](int) { return false; });
}
// A deadline on CLOCK_MONOTONIC for restarts with the remaining time.
struct Deadline {
	bool infinite = true;
	std::int64_t at_ns = 0;

	static std::int64_t now() noexcept
	{
		timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		return std::int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
	}
	static Deadline in_ms(int ms) noexcept
	{
		Deadline d;
		if (ms >= 0) {
			d.infinite = false;
			d.at_ns = now() + std::int64_t(ms) * 1000000;
		}
		return d;
	}
	static Deadline in(const timespec *ts) noexcept
	{
		Deadline d;
		if (ts) {
			d.infinite = false;
			d.at_ns = now() + std::int64_t(ts->tv_sec) * 1000000000 + ts->tv_nsec;
		}
		return d;
	}
	std::int64_t left_ns() const noexcept
	{
		return std::max<std::int64_t>(at_ns - now(), 0);
	}
	// Milliseconds left, rounded up (-1: infinite).
	int left_ms() const noexcept
	{
		if (infinite)
			return -1;
		const std::int64_t ms = (left_ns() + 999999) / 1000000;
		return ms > INT32_MAX ? INT32_MAX : int(ms);
	}
	// The remaining time (null: infinite), in `buf`.
	const timespec *left(timespec &buf) const noexcept
	{
		if (infinite)
			return nullptr;
		const std::int64_t ns = left_ns();
		buf.tv_sec = time_t(ns / 1000000000);
		buf.tv_nsec = long(ns % 1000000000);
		return &buf;
	}
};

// The set minus the kick signal: the application must not wait for (and so steal) kicks.
const sigset_t *without_kick(const sigset_t *set, sigset_t &buf) noexcept
{
	if (!set || kick_signal == 0 || !sigismember(set, kick_signal))
		return set;
	buf = *set;
	sigdelset(&buf, kick_signal);
	return &buf;
}

// The application's mask for a call that takes one (ppoll, epoll_pwait, pselect) made outside
// a kick window (from a signal handler, a nested call, an unregistered thread): with the kick
// signal added, so that a kick left pending by an earlier transition stays pending instead of
// interrupting the call with an EINTR the application would see.
const sigset_t *keep_kick_blocked(const sigset_t *mask, sigset_t &buf) noexcept
{
	if (!mask || kick_signal == 0 || sigismember(mask, kick_signal))
		return mask;
	buf = *mask;
	sigaddset(&buf, kick_signal);
	return &buf;
}

// The mask a wrapped call that takes one passes on: in a kick window the application's mask
// without the kick signal (a kick ends the call), outside one with it kept blocked.
const sigset_t *call_mask(bool kicks, const sigset_t *mask, sigset_t &buf) noexcept
{
	if (!kicks)
		return keep_kick_blocked(mask, buf);
	buf = mask_without_kick(mask);
	return &buf;
}

struct StartArgs {
	void *(*start)(void *);
	void *arg;
	bool app_blocks_kick; // the creator's view of its mask, inherited like the mask itself
	ViewId view;          // the creator's simulated view
};

void *start_trampoline(void *p)
{
	StartArgs args = *static_cast<StartArgs *>(p);
	delete static_cast<StartArgs *>(p);
	tl_app_blocks_kick = args.app_blocks_kick;
	if (simulated_views)
		simulated_views->place_caller(args.view);
	register_thread();
	return args.start(args.arg);
}

#if ATLAS_HAVE_PATCH_LOADER
// A loaded patch whose frames are registered with the stack check's libunwind
// (_U_dyn_register), so that a thread blocked in a wrapped call below a patched function can
// be unwound through it. The registration is cancelled before the patch's text is unmapped
// (unreachable()). Everything else is the loader's patch.
class RegisteredPatch final : public atlas::patch::LoadedPatch
{
public:
	explicit RegisteredPatch(std::shared_ptr<atlas::patch::LoadedPatch> inner)
	    : inner_(std::move(inner))
	{
		const UnwindTable t = inner_->unwind_table();
		std::string error;
		if (t.table_len != 0) {
			frames_ = preload::register_frames(
			    {t.start_ip, t.end_ip, t.segbase, t.table_data, t.table_len}, &error);
			if (!frames_)
				note(fmt::format(
				    "{}: patch frames not registered with libunwind ({}): "
				    "the stack check refuses threads blocked below its "
				    "functions",
				    inner_->identity(), error));
		}
	}
	~RegisteredPatch() override = default; // like the loader's: only unreachable() frees

	std::string identity() const override
	{
		return inner_->identity();
	}
	Result apply() override
	{
		return inner_->apply();
	}
	Result revert() override
	{
		return inner_->revert();
	}
	bool requires_global() const override
	{
		return inner_->requires_global();
	}
	std::vector<AddressRange> replaced_functions() const override
	{
		return inner_->replaced_functions();
	}
	std::vector<std::shared_ptr<const CodeChange>> stacked_on() const override
	{
		return inner_->stacked_on();
	}
	void unreachable() noexcept override
	{
		{
			std::lock_guard lock(mu_);
			preload::cancel_frames(frames_);
			frames_ = nullptr;
		}
		inner_->unreachable();
	}
	std::optional<uint64_t> lookup(std::string_view name) const override
	{
		return inner_->lookup(name);
	}
	AddressRange text_range() const override
	{
		return inner_->text_range();
	}
	AddressRange data_range() const override
	{
		return inner_->data_range();
	}
	std::vector<uint64_t> redirect_sites() const override
	{
		return inner_->redirect_sites();
	}
	Cells cells() const override
	{
		return inner_->cells();
	}
	UnwindTable unwind_table() const override
	{
		return inner_->unwind_table();
	}
	Result in_effect() const override
	{
		return inner_->in_effect();
	}
	bool frames_registered() const
	{
		std::lock_guard lock(mu_);
		return frames_ != nullptr;
	}

private:
	std::shared_ptr<atlas::patch::LoadedPatch> inner_;
	mutable std::mutex mu_;
	void *frames_ = nullptr;
};

#endif

// What the stack check looks for: the functions the change replaces and, for a loaded patch,
// its own text (reverting it must not leave a thread returning into it).
std::vector<AddressRange> ranges_of(const CodeChange &change)
{
	std::vector<AddressRange> ranges = change.replaced_functions();
#if ATLAS_HAVE_PATCH_LOADER
	if (auto *patch = dynamic_cast<const atlas::patch::LoadedPatch *>(&change)) {
		AddressRange text = patch->text_range();
		if (text.end > text.start)
			ranges.push_back(text);
	}
#endif
	return ranges;
}

control::LoadResult load(const std::string &path)
{
	if (control::Loader *l = test_loader.load(std::memory_order_acquire))
		return (*l)(path);
#if ATLAS_HAVE_PATCH_LOADER
	// Stacking: the new patch resolves symbols in the applied ones (newest first). Exactly the
	// instances the runtime applied, one per identity: never a duplicate that was loaded but
	// not applied (already applied, refused, failed), which the control server unmaps. Oldest
	// first, as LoadOptions wants.
	atlas::patch::LoadOptions options;
	for (const auto &c : runtime->applied_changes())
		if (auto lp = std::dynamic_pointer_cast<const atlas::patch::LoadedPatch>(c))
			options.earlier.push_back(std::move(lp));
	auto loaded = atlas::patch::load_patch(path, options);
	if (!loaded)
		return {nullptr, loaded.error().message};
	std::shared_ptr<CodeChange> change = std::move(loaded).value();
	if (auto lp = std::dynamic_pointer_cast<atlas::patch::LoadedPatch>(change)) {
		auto registered = std::make_shared<RegisteredPatch>(std::move(lp));
		change = std::move(registered);
	}
	// No reference kept here: the control server releases the change if its apply does not
	// take it, the runtime keeps it while applied.
	return {std::move(change), {}};
#else
	return {nullptr, "this libatlas-preload.so was built without the patch loader "
	                 "(atlas/patch/loader.hpp); rebuild atlas with it"};
#endif
}

void kick_handler(int, siginfo_t *, void *)
{
	tl_kicked = 1; // the interrupted wrapper restarts its call after the handshake
	if (std::atomic<bool> *pending = tl_kick_pending)
		pending->store(false, std::memory_order_release); // the next kick may be sent
}

// Chooses the kick signal (ATLAS_KICK_SIGNAL: a number in [SIGRTMIN, SIGRTMAX], 0 for none;
// default SIGRTMAX - 2), installs its handler and blocks it in the calling thread, from which
// every later thread inherits the mask.
void setup_kicks(bool views_available) noexcept
{
	kick_signal = 0;
	kick_pid = getpid();
	int sig = SIGRTMAX - 2;
	if (const char *env = std::getenv("ATLAS_KICK_SIGNAL"); env && *env) {
		char *end = nullptr;
		long v = std::strtol(env, &end, 10);
		if (*end != '\0' || (v != 0 && (v < SIGRTMIN || v > SIGRTMAX))) {
			note(fmt::format("ATLAS_KICK_SIGNAL={} is not 0 or a signal in [{}, {}]; "
			                 "using {}",
			                 env, SIGRTMIN, SIGRTMAX, sig));
		} else {
			sig = int(v);
		}
	}
	if (sig == 0 || !views_available)
		return;
	struct sigaction sa {
	};
	sa.sa_sigaction = kick_handler;
	sa.sa_flags = SA_SIGINFO; // no SA_RESTART: the wrapped call must return
	sigfillset(&sa.sa_mask);
	sigset_t k;
	sigemptyset(&k);
	sigaddset(&k, sig);
	if (real.pthread_sigmask(SIG_BLOCK, &k, nullptr) != 0 ||
	    real.sigaction(sig, &sa, nullptr) != 0) {
		note(fmt::format("cannot install the kick signal {}: {}; wait-free transitions "
		                 "wait for blocked threads to return by themselves",
		                 sig, strerror(errno)));
		return;
	}
	kick_signal = sig;
}

// Creates the runtime, registers the calling thread and starts the control socket.
void start_runtime() noexcept
{
	RuntimeOptions options;
	if (const char *bound = std::getenv("ATLAS_PARK_BOUND_MS"); bound && *bound) {
		char *end = nullptr;
		const long ms = std::strtol(bound, &end, 10);
		if (*end == '\0' && ms > 0 && ms <= 60000)
			options.park_bound = std::chrono::milliseconds(ms);
		else
			note(
			    fmt::format("ATLAS_PARK_BOUND_MS={} is not a number of milliseconds in "
			                "[1, 60000]; keeping {} ms",
			                bound, options.park_bound.count()));
	}
	if (const char *log = std::getenv("ATLAS_EVENT_LOG"); log && *log) {
		options.events.fd = ::open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
		if (options.events.fd < 0)
			note(fmt::format("cannot open event log {}: {}; continuing without it", log,
			                 strerror(errno)));
	}
	blocked_stacks = new (std::nothrow) preload::BlockedStacks;
	if (!blocked_stacks)
		return;
	// Views: the kernel's, or (test hook, off by default) the simulation.
	std::unique_ptr<ViewOps> views;
	if (const char *sim = std::getenv("ATLAS_PRELOAD_TEST_SIMULATED_VIEWS");
	    sim && *sim == '1') {
		simulated_views = new (std::nothrow) preload::SimulatedViews;
		if (simulated_views) {
			// The runtime gets a forwarding handle; the simulation itself stays (the
			// pthread_create wrapper places new threads in their creator's view).
			struct Forward final : ViewOps {
				preload::SimulatedViews *v;
				explicit Forward(preload::SimulatedViews *views_) : v(views_) {}
				ViewResult create() override
				{
					return v->create();
				}
				ViewResult remove(ViewId id) override
				{
					return v->remove(id);
				}
				ViewResult migrate(ViewId id) override
				{
					return v->migrate(id);
				}
				ViewResult current() override
				{
					return v->current();
				}
				ViewResult switch_base() override
				{
					return v->switch_base();
				}
			};
			views.reset(new (std::nothrow) Forward(simulated_views));
			note(
			    "ATLAS_PRELOAD_TEST_SIMULATED_VIEWS=1: wait-free mode runs on "
			    "simulated "
			    "views (a test hook: nothing is unshared, patches are visible to every "
			    "thread at once)");
		}
	} else {
		views = kernel_view_ops();
	}
	// Kicks only matter in wait-free mode, i.e. with views.
	setup_kicks(views && views->current().ok());
	if (kick_signal != 0)
		options.kick = [](pid_t tid) {
			// At most one kick queued per thread: one that is pending (the thread
			// left its wrapped call meanwhile) is delivered in its next one.
			if (!blocked_stacks->mark_kick(tid))
				return;
			if (syscall(SYS_tgkill, kick_pid, tid, kick_signal) != 0)
				blocked_stacks->unmark_kick(tid);
		};
	options.views = std::move(views);
	options.may_complete = [](const CodeChange &change) {
		return preload::check_current(ranges_of(change));
	};
	options.blocked_may_count = [](pid_t tid, const CodeChange &change) {
		return blocked_stacks->check(tid, ranges_of(change));
	};
	runtime = Runtime::create(std::move(options)).release();
	if (!runtime) {
		note("creating the runtime failed (out of memory); the program runs unpatched");
		return;
	}
	// The main thread (or whichever thread loaded us, or forked) is an application thread.
	register_thread();
	active.store(true, std::memory_order_release);

	control::ServerOptions server_options;
	if (const char *path = std::getenv("ATLAS_CONTROL_SOCKET"); path && *path)
		server_options.path = path;
	server_options.loader = [](const std::string &path) { return load(path); };
	std::string error;
	tl_creating_internal = true;
	server = control::Server::start(*runtime, std::move(server_options), error).release();
	tl_creating_internal = false;
	server_pid = getpid();
	if (!server)
		note(fmt::format("control socket not started: {}; the program runs, but cannot be "
		                 "patched from outside",
		                 error));
}

// In the child of fork(): only the forking thread exists. The parent's runtime, server and
// stack registry are left alone (leaked: their locks may have been copied while held) and the
// child starts its own, with a socket named by its pid. ATLAS_CONTROL_SOCKET names the parent's
// socket only: the child then uses the default location.
void after_fork_in_child()
{
	if (!active.load(std::memory_order_acquire))
		return;
	active.store(false, std::memory_order_release);
	atlas::detail::forget_runtime_after_fork();
	tl_context.stack = nullptr;
	tl_context.inside = false;
	tl_context.blocked = false;
	runtime = nullptr;
	server = nullptr;
	blocked_stacks = nullptr;
	simulated_views = nullptr; // leaked with the parent's runtime
	// The patches stay mapped (the child inherited them) but belong to the leaked runtime.
	unsetenv("ATLAS_CONTROL_SOCKET");
	start_runtime();
}

__attribute__((constructor)) void preload_init()
{
	ensure_real();
	if (!real_ok)
		return;
	if (const char *off = std::getenv("ATLAS_PRELOAD_DISABLE"); off && *off == '1')
		return;

	std::string unwind_error;
	if (!preload::init_unwinder(&unwind_error))
		note(unwind_error);
	start_runtime();
	// A daemonizing server forks: the child gets a runtime and a socket of its own.
	pthread_atfork(nullptr, nullptr, after_fork_in_child);
}

__attribute__((destructor)) void preload_fini()
{
	// Threads may still run: only remove the socket so that `atlas ps` forgets us (and only
	// our own: a forked child that failed to start its server must not remove the parent's).
	if (server && server_pid == getpid())
		server->unlink_socket();
}

// Signal handlers. A handler that interrupts a thread blocked in a wrapped call runs
// application code: while it runs, the thread must not count as quiescent. Every handler the
// application installs through sigaction()/signal() is therefore entered through
// handler_trampoline(), which leaves the "blocked" state first (completing a handshake if one
// is due: parking while a global transition writes) and re-enters it after the handler. A
// wrapped call made inside the handler is never a point: it is nested in the interrupted
// wrapper (ctx.inside), or the stack check sees the signal frame.
struct AppHandler {
	std::atomic<void *> fn{nullptr};
	std::atomic<int> flags{0};
};
AppHandler app_handlers[_NSIG];

void handler_trampoline(int sig, siginfo_t *info, void *ucontext)
{
	int saved = errno;
	ThreadContext &ctx = tl_context;
	const bool was_blocked = ctx.blocked;
	if (was_blocked) {
		// The handler may leave by longjmp: the blocked frame's record ends here.
		ctx.stack->leave();
		ctx.blocked = false;
		atlas::blocking_exit();
	}
	tl_handler_depth = tl_handler_depth + 1;
	void *fn = app_handlers[sig].fn.load(std::memory_order_acquire);
	const int flags = app_handlers[sig].flags.load(std::memory_order_relaxed);
	// Tells an interrupted wrapper that this EINTR would be the application's own.
	tl_app_handlers = tl_app_handlers + 1;
	if (!(flags & SA_RESTART))
		tl_app_nonrestart = tl_app_nonrestart + 1;
	errno = saved;
	if (flags & SA_SIGINFO)
		reinterpret_cast<void (*)(int, siginfo_t *, void *)>(fn)(sig, info, ucontext);
	else if (fn)
		reinterpret_cast<void (*)(int)>(fn)(sig);
	saved = errno;
	tl_handler_depth = tl_handler_depth - 1;
	if (was_blocked) {
		// Back into the interrupted call: its frame, recorded on entry, is intact.
		ctx.stack->reenter();
		atlas::blocking_enter();
		ctx.blocked = true;
	}
	errno = saved;
}

bool is_function(const struct sigaction *act)
{
	void *fn = (act->sa_flags & SA_SIGINFO) ? reinterpret_cast<void *>(act->sa_sigaction)
	                                        : reinterpret_cast<void *>(act->sa_handler);
	return fn != reinterpret_cast<void *>(SIG_DFL) && fn != reinterpret_cast<void *>(SIG_IGN);
}

// The application's view of the kick signal in a mask it reads back; the real mask always has
// it blocked outside wrapped calls.
void app_view(sigset_t *mask, bool blocks_kick) noexcept
{
	if (!mask || kick_signal == 0)
		return;
	if (blocks_kick)
		sigaddset(mask, kick_signal);
	else
		sigdelset(mask, kick_signal);
}

template <typename Real>
int masked(Real fn, int how, const sigset_t *set, sigset_t *old)
{
	if (kick_signal == 0 || !active.load(std::memory_order_acquire))
		return fn(how, set, old);
	sigset_t adjusted;
	const sigset_t *pass = set;
	if (set && (how == SIG_UNBLOCK || how == SIG_SETMASK)) {
		adjusted = *set;
		if (how == SIG_UNBLOCK)
			sigdelset(&adjusted, kick_signal); // stays blocked
		else
			sigaddset(&adjusted, kick_signal);
		pass = &adjusted;
	}
	const bool before = tl_app_blocks_kick;
	int r = fn(how, pass, old);
	if (r != 0)
		return r;
	app_view(old, before);
	if (set && sigismember(set, kick_signal)) {
		if (how == SIG_BLOCK)
			tl_app_blocks_kick = true;
		else if (how == SIG_UNBLOCK)
			tl_app_blocks_kick = false;
	}
	if (set && how == SIG_SETMASK)
		tl_app_blocks_kick = sigismember(set, kick_signal);
	return r;
}

} // namespace

extern "C" {

int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
	ensure_real();
	if (!real.sigaction) {
		errno = ENOSYS;
		return -1;
	}
	if (sig <= 0 || sig >= _NSIG || !active.load(std::memory_order_acquire))
		return real.sigaction(sig, act, old);
	if (kick_signal != 0 && sig == kick_signal) {
		// Owned by atlas (as glibc owns its internal signals): the application sees it
		// unused and cannot take it.
		if (act) {
			errno = EINVAL;
			return -1;
		}
		if (old) {
			*old = {};
			old->sa_handler = SIG_DFL;
		}
		return 0;
	}
	void *prev_fn = app_handlers[sig].fn.load(std::memory_order_acquire);
	int prev_flags = app_handlers[sig].flags.load(std::memory_order_relaxed);
	struct sigaction installed;
	int r;
	if (act && is_function(act)) {
		installed = *act;
		installed.sa_flags |= SA_SIGINFO;
		installed.sa_sigaction = handler_trampoline;
		// The handler is application code: no kick may interrupt its calls.
		if (kick_signal != 0)
			sigaddset(&installed.sa_mask, kick_signal);
		app_handlers[sig].flags.store(act->sa_flags, std::memory_order_relaxed);
		app_handlers[sig].fn.store((act->sa_flags & SA_SIGINFO)
		                               ? reinterpret_cast<void *>(act->sa_sigaction)
		                               : reinterpret_cast<void *>(act->sa_handler),
		                           std::memory_order_release);
		r = real.sigaction(sig, &installed, old);
		if (r != 0) {
			app_handlers[sig].fn.store(prev_fn, std::memory_order_release);
			app_handlers[sig].flags.store(prev_flags, std::memory_order_relaxed);
		}
	} else {
		r = real.sigaction(sig, act, old);
	}
	// The application sees its own handler, never the trampoline.
	if (r == 0 && old && (old->sa_flags & SA_SIGINFO) &&
	    old->sa_sigaction == handler_trampoline) {
		if (kick_signal != 0)
			sigdelset(&old->sa_mask, kick_signal);
		old->sa_flags = prev_flags;
		if (prev_flags & SA_SIGINFO)
			old->sa_sigaction =
			    reinterpret_cast<void (*)(int, siginfo_t *, void *)>(prev_fn);
		else
			old->sa_handler = reinterpret_cast<void (*)(int)>(prev_fn);
	}
	return r;
}

// glibc's signal() calls its internal sigaction directly: interpose it too (BSD semantics,
// as glibc: SA_RESTART, the signal blocked in its handler).
sighandler_t signal(int sig, sighandler_t handler)
{
	struct sigaction act {
	}, old{};
	act.sa_handler = handler;
	sigemptyset(&act.sa_mask);
	if (sig > 0 && sig < _NSIG)
		sigaddset(&act.sa_mask, sig);
	act.sa_flags = SA_RESTART;
	if (sigaction(sig, &act, &old) != 0)
		return SIG_ERR;
	return old.sa_handler;
}

int atlas_preload_set_test_loader(void *loader)
{
	test_loader.store(static_cast<control::Loader *>(loader), std::memory_order_release);
	return active.load() ? 0 : -1;
}

const char *atlas_preload_socket_path(void)
{
	return server ? server->path().c_str() : nullptr;
}

int pthread_create(pthread_t *thread, const pthread_attr_t *attr, void *(*start)(void *), void *arg)
{
	ensure_real();
	if (!real.pthread_create)
		return EAGAIN;
	if (!active.load(std::memory_order_acquire) || tl_creating_internal)
		return real.pthread_create(thread, attr, start, arg);
	ViewId view = 0;
	if (simulated_views)
		view = simulated_views->current().value;
	auto *args = new (std::nothrow) StartArgs{start, arg, tl_app_blocks_kick, view};
	if (!args)
		return EAGAIN;
	int r = real.pthread_create(thread, attr, start_trampoline, args);
	if (r != 0)
		delete args;
	return r;
}

int pthread_sigmask(int how, const sigset_t *set, sigset_t *old)
{
	ensure_real();
	if (!real.pthread_sigmask)
		return ENOSYS;
	return masked(real.pthread_sigmask, how, set, old);
}

int sigprocmask(int how, const sigset_t *set, sigset_t *old)
{
	ensure_real();
	if (!real.sigprocmask) {
		errno = ENOSYS;
		return -1;
	}
	return masked(real.sigprocmask, how, set, old);
}

int sigsuspend(const sigset_t *mask)
{
	ensure_real();
	if (!real.sigsuspend) {
		errno = ENOSYS;
		return -1;
	}
	if (kick_signal == 0)
		return real.sigsuspend(mask);
	// A kick left pending by a wrapper must not end the application's sigsuspend.
	sigset_t m = *mask;
	sigaddset(&m, kick_signal);
	return real.sigsuspend(&m);
}

// A signalfd reads pending signals of its mask: with the kick signal in it (a program that
// takes "all signals" through one) it would steal kicks and hand the application a signal it
// never asked for. The kick signal is left out, as sigwait* leave it out of their sets.
int signalfd(int fd, const sigset_t *mask, int flags)
{
	ensure_real();
	if (!real.signalfd) {
		errno = ENOSYS;
		return -1;
	}
	sigset_t buf;
	return real.signalfd(fd, without_kick(mask, buf), flags);
}

// A kick left pending (blocked outside a wrapped call) is the runtime's, not the
// application's: not reported.
int sigpending(sigset_t *set)
{
	ensure_real();
	if (!real.sigpending) {
		errno = ENOSYS;
		return -1;
	}
	const int r = real.sigpending(set);
	if (r == 0 && kick_signal != 0)
		sigdelset(set, kick_signal);
	return r;
}

int epoll_wait(int epfd, epoll_event *events, int maxevents, int timeout)
{
	const Deadline d = Deadline::in_ms(timeout);
	bool first = true;
	return bracketed(Kick::mask, false, [&](bool kicks) {
		const int t = first ? timeout : d.left_ms();
		first = false;
		if (!kicks)
			return real.epoll_wait(epfd, events, maxevents, t);
		sigset_t m = mask_without_kick(nullptr);
		return real.epoll_pwait(epfd, events, maxevents, t, &m);
	});
}

int epoll_pwait(int epfd, epoll_event *events, int maxevents, int timeout, const sigset_t *mask)
{
	const Deadline d = Deadline::in_ms(timeout);
	bool first = true;
	return bracketed(Kick::mask, false, [&](bool kicks) {
		const int t = first ? timeout : d.left_ms();
		first = false;
		sigset_t m;
		return real.epoll_pwait(epfd, events, maxevents, t, call_mask(kicks, mask, m));
	});
}

// Not in the design's list but like epoll_pwait with a timespec: a point, kickable through its
// mask, restarted with the time left; outside a kick window the kick signal stays blocked in
// the mask, so a kick left pending never interrupts it.
int epoll_pwait2(int epfd, epoll_event *events, int maxevents, const timespec *timeout,
                 const sigset_t *mask)
{
	ensure_real();
	if (!real.epoll_pwait2) {
		errno = ENOSYS;
		return -1;
	}
	const Deadline d = Deadline::in(timeout);
	bool first = true;
	return bracketed(Kick::mask, false, [&](bool kicks) {
		timespec buf;
		const timespec *t = first ? timeout : d.left(buf);
		first = false;
		sigset_t m;
		return real.epoll_pwait2(epfd, events, maxevents, t, call_mask(kicks, mask, m));
	});
}

int poll(pollfd *fds, nfds_t nfds, int timeout)
{
	const Deadline d = Deadline::in_ms(timeout);
	bool first = true;
	return bracketed(Kick::mask, false, [&](bool kicks) {
		if (!kicks && first) {
			first = false;
			return real.poll(fds, nfds, timeout);
		}
		first = false;
		timespec buf;
		sigset_t m = mask_without_kick(nullptr);
		return real.ppoll(fds, nfds, d.left(buf), kicks ? &m : nullptr);
	});
}

int ppoll(pollfd *fds, nfds_t nfds, const timespec *timeout, const sigset_t *mask)
{
	const Deadline d = Deadline::in(timeout);
	bool first = true;
	return bracketed(Kick::mask, false, [&](bool kicks) {
		timespec buf;
		const timespec *t = first ? timeout : d.left(buf);
		first = false;
		sigset_t m;
		return real.ppoll(fds, nfds, t, call_mask(kicks, mask, m));
	});
}

int select(int nfds, fd_set *r, fd_set *w, fd_set *e, timeval *timeout)
{
	if (kick_signal == 0)
		return bracketed(Kick::none, false,
		                 [&](bool) { return real.select(nfds, r, w, e, timeout); });
	// Through pselect, with the kick signal unblocked; Linux's select reports the time left
	// in *timeout, which pselect does not: computed here.
	Deadline d;
	if (timeout) {
		timespec ts{timeout->tv_sec, timeout->tv_usec * 1000};
		d = Deadline::in(&ts);
	}
	// The sets are in/out: every attempt starts from the caller's.
	fd_set in_r, in_w, in_e;
	if (r)
		in_r = *r;
	if (w)
		in_w = *w;
	if (e)
		in_e = *e;
	int result = bracketed(Kick::mask, false, [&](bool kicks) {
		if (r)
			*r = in_r;
		if (w)
			*w = in_w;
		if (e)
			*e = in_e;
		timespec buf;
		sigset_t m = mask_without_kick(nullptr);
		return real.pselect(nfds, r, w, e, d.left(buf), kicks ? &m : nullptr);
	});
	if (timeout) {
		const int saved = errno;
		const std::int64_t left = d.left_ns();
		timeout->tv_sec = time_t(left / 1000000000);
		timeout->tv_usec = suseconds_t(left % 1000000000 / 1000);
		errno = saved;
	}
	return result;
}

int pselect(int nfds, fd_set *r, fd_set *w, fd_set *e, const timespec *timeout,
            const sigset_t *mask)
{
	const Deadline d = Deadline::in(timeout);
	fd_set in_r, in_w, in_e;
	if (r)
		in_r = *r;
	if (w)
		in_w = *w;
	if (e)
		in_e = *e;
	bool first = true;
	return bracketed(Kick::mask, false, [&](bool kicks) {
		if (!first) {
			if (r)
				*r = in_r;
			if (w)
				*w = in_w;
			if (e)
				*e = in_e;
		}
		timespec buf;
		const timespec *t = first ? timeout : d.left(buf);
		first = false;
		sigset_t m;
		return real.pselect(nfds, r, w, e, t, call_mask(kicks, mask, m));
	});
}

int accept(int fd, sockaddr *addr, socklen_t *len)
{
	const socklen_t len_in = len ? *len : 0;
	return bracketed(Kick::unblock, true, [&](bool) {
		if (len)
			*len = len_in;
		return real.accept(fd, addr, len);
	});
}

int accept4(int fd, sockaddr *addr, socklen_t *len, int flags)
{
	const socklen_t len_in = len ? *len : 0;
	return bracketed(Kick::unblock, true, [&](bool) {
		if (len)
			*len = len_in;
		return real.accept4(fd, addr, len, flags);
	});
}

ssize_t read(int fd, void *buf, size_t count)
{
	ensure_real();
	if (!real.read) // cannot happen with a working libc; a raw read is always correct
		return static_cast<ssize_t>(syscall(SYS_read, fd, buf, count));
	// Any descriptor: pipes, FIFOs, ttys, eventfd, signalfd, timerfd, inotify and character
	// devices block as sockets do. A read of a regular file returns soon; it is a point too.
	return bracketed(Kick::unblock, true, [&](bool) { return real.read(fd, buf, count); });
}
ssize_t readv(int fd, const iovec *iov, int iovcnt)
{
	return bracketed(Kick::unblock, true, [&](bool) { return real.readv(fd, iov, iovcnt); });
}
ssize_t pread(int fd, void *buf, size_t count, off_t offset)
{
	return bracketed(Kick::unblock, true,
	                 [&](bool) { return real.pread(fd, buf, count, offset); });
}
ssize_t pread64(int fd, void *buf, size_t count, off_t offset)
{
	return pread(fd, buf, count, offset);
}
// A write interrupted after some bytes returns their count, not EINTR: never restarted.
ssize_t write(int fd, const void *buf, size_t count)
{
	ensure_real();
	if (!real.write)
		return static_cast<ssize_t>(syscall(SYS_write, fd, buf, count));
	return bracketed(Kick::unblock, true, [&](bool) { return real.write(fd, buf, count); });
}
ssize_t writev(int fd, const iovec *iov, int iovcnt)
{
	return bracketed(Kick::unblock, true, [&](bool) { return real.writev(fd, iov, iovcnt); });
}
ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset)
{
	return bracketed(Kick::unblock, true,
	                 [&](bool) { return real.pwrite(fd, buf, count, offset); });
}
ssize_t pwrite64(int fd, const void *buf, size_t count, off_t offset)
{
	return pwrite(fd, buf, count, offset);
}
// Not interruptible by a kick: a connect() interrupted goes on in the background, and calling
// it again fails EALREADY, which the application would see.
int connect(int fd, const sockaddr *addr, socklen_t len)
{
	return bracketed(
	    Kick::none, true, [&](bool) { return real.connect(fd, addr, len); },
	    [](int) { return false; });
}

ssize_t recv(int fd, void *buf, size_t len, int flags)
{
	return bracketed(Kick::unblock, true, [&](bool) { return real.recv(fd, buf, len, flags); });
}

ssize_t recvfrom(int fd, void *buf, size_t len, int flags, sockaddr *addr, socklen_t *alen)
{
	const socklen_t alen_in = alen ? *alen : 0;
	return bracketed(Kick::unblock, true, [&](bool) {
		if (alen)
			*alen = alen_in;
		return real.recvfrom(fd, buf, len, flags, addr, alen);
	});
}

ssize_t recvmsg(int fd, msghdr *msg, int flags)
{
	const socklen_t control_in = msg ? msg->msg_controllen : 0;
	const int flags_in = msg ? msg->msg_flags : 0;
	return bracketed(Kick::unblock, true, [&](bool) {
		if (msg) {
			msg->msg_controllen = control_in;
			msg->msg_flags = flags_in;
		}
		return real.recvmsg(fd, msg, flags);
	});
}

int nanosleep(const timespec *req, timespec *rem)
{
	// A restart sleeps for what the interrupted attempt left.
	timespec left{};
	bool first = true;
	int r = bracketed(Kick::unblock, false, [&](bool) {
		const timespec *t = first ? req : &left;
		first = false;
		return real.nanosleep(t, &left);
	});
	if (r < 0 && errno == EINTR && rem)
		*rem = left;
	return r;
}

// glibc's sleep() and usleep() call its nanosleep internally, past this library: each is
// made here of the wrapped nanosleep above, with glibc's results.
unsigned int sleep(unsigned int seconds)
{
	timespec req{static_cast<time_t>(seconds), 0}, rem{};
	if (nanosleep(&req, &rem) == 0)
		return 0;
	return errno == EINTR ? static_cast<unsigned int>(rem.tv_sec) + (rem.tv_nsec > 0 ? 1 : 0)
	                      : seconds;
}
int usleep(useconds_t usec)
{
	timespec req{static_cast<time_t>(usec / 1000000), static_cast<long>(usec % 1000000) * 1000};
	return nanosleep(&req, nullptr);
}
int pause()
{
	return bracketed(Kick::unblock, false, [&](bool) { return real.pause(); });
}
int clock_nanosleep(clockid_t clock, int flags, const timespec *req, timespec *rem)
{
	timespec left{};
	bool first = true;
	int r = bracketed(
	    Kick::unblock, false,
	    [&](bool) {
		    // Absolute: the same deadline again; relative: what is left.
		    const timespec *t = first || (flags & TIMER_ABSTIME) ? req : &left;
		    first = false;
		    return real.clock_nanosleep(clock, flags, t, &left);
	    },
	    [](int result) { return result == EINTR; });
	if (r == EINTR && rem && !(flags & TIMER_ABSTIME))
		*rem = left;
	return r;
}

// Not interruptible by a signal (glibc waits again after a handler): no kicks; the thread
// migrates when the wait ends (use a timed wait to bound that).
int pthread_cond_wait(pthread_cond_t *cond, pthread_mutex_t *mutex)
{
	return bracketed(
	    Kick::none, true, [&](bool) { return real.pthread_cond_wait(cond, mutex); },
	    [](int) { return false; });
}

int pthread_cond_timedwait(pthread_cond_t *cond, pthread_mutex_t *mutex, const timespec *abstime)
{
	return bracketed(
	    Kick::none, true,
	    [&](bool) { return real.pthread_cond_timedwait(cond, mutex, abstime); },
	    [](int) { return false; });
}

int sem_wait(sem_t *sem)
{
	// sem_wait fails with EINTR after any handler, SA_RESTART or not.
	return bracketed(Kick::unblock, false, [&](bool) { return real.sem_wait(sem); });
}
int sem_timedwait(sem_t *sem, const timespec *abstime)
{
	// An absolute deadline: a restart waits for the same one.
	return bracketed(Kick::unblock, false,
	                 [&](bool) { return real.sem_timedwait(sem, abstime); });
}

int pthread_mutex_lock(pthread_mutex_t *m)
{
	return contended([&] { return real.pthread_mutex_trylock(m); },
	                 [&] { return real.pthread_mutex_lock(m); });
}
int pthread_mutex_timedlock(pthread_mutex_t *m, const timespec *abstime)
{
	return contended([&] { return real.pthread_mutex_trylock(m); },
	                 [&] { return real.pthread_mutex_timedlock(m, abstime); });
}
int pthread_rwlock_rdlock(pthread_rwlock_t *l)
{
	return contended([&] { return real.pthread_rwlock_tryrdlock(l); },
	                 [&] { return real.pthread_rwlock_rdlock(l); });
}
int pthread_rwlock_wrlock(pthread_rwlock_t *l)
{
	return contended([&] { return real.pthread_rwlock_trywrlock(l); },
	                 [&] { return real.pthread_rwlock_wrlock(l); });
}
int pthread_barrier_wait(pthread_barrier_t *b)
{
	return bracketed(
	    Kick::none, true, [&](bool) { return real.pthread_barrier_wait(b); },
	    [](int) { return false; });
}
int pthread_join(pthread_t thread, void **ret)
{
	return bracketed(
	    Kick::none, true, [&](bool) { return real.pthread_join(thread, ret); },
	    [](int) { return false; });
}
pid_t waitpid(pid_t pid, int *status, int options)
{
	return bracketed(Kick::unblock, true,
	                 [&](bool) { return real.waitpid(pid, status, options); });
}
pid_t wait(int *status)
{
	return waitpid(-1, status, 0);
}
int waitid(idtype_t idtype, id_t id, siginfo_t *info, int options)
{
	return bracketed(Kick::unblock, true,
	                 [&](bool) { return real.waitid(idtype, id, info, options); });
}
int flock(int fd, int operation)
{
	return bracketed(Kick::unblock, true, [&](bool) { return real.flock(fd, operation); });
}

int sigwait(const sigset_t *set, int *sig)
{
	ensure_real();
	sigset_t buf;
	const sigset_t *s = without_kick(set, buf);
	// As glibc's sigwait: sigtimedwait until a signal comes (it never fails with EINTR).
	int r;
	siginfo_t info;
	do
		r = bracketed(Kick::unblock, false,
		              [&](bool) { return real.sigtimedwait(s, &info, nullptr); });
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return errno;
	*sig = r;
	return 0;
}

int sigwaitinfo(const sigset_t *set, siginfo_t *info)
{
	ensure_real();
	sigset_t buf;
	const sigset_t *s = without_kick(set, buf);
	return bracketed(Kick::unblock, false, [&](bool) { return real.sigwaitinfo(s, info); });
}

int sigtimedwait(const sigset_t *set, siginfo_t *info, const timespec *timeout)
{
	ensure_real();
	sigset_t buf;
	const sigset_t *s = without_kick(set, buf);
	const Deadline d = Deadline::in(timeout);
	bool first = true;
	return bracketed(Kick::unblock, false, [&](bool) {
		timespec left;
		const timespec *t = first ? timeout : d.left(left);
		first = false;
		return real.sigtimedwait(s, info, t);
	});
}

} // extern "C"
