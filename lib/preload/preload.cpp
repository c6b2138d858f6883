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
// A blocked thread is never woken for a transition: the patcher checks its recorded stack and
// counts it as quiescent, in global mode (it parks if it returns while the change is written)
// and in wait-free mode (it migrates in blocking_exit(); the transition need not wait for it).
// So the real call is made exactly as the application asked, with its own arguments and signal
// mask; only signal handlers are interposed (handler_trampoline), because a handler runs
// application code in the middle of a blocked call.
#include "preload.h"
#include "atlas/error_util.hpp"
#include "atlas/simulated_views.hpp"
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
#include <linux/futex.h>
#include <mutex>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/msg.h>
#include <sys/select.h>
#include <sys/sem.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atlas/patch/loader.hpp>

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
	int (*sigsuspend)(const sigset_t *);
	int (*fcntl)(int, int, ...);
	int (*fcntl64)(int, int, ...);
	ssize_t (*msgrcv)(int, void *, size_t, long, int);
	int (*msgsnd)(int, const void *, size_t, int);
	int (*semop)(int, sembuf *, size_t);
	int (*semtimedop)(int, sembuf *, size_t, const timespec *);
	long (*syscall)(long, ...);
};

Real real;
bool real_ok = false;

Runtime *runtime = nullptr; // leaked on purpose: threads may run until the very end
control::Server *server = nullptr;
pid_t server_pid = 0;  // the process that started `server`
int event_log_fd = -1; // ATLAS_EVENT_LOG, opened by the first runtime of the program
preload::BlockedStacks *blocked_stacks = nullptr;
std::atomic<bool> active{false};
std::atomic<control::Loader *> test_loader{nullptr};
SimulatedViews *simulated_views = nullptr; // ATLAS_PRELOAD_TEST_SIMULATED_VIEWS=1

// Per thread, async-signal-safe (initial-exec TLS of a preloaded object needs no allocation).
#define ATLAS_TLS_IE __attribute__((tls_model("initial-exec")))

// Per thread: set for threads the preload registered; creating_internal while the runtime
// starts its own threads (they are exempt, not registered).
struct ThreadContext {
	preload::BlockedStack *stack = nullptr;
	pid_t tid = 0;
	bool inside = false;  // in a wrapper: nested wrapped calls are not points
	bool blocked = false; // between blocking_enter() and blocking_exit() of a wrapper
	~ThreadContext()
	{
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
	Expected<std::string> line = atlas::detail::guard([&]() -> Expected<std::string> {
		return fmt::format("atlas-preload[{}]: {}\n", getpid(), message);
	});
	const std::string_view text =
	    line ? std::string_view(*line) : std::string_view("atlas-preload: out of memory\n");
	(void)!::write(STDERR_FILENO, text.data(), text.size());
}

// The preload's exception wall: its entry points (the constructor, the child after fork(), a
// new thread's start) run their setup in it. The program is not ours to stop: what fails, a
// throw included (out of memory), is noted and the program runs on, unpatched if need be.
template <typename F>
void walled(const char *what, F &&body) noexcept
{
	Expected<void> done = atlas::detail::guard([&]() -> Expected<void> {
		body();
		return {};
	});
	if (!done)
		note(fmt::format("{}: {}", what, done.error().message)); // note() is its own wall
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
	ok &= resolve(real.sigsuspend, "sigsuspend");
	ok &= resolve(real.fcntl, "fcntl");
	ok &= resolve(real.msgrcv, "msgrcv");
	ok &= resolve(real.msgsnd, "msgsnd");
	ok &= resolve(real.semop, "semop");
	ok &= resolve(real.semtimedop, "semtimedop");
	ok &= resolve(real.syscall, "syscall");
	// Optional: older glibc lacks them (the wrappers then fail ENOSYS, or use fcntl).
	real.epoll_pwait2 =
	    reinterpret_cast<decltype(real.epoll_pwait2)>(dlsym(RTLD_NEXT, "epoll_pwait2"));
	real.fcntl64 = reinterpret_cast<decltype(real.fcntl64)>(dlsym(RTLD_NEXT, "fcntl64"));
	return ok;
}

// Wrappers may run before our constructor (another library's constructor): resolve then.
void ensure_real() noexcept
{
	static std::once_flag once;
	if (!real_ok)
		std::call_once(once, [] { real_ok = resolve_all(); });
}

// Registers the calling thread with the runtime and records where its blocked stacks go. Runs
// in an entry point's wall (walled()).
void register_thread()
{
	if (!runtime || !blocked_stacks)
		return;
	ThreadContext &ctx = tl_context;
	ctx.tid = gettid();
	ctx.stack = blocked_stacks->add(ctx.tid);
	Expected<void> r = runtime->register_current_thread();
	if (!r) {
		note(fmt::format("thread {} not registered: {}", ctx.tid, r.error().message));
		blocked_stacks->remove(ctx.tid);
		ctx.stack = nullptr;
	}
}

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

// A blocking call made by a registered thread outside signal handlers: bracketed. `call()`
// makes the real call once, as the application asked.
template <typename Call>
auto bracketed(Call &&call)
{
	ensure_real();
	ThreadContext &ctx = tl_context;
	// Nested: the runtime's own waits (its condition variables, in the handshake; the
	// blocked record's futex) and libunwind's calls pass straight through, or the thread
	// would re-enter the runtime.
	if (!ctx.stack || ctx.inside || !active.load(std::memory_order_relaxed))
		return call();
	ctx.inside = true;
	if (in_signal_handler()) { // never a quiescence point: just the call
		ctx.inside = false;
		return call();
	}
	auto result = [&] {
		// Only the registers: the patcher unwinds from them if a transition needs this
		// thread while it is blocked (BlockedStack); the scope ends the record on every
		// way out, and its end may wait on a futex (still inside: not a point).
		ctx.stack->enter();
		preload::BlockedScope blocked_scope(ctx.stack);
		atlas::blocking_enter();
		ctx.blocked = true;
		auto r = call();
		const int saved = errno;
		ctx.blocked = false;
		// Completes the handshake (with the stack check), or follows the base a
		// wait-free transition switched while this thread slept, before the
		// application runs again.
		atlas::blocking_exit();
		errno = saved;
		return r;
	}();
	const int saved = errno;
	ctx.inside = false;
	errno = saved;
	return result;
}

// Locks: a point only when the lock is taken by another thread (the try fails), so that the
// uncontended path costs one try more than the plain call. A blocked waiter counts as
// quiescent and migrates when it gets the lock.
template <typename Try, typename Wait>
int contended(Try &&try_lock, Wait &&wait)
{
	ensure_real();
	const int r = try_lock();
	if (r != EBUSY)
		return r;
	return bracketed(wait);
}

struct StartArgs {
	void *(*start)(void *);
	void *arg;
	ViewId view; // the creator's simulated view
};

void *start_trampoline(void *p)
{
	StartArgs args = *static_cast<StartArgs *>(p);
	delete static_cast<StartArgs *>(p);
	if (simulated_views)
		simulated_views->place_caller(args.view);
	walled("registering a new thread", register_thread);
	return args.start(args.arg);
}

// The loader's lifecycle hook: the patch's frames are registered with the stack check's
// libunwind (_U_dyn_register), so that a thread blocked in a wrapped call below a patched
// function can be unwound through it; the registration is cancelled before the patch's text
// is unmapped (unreachable()).
std::function<void()> register_patch_frames(const atlas::patch::LoadedPatch &patch)
{
	const atlas::patch::LoadedPatch::UnwindTable t = patch.unwind_table();
	if (t.table_len == 0)
		return {};
	std::string error;
	void *frames = preload::register_frames(
	    {t.start_ip, t.end_ip, t.segbase, t.table_data, t.table_len}, &error);
	if (!frames) {
		note(fmt::format("{}: patch frames not registered with libunwind ({}): the stack "
		                 "check refuses threads blocked below its functions",
		                 patch.identity(), error));
		return {};
	}
	return [frames] { preload::cancel_frames(frames); };
}

// What the stack check looks for: the functions the change replaces and, for a loaded patch,
// its own text (reverting it must not leave a thread returning into it).
std::vector<AddressRange> ranges_of(const CodeChange &change)
{
	std::vector<AddressRange> ranges = change.replaced_functions();
	if (auto *patch = dynamic_cast<const atlas::patch::LoadedPatch *>(&change)) {
		AddressRange text = patch->text_range();
		if (text.end > text.start) {
			text.name = "code of patch " + patch->identity();
			ranges.push_back(std::move(text));
		}
	}
	return ranges;
}

control::Loaded load(const std::string &path)
{
	if (control::Loader *l = test_loader.load(std::memory_order_acquire))
		return (*l)(path);
	// Stacking: the new patch resolves symbols in the applied ones (newest first). Exactly the
	// instances the runtime applied, one per identity: never a duplicate that was loaded but
	// not applied (already applied, refused, failed), which the control server unmaps. Oldest
	// first, as LoadOptions wants.
	atlas::patch::LoadOptions options;
	options.on_mapped = register_patch_frames;
	for (const auto &c : runtime->applied_changes())
		if (auto lp = std::dynamic_pointer_cast<const atlas::patch::LoadedPatch>(c))
			options.earlier.push_back(std::move(lp));
	// No reference kept here: the control server releases the change if its apply does not
	// take it, the runtime keeps it while applied.
	return atlas::patch::load_patch(path, options);
}

// Creates the runtime, registers the calling thread and starts the control socket.
// ATLAS_PARK_BOUND_MS and ATLAS_EVENT_LOG into `options`; a bad value is noted and ignored.
void options_from_environment(RuntimeOptions &options)
{
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
		// Opened once per program: a daemon's child after fork() appends through the
		// descriptor it inherited, which also works after it dropped privileges (the
		// file, 0600, belongs to the user that started it).
		if (event_log_fd < 0)
			event_log_fd = ::open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
		options.events.fd = event_log_fd;
		if (event_log_fd < 0)
			note(fmt::format("cannot open event log {}: {}; continuing without it", log,
			                 strerror(errno)));
	}
}

// Views: the kernel's, or (test hook, off by default) the simulation.
std::unique_ptr<ViewOps> make_view_ops()
{
	std::unique_ptr<ViewOps> views;
	if (const char *sim = std::getenv("ATLAS_PRELOAD_TEST_SIMULATED_VIEWS");
	    sim && *sim == '1') {
		simulated_views = new (std::nothrow) SimulatedViews;
		if (simulated_views) {
			// The runtime gets a forwarding handle; the simulation itself stays (the
			// pthread_create wrapper places new threads in their creator's view).
			struct Forward final : ViewOps {
				SimulatedViews *v;
				explicit Forward(SimulatedViews *views_) : v(views_) {}
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
				ViewResult unshare(std::uintptr_t start, std::size_t len) override
				{
					return v->unshare(start, len);
				}
				ViewResult share(std::uintptr_t start, std::size_t len) override
				{
					return v->share(start, len);
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
	return views;
}

// The control socket (ATLAS_CONTROL_SOCKET, else the default path), loading through load().
void start_control_server()
{
	control::ServerOptions server_options;
	if (const char *path = std::getenv("ATLAS_CONTROL_SOCKET"); path && *path)
		server_options.path = path;
	server_options.loader = [](const std::string &path) { return load(path); };
	tl_creating_internal = true;
	auto started = control::Server::start(*runtime, std::move(server_options));
	tl_creating_internal = false;
	server_pid = getpid();
	if (started)
		server = std::move(started).value().release();
	else
		note(fmt::format("control socket not started: {}; the program runs, but cannot be "
		                 "patched from outside",
		                 started.error().message));
}

// Runs in an entry point's wall (walled()).
void start_runtime()
{
	RuntimeOptions options;
	options_from_environment(options);
	blocked_stacks = new (std::nothrow) preload::BlockedStacks;
	if (!blocked_stacks)
		return;
	options.views = make_view_ops();
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

	start_control_server();
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
	walled("starting the runtime in the child of fork()", start_runtime);
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
	walled("starting the runtime", start_runtime);
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
	void *prev_fn = app_handlers[sig].fn.load(std::memory_order_acquire);
	int prev_flags = app_handlers[sig].flags.load(std::memory_order_relaxed);
	struct sigaction installed;
	int r;
	if (act && is_function(act)) {
		installed = *act;
		installed.sa_flags |= SA_SIGINFO;
		installed.sa_sigaction = handler_trampoline;
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
	auto *args = new (std::nothrow) StartArgs{start, arg, view};
	if (!args)
		return EAGAIN;
	int r = real.pthread_create(thread, attr, start_trampoline, args);
	if (r != 0)
		delete args;
	return r;
}

// The calls in which a thread waits: each one bracketed, made exactly as the application asked.
// Grouped as docs/live-patching.md lists them ("What is a quiescence point").

// Waiting for descriptors.
int epoll_wait(int epfd, epoll_event *events, int maxevents, int timeout)
{
	return bracketed([&] { return real.epoll_wait(epfd, events, maxevents, timeout); });
}
int epoll_pwait(int epfd, epoll_event *events, int maxevents, int timeout, const sigset_t *mask)
{
	return bracketed([&] { return real.epoll_pwait(epfd, events, maxevents, timeout, mask); });
}
int epoll_pwait2(int epfd, epoll_event *events, int maxevents, const timespec *timeout,
                 const sigset_t *mask)
{
	ensure_real();
	if (!real.epoll_pwait2) {
		errno = ENOSYS;
		return -1;
	}
	return bracketed([&] { return real.epoll_pwait2(epfd, events, maxevents, timeout, mask); });
}
int poll(pollfd *fds, nfds_t nfds, int timeout)
{
	return bracketed([&] { return real.poll(fds, nfds, timeout); });
}
int ppoll(pollfd *fds, nfds_t nfds, const timespec *timeout, const sigset_t *mask)
{
	return bracketed([&] { return real.ppoll(fds, nfds, timeout, mask); });
}
int select(int nfds, fd_set *r, fd_set *w, fd_set *e, timeval *timeout)
{
	return bracketed([&] { return real.select(nfds, r, w, e, timeout); });
}
int pselect(int nfds, fd_set *r, fd_set *w, fd_set *e, const timespec *timeout,
            const sigset_t *mask)
{
	return bracketed([&] { return real.pselect(nfds, r, w, e, timeout, mask); });
}

// Sockets.
int accept(int fd, sockaddr *addr, socklen_t *len)
{
	return bracketed([&] { return real.accept(fd, addr, len); });
}
int accept4(int fd, sockaddr *addr, socklen_t *len, int flags)
{
	return bracketed([&] { return real.accept4(fd, addr, len, flags); });
}
int connect(int fd, const sockaddr *addr, socklen_t len)
{
	return bracketed([&] { return real.connect(fd, addr, len); });
}
ssize_t recv(int fd, void *buf, size_t len, int flags)
{
	return bracketed([&] { return real.recv(fd, buf, len, flags); });
}
ssize_t recvfrom(int fd, void *buf, size_t len, int flags, sockaddr *addr, socklen_t *alen)
{
	return bracketed([&] { return real.recvfrom(fd, buf, len, flags, addr, alen); });
}
ssize_t recvmsg(int fd, msghdr *msg, int flags)
{
	return bracketed([&] { return real.recvmsg(fd, msg, flags); });
}

// Reads and writes on any descriptor: pipes, FIFOs, ttys, eventfd, signalfd, timerfd, inotify
// and character devices block as sockets do; on a regular file the call returns soon and is a
// point all the same.
ssize_t read(int fd, void *buf, size_t count)
{
	ensure_real();
	if (!real.read) // cannot happen with a working libc; a raw read is always correct
		return static_cast<ssize_t>(::syscall(SYS_read, fd, buf, count));
	return bracketed([&] { return real.read(fd, buf, count); });
}
ssize_t readv(int fd, const iovec *iov, int iovcnt)
{
	return bracketed([&] { return real.readv(fd, iov, iovcnt); });
}
ssize_t pread(int fd, void *buf, size_t count, off_t offset)
{
	return bracketed([&] { return real.pread(fd, buf, count, offset); });
}
ssize_t pread64(int fd, void *buf, size_t count, off_t offset)
{
	return pread(fd, buf, count, offset);
}
ssize_t write(int fd, const void *buf, size_t count)
{
	ensure_real();
	if (!real.write)
		return static_cast<ssize_t>(::syscall(SYS_write, fd, buf, count));
	return bracketed([&] { return real.write(fd, buf, count); });
}
ssize_t writev(int fd, const iovec *iov, int iovcnt)
{
	return bracketed([&] { return real.writev(fd, iov, iovcnt); });
}
ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset)
{
	return bracketed([&] { return real.pwrite(fd, buf, count, offset); });
}
ssize_t pwrite64(int fd, const void *buf, size_t count, off_t offset)
{
	return pwrite(fd, buf, count, offset);
}

// Sleeping. glibc's sleep() and usleep() call its nanosleep internally, past this library:
// each is made here of the wrapped nanosleep, with glibc's results.
int nanosleep(const timespec *req, timespec *rem)
{
	return bracketed([&] { return real.nanosleep(req, rem); });
}
int clock_nanosleep(clockid_t clock, int flags, const timespec *req, timespec *rem)
{
	return bracketed([&] { return real.clock_nanosleep(clock, flags, req, rem); });
}
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

// Signals.
int pause()
{
	return bracketed([&] { return real.pause(); });
}
int sigsuspend(const sigset_t *mask)
{
	ensure_real();
	if (!real.sigsuspend) {
		errno = ENOSYS;
		return -1;
	}
	return bracketed([&] { return real.sigsuspend(mask); });
}
int sigwait(const sigset_t *set, int *sig)
{
	return bracketed([&] { return real.sigwait(set, sig); });
}
int sigwaitinfo(const sigset_t *set, siginfo_t *info)
{
	return bracketed([&] { return real.sigwaitinfo(set, info); });
}
int sigtimedwait(const sigset_t *set, siginfo_t *info, const timespec *timeout)
{
	return bracketed([&] { return real.sigtimedwait(set, info, timeout); });
}

// Threads: condition variables, semaphores, barriers, joins always; locks when contended.
int pthread_cond_wait(pthread_cond_t *cond, pthread_mutex_t *mutex)
{
	return bracketed([&] { return real.pthread_cond_wait(cond, mutex); });
}
int pthread_cond_timedwait(pthread_cond_t *cond, pthread_mutex_t *mutex, const timespec *abstime)
{
	return bracketed([&] { return real.pthread_cond_timedwait(cond, mutex, abstime); });
}
int sem_wait(sem_t *sem)
{
	return bracketed([&] { return real.sem_wait(sem); });
}
int sem_timedwait(sem_t *sem, const timespec *abstime)
{
	return bracketed([&] { return real.sem_timedwait(sem, abstime); });
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
	return bracketed([&] { return real.pthread_barrier_wait(b); });
}
int pthread_join(pthread_t thread, void **ret)
{
	return bracketed([&] { return real.pthread_join(thread, ret); });
}

// Futex waits through syscall(): what C++'s std::atomic<T>::wait, std::latch, std::barrier and
// std::counting_semaphore reach in libstdc++ (its header calls syscall(SYS_futex, ...)), and
// programs that wait on a futex of their own. Every other system call passes straight through.
long syscall(long number, ...)
{
	va_list ap;
	va_start(ap, number);
	long a[6];
	for (long &v : a)
		v = va_arg(ap, long);
	va_end(ap);
	ensure_real();
	if (!real.syscall) {
		errno = ENOSYS;
		return -1;
	}
	auto call = [&] { return real.syscall(number, a[0], a[1], a[2], a[3], a[4], a[5]); };
	if (number != SYS_futex)
		return call();
	switch (a[1] & FUTEX_CMD_MASK) {
	case FUTEX_WAIT:
	case FUTEX_WAIT_BITSET:
	case FUTEX_LOCK_PI:
	case FUTEX_LOCK_PI2:
	case FUTEX_WAIT_REQUEUE_PI:
		return bracketed(call);
	default:
		return call();
	}
}

// Processes.
pid_t waitpid(pid_t pid, int *status, int options)
{
	return bracketed([&] { return real.waitpid(pid, status, options); });
}
pid_t wait(int *status)
{
	return waitpid(-1, status, 0);
}
int waitid(idtype_t idtype, id_t id, siginfo_t *info, int options)
{
	return bracketed([&] { return real.waitid(idtype, id, info, options); });
}

// File locks: flock() always, fcntl() for the waiting lock commands only (every other command
// passes straight through, with its argument as given).
int flock(int fd, int operation)
{
	return bracketed([&] { return real.flock(fd, operation); });
}

} // extern "C"

namespace
{
bool waits_for_lock(int cmd) noexcept
{
	return cmd == F_SETLKW || cmd == F_OFD_SETLKW;
}

template <typename Fcntl>
int fcntl_with(Fcntl fn, int fd, int cmd, va_list ap)
{
	// Every fcntl argument is an int or a pointer: one word, passed on as given.
	void *arg = va_arg(ap, void *);
	if (!waits_for_lock(cmd))
		return fn(fd, cmd, arg);
	return bracketed([&] { return fn(fd, cmd, arg); });
}
} // namespace

extern "C" {

int fcntl(int fd, int cmd, ...)
{
	ensure_real();
	va_list ap;
	va_start(ap, cmd);
	const int r = real.fcntl ? fcntl_with(real.fcntl, fd, cmd, ap) : (errno = ENOSYS, -1);
	va_end(ap);
	return r;
}
// What programs built against glibc 2.28 and later call (the same function on 64-bit).
int fcntl64(int fd, int cmd, ...)
{
	ensure_real();
	va_list ap;
	va_start(ap, cmd);
	auto fn = real.fcntl64 ? real.fcntl64 : real.fcntl;
	const int r = fn ? fcntl_with(fn, fd, cmd, ap) : (errno = ENOSYS, -1);
	va_end(ap);
	return r;
}

// System V IPC.
ssize_t msgrcv(int id, void *msg, size_t size, long type, int flags)
{
	return bracketed([&] { return real.msgrcv(id, msg, size, type, flags); });
}
int msgsnd(int id, const void *msg, size_t size, int flags)
{
	return bracketed([&] { return real.msgsnd(id, msg, size, flags); });
}
int semop(int id, sembuf *ops, size_t n)
{
	return bracketed([&] { return real.semop(id, ops, n); });
}
int semtimedop(int id, sembuf *ops, size_t n, const timespec *timeout)
{
	return bracketed([&] { return real.semtimedop(id, ops, n, timeout); });
}

} // extern "C"
