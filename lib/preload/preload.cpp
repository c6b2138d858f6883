// libatlas-preload.so: the runtime for unmodified programs (docs/live-patching.md,
// "Unmodified programs (preload)").
//
// At load it creates the process's Runtime (with the stack check as its quiescence check) and
// the control socket server. It interposes pthread_create (threads register before the start
// routine and unregister at exit) and the calls where threads idle. Each wrapper records the
// thread's stack, announces "blocked", makes the real call and, in blocking_exit(), completes
// the handshake before the application runs again. Nothing here exits, aborts or throws.
#include "preload.h"
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
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
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
	int (*sigwait)(const sigset_t *, int *);
	int (*sigwaitinfo)(const sigset_t *, siginfo_t *);
	int (*sigtimedwait)(const sigset_t *, siginfo_t *, const timespec *);
	int (*sigaction)(int, const struct sigaction *, struct sigaction *);
};

Real real;
bool real_ok = false;

Runtime *runtime = nullptr; // leaked on purpose: threads may run until the very end
control::Server *server = nullptr;
pid_t server_pid = 0; // the process that started `server`
preload::BlockedStacks *blocked_stacks = nullptr;
std::atomic<bool> active{false};
std::atomic<control::Loader *> test_loader{nullptr};

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
	ok &= resolve(real.sigwait, "sigwait");
	ok &= resolve(real.sigwaitinfo, "sigwaitinfo");
	ok &= resolve(real.sigtimedwait, "sigtimedwait");
	ok &= resolve(real.sigaction, "sigaction");
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
	Result r = runtime->register_current_thread();
	if (!r) {
		note(fmt::format("thread {} not registered: {}", ctx.tid, r.message()));
		blocked_stacks->remove(ctx.tid);
		ctx.stack = nullptr;
	}
}

// A blocking call made by a registered thread outside signal handlers: bracketed.
template <typename Call>
auto bracketed(Call &&call)
{
	ensure_real();
	ThreadContext &ctx = tl_context;
	// Nested: the runtime's own waits (its condition variables, in the handshake) and
	// libunwind's calls pass straight through, or the thread would re-enter the runtime.
	if (!ctx.stack || ctx.inside || !active.load(std::memory_order_relaxed))
		return call();
	ctx.inside = true;
	preload::StackTrace trace;
	preload::capture_current(trace);
	if (trace.signal_frame) { // never a quiescence point: just the call
		ctx.inside = false;
		return call();
	}
	ctx.stack->publish(trace);
	atlas::blocking_enter();
	ctx.blocked = true;
	auto result = call();
	const int saved = errno;
	ctx.blocked = false;
	// Completes the handshake (with the stack check) before the application runs again.
	atlas::blocking_exit();
	ctx.inside = false;
	errno = saved;
	return result;
}

bool transition_pending() noexcept
{
	return atlas::detail::transitions_in_flight.load(std::memory_order_relaxed) != 0;
}

bool is_socket(int fd) noexcept
{
	struct stat st;
	return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

struct StartArgs {
	void *(*start)(void *);
	void *arg;
};

void *start_trampoline(void *p)
{
	StartArgs args = *static_cast<StartArgs *>(p);
	delete static_cast<StartArgs *>(p);
	register_thread();
	return args.start(args.arg);
}

#if ATLAS_HAVE_PATCH_LOADER
// Every patch this library loaded, for stacking: a new patch resolves symbols in the applied
// ones (last first).
std::mutex loaded_mu;
std::vector<std::shared_ptr<CodeChange>> loaded_patches;
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
	atlas::patch::LoadOptions options;
	{
		StatusSnapshot status = runtime->status();
		std::lock_guard lock(loaded_mu);
		// Forget patches that are no longer applied (the runtime keeps those it needs).
		std::erase_if(loaded_patches, [&](const auto &p) {
			const std::string id = p->identity();
			return std::none_of(
			    status.applied.begin(), status.applied.end(),
			    [&](const AppliedChange &a) { return a.identity == id; });
		});
		for (const AppliedChange &a : status.applied)
			for (const auto &p : loaded_patches)
				if (p->identity() == a.identity)
					if (auto lp = std::dynamic_pointer_cast<
					        const atlas::patch::LoadedPatch>(p))
						// Oldest first, as status.applied is: the
						// loader resolves from the last (newest).
						options.earlier.push_back(lp);
	}
	auto loaded = atlas::patch::load_patch(path, options);
	if (!loaded)
		return {nullptr, loaded.error().message};
	std::shared_ptr<CodeChange> change = std::move(loaded).value();
	{
		std::lock_guard lock(loaded_mu);
		loaded_patches.push_back(change);
	}
	return {std::move(change), {}};
#else
	return {nullptr, "this libatlas-preload.so was built without the patch loader "
	                 "(atlas/patch/loader.hpp); rebuild atlas with it"};
#endif
}

// Creates the runtime, registers the calling thread and starts the control socket.
void start_runtime() noexcept
{
	RuntimeOptions options;
	if (const char *log = std::getenv("ATLAS_EVENT_LOG"); log && *log) {
		options.events.fd = ::open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
		if (options.events.fd < 0)
			note(fmt::format("cannot open event log {}: {}; continuing without it", log,
			                 strerror(errno)));
	}
	blocked_stacks = new (std::nothrow) preload::BlockedStacks;
	if (!blocked_stacks)
		return;
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
#if ATLAS_HAVE_PATCH_LOADER
	// The patches stay mapped (the child inherited them) but belong to the leaked runtime.
	new (&loaded_mu) std::mutex;
	new (&loaded_patches) std::vector<std::shared_ptr<CodeChange>>;
#endif
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
		ctx.blocked = false;
		atlas::blocking_exit();
	}
	void *fn = app_handlers[sig].fn.load(std::memory_order_acquire);
	const int flags = app_handlers[sig].flags.load(std::memory_order_relaxed);
	errno = saved;
	if (flags & SA_SIGINFO)
		reinterpret_cast<void (*)(int, siginfo_t *, void *)>(fn)(sig, info, ucontext);
	else if (fn)
		reinterpret_cast<void (*)(int)>(fn)(sig);
	saved = errno;
	if (was_blocked) {
		// Back into the interrupted call: its stack snapshot is valid again.
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
	auto *args = new (std::nothrow) StartArgs{start, arg};
	if (!args)
		return EAGAIN;
	int r = real.pthread_create(thread, attr, start_trampoline, args);
	if (r != 0)
		delete args;
	return r;
}

int epoll_wait(int epfd, epoll_event *events, int maxevents, int timeout)
{
	return bracketed([&] { return real.epoll_wait(epfd, events, maxevents, timeout); });
}

int epoll_pwait(int epfd, epoll_event *events, int maxevents, int timeout, const sigset_t *mask)
{
	return bracketed([&] { return real.epoll_pwait(epfd, events, maxevents, timeout, mask); });
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

int accept(int fd, sockaddr *addr, socklen_t *len)
{
	return bracketed([&] { return real.accept(fd, addr, len); });
}

int accept4(int fd, sockaddr *addr, socklen_t *len, int flags)
{
	return bracketed([&] { return real.accept4(fd, addr, len, flags); });
}

ssize_t read(int fd, void *buf, size_t count)
{
	ensure_real();
	if (!real.read) // cannot happen with a working libc; a raw read is always correct
		return static_cast<ssize_t>(syscall(SYS_read, fd, buf, count));
	// Only sockets count, and finding out costs an fstat: only while a transition is pending.
	// A thread already blocked in read() when a transition starts lags until it returns
	// (use recv() or a wrapped poll for sockets that may idle long).
	if (!transition_pending() || !is_socket(fd))
		return real.read(fd, buf, count);
	return bracketed([&] { return real.read(fd, buf, count); });
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

int nanosleep(const timespec *req, timespec *rem)
{
	return bracketed([&] { return real.nanosleep(req, rem); });
}

int clock_nanosleep(clockid_t clock, int flags, const timespec *req, timespec *rem)
{
	return bracketed([&] { return real.clock_nanosleep(clock, flags, req, rem); });
}

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

} // extern "C"
