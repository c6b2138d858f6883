// A kick left pending from an earlier transition (docs/live-patching.md, "Kicks"): run under
// LD_PRELOAD on simulated views with ATLAS_KICK_SIGNAL set. Before each wrapped blocking call
// the program makes the kick signal pending on its own thread (tgkill while it is blocked, as a
// kick that arrived after a wrapper's window closed stays pending), then makes the call with a
// timeout (ppoll, epoll_pwait, epoll_pwait2, pselect, poll, nanosleep), directly and from a signal
// handler, with masks that do not block the kick signal. Every call must end by its timeout (not
// earlier, no EINTR). Prints one line per case and "stale-kick: N failures"; exits 1 if any failed.
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <poll.h>
#include <string>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace
{

int kick = 0;
int failures = 0;
int pipe_fds[2];
int epfd = -1;
constexpr int timeout_ms = 150;

std::int64_t now_ms()
{
	timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return std::int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

void make_kick_pending()
{
	syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), kick);
}

// Result of one case: the call's return value, errno, and how long it took.
struct Outcome {
	int result = -2;
	int error = 0;
	std::int64_t took_ms = 0;
};

void report(const char *what, const Outcome &o)
{
	const bool ok = o.result == 0 && o.took_ms >= timeout_ms - 5;
	std::printf("%s %s: result %d (%s), %lld ms of %d\n", ok ? "ok" : "FAIL", what, o.result,
	            o.result < 0 ? std::strerror(o.error) : "no error", (long long)o.took_ms,
	            timeout_ms);
	std::fflush(stdout);
	if (!ok)
		failures++;
}

// Each makes one call on an empty pipe with an empty signal mask (every signal unblocked during
// the call, the kick signal included, unless the wrapper keeps it blocked).
Outcome do_ppoll()
{
	make_kick_pending();
	sigset_t none;
	sigemptyset(&none);
	pollfd p{pipe_fds[0], POLLIN, 0};
	timespec t{0, long(timeout_ms) * 1000000};
	const std::int64_t start = now_ms();
	Outcome o;
	o.result = ppoll(&p, 1, &t, &none);
	o.error = errno;
	o.took_ms = now_ms() - start;
	return o;
}

Outcome do_epoll_pwait()
{
	make_kick_pending();
	sigset_t none;
	sigemptyset(&none);
	epoll_event ev;
	const std::int64_t start = now_ms();
	Outcome o;
	o.result = epoll_pwait(epfd, &ev, 1, timeout_ms, &none);
	o.error = errno;
	o.took_ms = now_ms() - start;
	return o;
}

Outcome do_epoll_pwait2()
{
	make_kick_pending();
	sigset_t none;
	sigemptyset(&none);
	epoll_event ev;
	timespec t{0, long(timeout_ms) * 1000000};
	const std::int64_t start = now_ms();
	Outcome o;
	o.result = epoll_pwait2(epfd, &ev, 1, &t, &none);
	o.error = errno;
	o.took_ms = now_ms() - start;
	return o;
}

Outcome do_pselect()
{
	make_kick_pending();
	sigset_t none;
	sigemptyset(&none);
	fd_set r;
	FD_ZERO(&r);
	FD_SET(pipe_fds[0], &r);
	timespec t{0, long(timeout_ms) * 1000000};
	const std::int64_t start = now_ms();
	Outcome o;
	o.result = pselect(pipe_fds[0] + 1, &r, nullptr, nullptr, &t, &none);
	o.error = errno;
	o.took_ms = now_ms() - start;
	return o;
}

Outcome do_poll()
{
	make_kick_pending();
	pollfd p{pipe_fds[0], POLLIN, 0};
	const std::int64_t start = now_ms();
	Outcome o;
	o.result = poll(&p, 1, timeout_ms);
	o.error = errno;
	o.took_ms = now_ms() - start;
	return o;
}

Outcome do_nanosleep()
{
	make_kick_pending();
	timespec t{0, long(timeout_ms) * 1000000};
	const std::int64_t start = now_ms();
	Outcome o;
	o.result = nanosleep(&t, nullptr);
	o.error = errno;
	o.took_ms = now_ms() - start;
	return o;
}

using Case = Outcome (*)();
std::atomic<Case> in_handler{nullptr};
Outcome handler_outcome;

void on_usr1(int)
{
	const int saved = errno;
	if (Case c = in_handler.load())
		handler_outcome = c();
	errno = saved;
}

} // namespace

int main()
{
	const char *env = std::getenv("ATLAS_KICK_SIGNAL");
	kick = env ? std::atoi(env) : 0;
	if (kick <= 0) {
		std::printf("FAIL: set ATLAS_KICK_SIGNAL\n");
		return 2;
	}
	if (pipe(pipe_fds) != 0 || (epfd = epoll_create1(0)) < 0) {
		std::perror("setup");
		return 2;
	}
	epoll_event ev{};
	ev.events = EPOLLIN;
	ev.data.fd = pipe_fds[0];
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, pipe_fds[0], &ev) != 0) {
		std::perror("epoll_ctl");
		return 2;
	}
	struct sigaction sa {
	};
	sa.sa_handler = on_usr1;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR1, &sa, nullptr) != 0) {
		std::perror("sigaction");
		return 2;
	}

	const struct {
		const char *name;
		Case call;
	} cases[] = {{"ppoll", do_ppoll},
	             {"epoll_pwait", do_epoll_pwait},
	             {"epoll_pwait2", do_epoll_pwait2},
	             {"pselect", do_pselect},
	             {"poll", do_poll},
	             {"nanosleep", do_nanosleep}};
	for (int round = 0; round < 3; round++) {
		for (const auto &c : cases) {
			// A wrapped call on a registered thread: the kick path restarts it.
			report(c.name, c.call());
			// The same call from a signal handler: never a quiescence point, never
			// kicked, and a pending kick must not end it either.
			in_handler.store(c.call);
			handler_outcome = Outcome{};
			raise(SIGUSR1);
			in_handler.store(nullptr);
			std::string what = std::string(c.name) + " in a handler";
			report(what.c_str(), handler_outcome);
		}
	}
	// What is still pending is the runtime's: sigpending() must not report it.
	sigset_t pending;
	make_kick_pending();
	if (sigpending(&pending) != 0 || sigismember(&pending, kick)) {
		std::printf("FAIL sigpending reports the kick signal\n");
		failures++;
	}
	std::printf("stale-kick: %d failures\n", failures);
	return failures == 0 ? 0 : 1;
}
