// The kick/blocked-call torture target (design sec. 7): run under LD_PRELOAD with
// ATLAS_PRELOAD_TEST_SIMULATED_VIEWS=1 (wait-free mode natively). It knows nothing of atlas
// but the test-loader entry point. Its threads sit in wrapped blocking calls with long or no
// timeouts (which only kicks get out of the old view quickly), in unwrapped blocking calls
// between wrapped points (which a kick must never interrupt), some with every signal blocked;
// an application SA_RESTART handler for SIGUSR1 is raised at the threads in restartable calls;
// threads alternate short wrapped and unwrapped sleeps, and a stray kicker sends the kick
// signal itself every 5 ms to the threads that drain it, wherever they are.
// Every call's EINTR is counted: the application must never see one.
//
// Protocol: prints "ready <socket>"; on SIGTERM prints
// "eintr <n> calls <m> usr1 <k> timeouts_ok <a> timeouts_bad <b> selfcheck <ok|what failed>"
// and exits.
#include <atlas/runtime.hpp>
#include <control.hpp>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <fcntl.h>
#include <fstream>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <source_location>
#include <string>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/select.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <thread>
#include <time.h>
#include <unistd.h>
#include <vector>

namespace
{

std::atomic<long> eintr_count{0};
std::atomic<long> calls{0};
std::atomic<long> usr1_handled{0};
std::string selfcheck = "ok";
// Calls with a timeout that ended by it: within [timeout, timeout + 500 ms] (a kick restarts
// them with the time left, so they neither end early nor sleep their timeout again).
std::atomic<long> timeouts_ok{0};
std::atomic<long> timeouts_bad{0};
constexpr int timeout_s = 3;

std::int64_t now_ns()
{
	timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return std::int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

void timed_out(std::int64_t start)
{
	const std::int64_t elapsed = now_ns() - start, want = std::int64_t(timeout_s) * 1000000000;
	if (elapsed >= want - 1000000 && elapsed <= want + 500000000)
		timeouts_ok.fetch_add(1, std::memory_order_relaxed);
	else
		timeouts_bad.fetch_add(1, std::memory_order_relaxed);
}

void count(long r, int err, std::source_location where = std::source_location::current())
{
	calls.fetch_add(1, std::memory_order_relaxed);
	if (r < 0 && err == EINTR) {
		eintr_count.fetch_add(1, std::memory_order_relaxed);
		// Which call: on stderr, for the test log.
		std::fprintf(stderr, "torture_target: EINTR at line %u in %s\n",
		             unsigned(where.line()), where.function_name());
	}
}

class NopChange : public atlas::CodeChange
{
public:
	explicit NopChange(std::string id) : id_(std::move(id)) {}
	std::string identity() const override
	{
		return id_;
	}
	atlas::Result apply() override
	{
		return atlas::Result::success();
	}
	atlas::Result revert() override
	{
		return atlas::Result::success();
	}

private:
	std::string id_;
};

atlas::control::Loader test_loader = [](const std::string &path) -> atlas::control::LoadResult {
	if (path == "ok")
		return {std::make_shared<NopChange>("ok@test"), {}};
	return {nullptr, "torture loader: no such test patch: " + path};
};

void block_all_signals()
{
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, nullptr);
}

// Threads that take the application's SIGUSR1 (in restartable calls only: poll, nanosleep &
// co. fail with EINTR after any handler, with or without atlas).
std::mutex targets_mu;
std::vector<pid_t> usr1_targets;
void usr1_target()
{
	std::lock_guard lock(targets_mu);
	usr1_targets.push_back(static_cast<pid_t>(gettid()));
}

int pipe_never[2];   // never written: wrapped calls on it block until their timeout
int feed_pipe[2][2]; // written every millisecond: unwrapped reads (one pipe per reader)
int feed_sock[2];    // a socket written every 20 ms: wrapped reads (recv and read)

// --- wrapped calls, long or no timeouts ---
void t_poll()
{
	block_all_signals();
	for (;;) {
		pollfd p{pipe_never[0], POLLIN, 0};
		const std::int64_t start = now_ns();
		int r = poll(&p, 1, timeout_s * 1000);
		count(r, errno);
		if (r == 0)
			timed_out(start);
	}
}
void t_ppoll()
{
	for (;;) {
		pollfd p{pipe_never[0], POLLIN, 0};
		count(ppoll(&p, 1, nullptr, nullptr), errno);
	}
}
void t_epoll()
{
	int ep = epoll_create1(0);
	epoll_event ev{};
	ev.events = EPOLLIN;
	epoll_ctl(ep, EPOLL_CTL_ADD, pipe_never[0], &ev);
	for (;;) {
		const std::int64_t start = now_ns();
		int r = epoll_wait(ep, &ev, 1, timeout_s * 1000);
		count(r, errno);
		if (r == 0)
			timed_out(start);
	}
}
void t_select()
{
	for (;;) {
		fd_set r;
		FD_ZERO(&r);
		FD_SET(pipe_never[0], &r);
		timeval tv{timeout_s, 0};
		const std::int64_t start = now_ns();
		int n = select(pipe_never[0] + 1, &r, nullptr, nullptr, &tv);
		count(n, errno);
		if (n == 0)
			timed_out(start);
	}
}
void t_nanosleep()
{
	block_all_signals();
	for (;;) {
		timespec ts{timeout_s, 0};
		const std::int64_t start = now_ns();
		int r = nanosleep(&ts, nullptr);
		count(r, errno);
		if (r == 0)
			timed_out(start);
	}
}
void t_clock_nanosleep()
{
	for (;;) {
		timespec ts{timeout_s, 0};
		const std::int64_t start = now_ns();
		int r = clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, nullptr);
		count(r == 0 ? 0 : -1, r);
		if (r == 0)
			timed_out(start);
	}
}
void t_accept()
{
	block_all_signals();
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	sockaddr_in a{};
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof(a));
	listen(fd, 4);
	for (;;) {
		int c = accept(fd, nullptr, nullptr);
		count(c, errno);
		if (c >= 0)
			close(c);
	}
}
void t_accept_usr1()
{
	usr1_target();
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	sockaddr_in a{};
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof(a));
	listen(fd, 4);
	for (;;) {
		int c = accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
		count(c, errno);
		if (c >= 0)
			close(c);
	}
}
void t_recv_never()
{
	usr1_target();
	int sv[2];
	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	char c;
	for (;;)
		count(recv(sv[0], &c, 1, 0), errno);
}
void t_read_socket()
{
	usr1_target();
	char buf[64];
	for (;;)
		count(read(feed_sock[0], buf, sizeof buf),
		      errno); // wrapped while a transition runs
}
void t_sem()
{
	static sem_t sem;
	sem_init(&sem, 0, 0);
	for (;;)
		count(sem_wait(&sem), errno);
}
void t_sigwait()
{
	usr1_target();
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGURG); // never raised
	pthread_sigmask(SIG_BLOCK, &s, nullptr);
	for (;;) {
		int sig = 0;
		int r = sigwait(&s, &sig);
		count(r == 0 ? 0 : -1, r);
	}
}
void t_sigtimedwait()
{
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGURG);
	pthread_sigmask(SIG_BLOCK, &s, nullptr);
	for (;;) {
		timespec ts{timeout_s, 0};
		const std::int64_t start = now_ns();
		int r = sigtimedwait(&s, nullptr, &ts);
		count(r >= 0 || errno == EAGAIN ? 0 : -1, errno);
		if (r < 0 && errno == EAGAIN)
			timed_out(start);
	}
}
void t_cond()
{
	usr1_target();
	static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
	pthread_mutex_lock(&mu);
	for (;;) {
		timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += 30 * 1000 * 1000;
		if (until.tv_nsec >= 1000000000) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000;
		}
		int r = pthread_cond_timedwait(&cv, &mu, &until);
		count(r == 0 || r == ETIMEDOUT ? 0 : -1, r);
	}
}

// --- unwrapped blocking calls between wrapped points ---
void t_read_pipe(bool all_blocked)
{
	if (all_blocked)
		block_all_signals();
	else
		usr1_target();
	char buf[64];
	const int fd = feed_pipe[all_blocked ? 0 : 1][0];
	// The wrapped point: a recv that never waits. Not poll: poll fails with EINTR after any
	// handler, so the application's own SIGUSR1 would make this thread see EINTR without atlas.
	int sv[2];
	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	for (;;) {
		count(read(fd, buf, sizeof buf), errno); // a pipe: never wrapped
		ssize_t r = recv(sv[0], buf, sizeof buf, MSG_DONTWAIT);
		count(r < 0 && errno == EAGAIN ? 0 : r, errno);
	}
}
void t_usleep()
{
	block_all_signals();
	for (;;) {
		count(usleep(300), errno); // glibc's internal nanosleep: not wrapped
		count(poll(nullptr, 0, 0), errno);
	}
}

// Alternates short wrapped and unwrapped sleeps: a kick sent while it was seen blocked often
// arrives once it has left the wrapper, in the unwrapped usleep, which must not see it.
void t_alternate(bool all_blocked)
{
	if (all_blocked)
		block_all_signals();
	for (;;) {
		timespec ts{0, 200 * 1000};
		count(nanosleep(&ts, nullptr), errno); // wrapped
		count(usleep(200), errno);             // glibc's internal nanosleep: not wrapped
	}
}

// The threads the stray kicker kicks: those that make a kickable wrapped call at least every
// few milliseconds, where queued kicks are drained. Not the condition-variable thread (its
// wait is never kickable) nor the socket reader (its read is wrapped only during transitions):
// kicks, a real-time signal, would queue up there without end (RLIMIT_SIGPENDING).
std::vector<pid_t> all_tids;
void record_tid()
{
	std::lock_guard lock(targets_mu);
	all_tids.push_back(static_cast<pid_t>(gettid()));
}

// Stray kicks: the kick signal itself, every 5 ms at those threads, wherever they are (a wrapped
// call, an unwrapped one, application code), as a kick racing with a thread that has just left
// its wrapper would arrive. The application must never see one: outside a wrapped call the
// signal is blocked (it waits, pending, for the thread's next wrapped call, which restarts
// once), inside it restarts the call with the time left.
void t_stray_kicker()
{
	const int kick = SIGRTMAX - 2;
	for (;;) {
		std::vector<pid_t> tids;
		{
			std::lock_guard lock(targets_mu);
			tids = all_tids;
		}
		for (pid_t tid : tids)
			syscall(SYS_tgkill, getpid(), tid, kick);
		timespec ts{0, 5 * 1000 * 1000};
		count(nanosleep(&ts, nullptr), errno);
	}
}

// Feeds the pipes (every ms) and the socket (every 20 ms) from a child process, so that the
// unwrapped reads end by themselves even while a global transition parks every thread here.
void start_feeder()
{
	pid_t child = fork();
	if (child != 0)
		return;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (int i = 0;; i++) {
		char c = 'x';
		(void)!write(feed_pipe[0][1], &c, 1);
		(void)!write(feed_pipe[1][1], &c, 1);
		if (i % 20 == 0)
			(void)!write(feed_sock[1], &c, 1);
		usleep(1000);
	}
}

void usr1_handler(int)
{
	usr1_handled.fetch_add(1, std::memory_order_relaxed);
}

// Raises the application's SIGUSR1 at the restartable-call threads every 2 ms.
void t_raiser()
{
	unsigned n = 0;
	for (;;) {
		pid_t tid = 0;
		{
			std::lock_guard lock(targets_mu);
			if (!usr1_targets.empty())
				tid = usr1_targets[n++ % usr1_targets.size()];
		}
		if (tid)
			syscall(SYS_tgkill, getpid(), tid, SIGUSR1);
		timespec ts{0, 2 * 1000 * 1000};
		count(nanosleep(&ts, nullptr), errno);
	}
}

// Whether the kick signal's bit is set in a signal set line of /proc/thread-self/status.
// Reads the kernel's view with a raw read(2): read() is a wrapped call, and inside a wrapper
// the kick signal is unblocked for the call's duration, which is not the mask being checked.
bool kick_in_status(const std::string &field)
{
	const int kick = SIGRTMAX - 2;
	char buf[4096];
	const int fd = open("/proc/thread-self/status", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	const long n = syscall(SYS_read, fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	const std::string text(buf, static_cast<std::size_t>(n));
	const auto at = text.find("\n" + field);
	if (at == std::string::npos)
		return false;
	const unsigned long long mask =
	    std::stoull(text.substr(at + 1 + field.size()), nullptr, 16);
	return (mask >> (kick - 1)) & 1;
}

bool kick_blocked_in_kernel()
{
	return kick_in_status("SigBlk:");
}

bool kick_pending_in_kernel()
{
	return kick_in_status("SigPnd:");
}

// The application can neither take nor unblock the kick signal, and reads back its own mask.
void run_selfcheck()
{
	const int kick = SIGRTMAX - 2;
	auto fail = [](const char *what) {
		if (selfcheck == "ok")
			selfcheck = what;
	};
	struct sigaction sa {
	};
	sa.sa_handler = usr1_handler;
	if (sigaction(kick, &sa, nullptr) != -1 || errno != EINVAL)
		fail("sigaction(kick)_not_refused");
	struct sigaction old {
	};
	if (sigaction(kick, nullptr, &old) != 0 || old.sa_handler != SIG_DFL)
		fail("sigaction(kick)_old_not_default");
	if (signal(kick, usr1_handler) != SIG_ERR)
		fail("signal(kick)_not_refused");
	sigset_t empty, cur;
	sigemptyset(&empty);
	pthread_sigmask(SIG_SETMASK, &empty, nullptr);
	if (!kick_blocked_in_kernel())
		fail("SIG_SETMASK_unblocked_kick");
	pthread_sigmask(SIG_SETMASK, nullptr, &cur);
	if (sigismember(&cur, kick))
		fail("app_view_shows_kick_blocked");
	sigset_t k;
	sigemptyset(&k);
	sigaddset(&k, kick);
	sigprocmask(SIG_UNBLOCK, &k, nullptr);
	if (!kick_blocked_in_kernel())
		fail("SIG_UNBLOCK_unblocked_kick");
	sigprocmask(SIG_BLOCK, &k, nullptr);
	sigprocmask(SIG_BLOCK, nullptr, &cur);
	if (!sigismember(&cur, kick))
		fail("app_view_lost_its_own_block");
	sigprocmask(SIG_UNBLOCK, &k, &cur);
	if (!sigismember(&cur, kick))
		fail("old_mask_not_app_view");
	pthread_sigmask(SIG_BLOCK, nullptr, &cur);
	if (sigismember(&cur, kick) || !kick_blocked_in_kernel())
		fail("app_view_after_unblock");
	// A kick left pending (as one sent while the thread is outside a wrapped call): neither
	// reported by sigpending nor read by a signalfd that asks for every signal.
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, nullptr);
	if (syscall(SYS_tgkill, getpid(), gettid(), kick) != 0)
		fail("tgkill(kick)_failed");
	sigset_t pending;
	sigemptyset(&pending);
	if (sigpending(&pending) != 0 || sigismember(&pending, kick))
		fail("sigpending_shows_kick");
	int sfd = signalfd(-1, &all, SFD_NONBLOCK | SFD_CLOEXEC);
	signalfd_siginfo si{};
	if (sfd < 0)
		fail("signalfd_failed");
	// A raw read: a wrapped read() would open the kick window and take the kick itself.
	else if (syscall(SYS_read, sfd, &si, sizeof(si)) != -1 || errno != EAGAIN)
		fail("signalfd_read_a_kick");
	if (sfd >= 0)
		close(sfd);
	if (!kick_pending_in_kernel())
		fail("kick_not_left_pending");
	pthread_sigmask(SIG_SETMASK, &empty, nullptr);
	// The application's handler never sees the trampoline.
	struct sigaction usr1 {
	};
	if (sigaction(SIGUSR1, nullptr, &usr1) != 0 || usr1.sa_handler != usr1_handler ||
	    sigismember(&usr1.sa_mask, kick))
		fail("sigaction_old_not_app_handler");
}

} // namespace

int main()
{
	sigset_t term;
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &term, nullptr);
	struct sigaction sa {
	};
	sa.sa_handler = usr1_handler;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, nullptr);
	std::thread(run_selfcheck).join(); // it changes its mask: not main's

	auto set_loader =
	    reinterpret_cast<int (*)(void *)>(dlsym(RTLD_DEFAULT, "atlas_preload_set_test_loader"));
	auto get_path = reinterpret_cast<const char *(*)(void)>(
	    dlsym(RTLD_DEFAULT, "atlas_preload_socket_path"));
	if (!set_loader || !get_path || set_loader(&test_loader) != 0 || !get_path()) {
		std::fprintf(stderr, "not running under an active libatlas-preload.so\n");
		return 1;
	}
	if (pipe(pipe_never) != 0 || pipe(feed_pipe[0]) != 0 || pipe(feed_pipe[1]) != 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM, 0, feed_sock) != 0)
		return 1;

	start_feeder();
	std::vector<std::thread> threads;
	for (auto fn :
	     {t_poll, t_ppoll, t_epoll, t_select, t_nanosleep, t_clock_nanosleep, t_accept,
	      t_accept_usr1, t_recv_never, t_sem, t_sigwait, t_sigtimedwait, t_usleep})
		threads.emplace_back([fn] {
			record_tid();
			fn();
		});
	for (auto fn : {t_read_socket, t_cond, t_raiser})
		threads.emplace_back(fn);
	for (bool all_blocked : {true, false})
		threads.emplace_back([all_blocked] {
			record_tid();
			t_read_pipe(all_blocked);
		});
	for (bool all_blocked : {true, false, false})
		threads.emplace_back([all_blocked] {
			record_tid();
			t_alternate(all_blocked);
		});
	threads.emplace_back(t_stray_kicker);
	for (auto &t : threads)
		t.detach();
	std::printf("ready %s\n", get_path());
	std::fflush(stdout);
	int sig = 0;
	for (;;) {
		int r = sigwait(&term, &sig);
		if (r == 0 && sig == SIGTERM)
			break;
	}
	std::printf("eintr %ld calls %ld usr1 %ld timeouts_ok %ld timeouts_bad %ld selfcheck %s\n",
	            eintr_count.load(), calls.load(), usr1_handled.load(), timeouts_ok.load(),
	            timeouts_bad.load(), selfcheck.c_str());
	std::fflush(stdout);
	_exit(0);
}
