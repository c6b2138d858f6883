// The blocked-call torture target (docs/live-patching.md, "Unmodified programs (preload)",
// the torture test): run under LD_PRELOAD with
// ATLAS_PRELOAD_TEST_SIMULATED_VIEWS=1 (wait-free mode natively). It knows nothing of atlas
// but the test-loader entry point. Its threads sit in wrapped blocking calls with long or no
// timeouts (which stay in their old view, counted as quiescent, and migrate when they return),
// in unwrapped blocking calls between wrapped points, some with every signal blocked; an
// application SA_RESTART handler for SIGUSR1 is raised at the threads in restartable calls
// (its handler runs in the middle of a blocked call: the trampoline's way); threads alternate
// short wrapped and unwrapped sleeps. Every call's EINTR is counted: the application must
// never see one, and calls with a timeout must end by it.
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
#include <linux/futex.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <source_location>
#include <string>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/msg.h>
#include <sys/prctl.h>
#include <sys/select.h>
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
// Calls with a timeout that ended by it: within [timeout, timeout + 500 ms] (the preload
// passes the call on as it is: a transition neither ends it early nor extends it).
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
	atlas::Expected<void> apply() override
	{
		return {};
	}
	atlas::Expected<void> revert() override
	{
		return {};
	}

private:
	std::string id_;
};

atlas::control::Loader test_loader = [](const std::string &path) -> atlas::control::Loaded {
	if (path == "ok")
		return std::shared_ptr<atlas::CodeChange>(std::make_shared<NopChange>("ok@test"));
	return atlas::make_error(atlas::Errc::change_failed,
	                         "torture loader: no such test patch: " + path);
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

// Calls the preload wraps besides the common ones (docs/live-patching.md, "Unmodified
// programs (preload)"): a lock another process holds,
// a futex wait as libstdc++'s std::atomic<T>::wait makes it, a message queue never written.
int lock_fd = -1; // locked by the feeder child (F_SETLKW here waits for ever)
void t_fcntl_lock()
{
	usr1_target();
	struct flock fl {
	};
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	for (;;)
		count(fcntl(lock_fd, F_SETLKW, &fl), errno);
}
void t_atomic_wait()
{
	block_all_signals();
	static std::atomic<int> never{0};
	for (;;) {
		never.wait(0); // returns only on a spurious wake-up
		count(0, 0);
	}
}
int queue = -1; // removed at exit (System V queues outlive their process)
void t_msgrcv()
{
	block_all_signals(); // System V IPC calls fail EINTR after any handler, SA_RESTART or not
	const int q = queue;
	struct {
		long type;
		char text[8];
	} m;
	for (;;) {
		const long r = q < 0 ? 0 : msgrcv(q, &m, sizeof m.text, 0, 0);
		count(r, errno);
		if (r < 0 && errno == EIDRM)
			return; // removed at exit
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
// Short unwrapped sleeps (a raw nanosleep system call) between wrapped points.
void raw_sleep_us(long us)
{
	timespec ts{0, us * 1000};
	count(syscall(SYS_nanosleep, &ts, nullptr), errno);
}
void t_raw_sleep()
{
	block_all_signals();
	for (;;) {
		raw_sleep_us(300);
		count(poll(nullptr, 0, 0), errno);
	}
}

// Alternates short wrapped and unwrapped sleeps: it is often seen blocked just before it
// leaves the wrapper, in the middle of its handshake.
void t_alternate(bool all_blocked)
{
	if (all_blocked)
		block_all_signals();
	for (;;) {
		timespec ts{0, 200 * 1000};
		count(nanosleep(&ts, nullptr), errno); // wrapped
		raw_sleep_us(200);                     // not wrapped
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
	struct flock fl {
	};
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	fcntl(lock_fd, F_SETLK, &fl); // held until the test ends
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

// The application's signal state is its own: masks read back exactly as set, and sigaction
// reports the application's handler, never the preload's trampoline.
void run_selfcheck()
{
	auto fail = [](const char *what) {
		if (selfcheck == "ok")
			selfcheck = what;
	};
	sigset_t set, cur;
	sigemptyset(&set);
	for (int sig : {SIGUSR2, SIGRTMIN, SIGRTMAX - 2, SIGRTMAX})
		sigaddset(&set, sig);
	pthread_sigmask(SIG_SETMASK, &set, nullptr);
	pthread_sigmask(SIG_SETMASK, nullptr, &cur);
	for (int sig = 1; sig < SIGRTMAX; sig++)
		if (sig != SIGKILL && sig != SIGSTOP &&
		    sigismember(&set, sig) != sigismember(&cur, sig))
			fail("mask_not_read_back");
	struct sigaction usr1 {
	};
	if (sigaction(SIGUSR1, nullptr, &usr1) != 0 || usr1.sa_handler != usr1_handler ||
	    !(usr1.sa_flags & SA_RESTART))
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
	char lock_path[] = "/tmp/atlas-torture-lock-XXXXXX";
	lock_fd = mkstemp(lock_path);
	if (lock_fd < 0 || pipe(pipe_never) != 0 || pipe(feed_pipe[0]) != 0 ||
	    pipe(feed_pipe[1]) != 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, feed_sock) != 0)
		return 1;
	unlink(lock_path);
	queue = msgget(IPC_PRIVATE, IPC_CREAT | 0600);

	start_feeder();
	std::vector<std::thread> threads;
	for (auto fn :
	     {t_poll, t_ppoll, t_epoll, t_select, t_nanosleep, t_clock_nanosleep, t_accept,
	      t_accept_usr1, t_recv_never, t_sem, t_sigwait, t_sigtimedwait, t_raw_sleep,
	      t_read_socket, t_cond, t_raiser, t_fcntl_lock, t_atomic_wait, t_msgrcv})
		threads.emplace_back(fn);
	for (bool all_blocked : {true, false})
		threads.emplace_back([all_blocked] { t_read_pipe(all_blocked); });
	for (bool all_blocked : {true, false, false})
		threads.emplace_back([all_blocked] { t_alternate(all_blocked); });
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
	if (queue >= 0)
		msgctl(queue, IPC_RMID, nullptr);
	_exit(0);
}
