// A multi-threaded test program for the preload and CLI tests. Built twice:
//  - preload_target: knows nothing of atlas; run with LD_PRELOAD=libatlas-preload.so. Its
//    threads idle in wrapped calls (epoll_wait, accept, pthread_cond_wait, nanosleep, recv).
//  - explicit_target (ATLAS_EXPLICIT): creates the Runtime and control Server itself; its
//    threads bracket their sleeps with blocking_enter()/blocking_exit().
// Both install a test loader: "ok"/"ok2" (changes that count their applies), "stack" (replaces
// blocking_function(), in which the "stack" thread idles), "fail" (loading fails).
// Protocol with the test: prints "ready <socket>" on stdout when serving; on SIGTERM prints
// "eintr <count>" (EINTR results the application saw) and exits; on SIGUSR2 dlopens the library
// named by ATLAS_TEST_DLOPEN.
#include <atlas/runtime.hpp>
#include <control.hpp>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <time.h>
#include <unistd.h>
#include <vector>

#ifdef ATLAS_EXPLICIT
#include <atlas/runtime.hpp>
#endif

namespace
{

std::atomic<long> eintr_count{0};
std::atomic<long> applies{0};

void count(int r, int err)
{
	if (r < 0 && err == EINTR)
		eintr_count++;
}

class TestChange : public atlas::CodeChange
{
public:
	TestChange(std::string id, std::vector<atlas::AddressRange> ranges)
	    : id_(std::move(id)), ranges_(std::move(ranges))
	{
	}
	std::string identity() const override
	{
		return id_;
	}
	atlas::Expected<void> apply() override
	{
		applies++;
		return {};
	}
	atlas::Expected<void> revert() override
	{
		return {};
	}
	std::vector<atlas::AddressRange> replaced_functions() const override
	{
		return ranges_;
	}

private:
	std::string id_;
	std::vector<atlas::AddressRange> ranges_;
};

} // namespace

// In a section of its own so that the test knows its exact extent.
extern "C" {
extern char __start_atlas_test_blocking[];
extern char __stop_atlas_test_blocking[];
__attribute__((noinline, section("atlas_test_blocking"))) void blocking_function(int epfd)
{
	epoll_event ev;
	for (;;) {
		int r = epoll_wait(epfd, &ev, 1, 50);
		count(r, errno);
		asm volatile("" ::: "memory");
	}
}
}

namespace
{

atlas::control::Loader test_loader = [](const std::string &path) -> atlas::control::Loaded {
	if (path == "ok" || path == "ok2")
		return std::shared_ptr<atlas::CodeChange>(std::make_shared<TestChange>(
		    path + "@test", std::vector<atlas::AddressRange>{}));
	if (path == "stack") {
		atlas::AddressRange r{reinterpret_cast<std::uintptr_t>(__start_atlas_test_blocking),
		                      reinterpret_cast<std::uintptr_t>(__stop_atlas_test_blocking),
		                      {}};
		return std::shared_ptr<atlas::CodeChange>(std::make_shared<TestChange>(
		    "stack@test", std::vector<atlas::AddressRange>{r}));
	}
	return atlas::make_error(atlas::Errc::change_failed,
	                         "test loader: no such test patch: " + path);
};

#ifdef ATLAS_EXPLICIT
atlas::Runtime *runtime = nullptr;
#define BLOCKING(call)                                                                             \
	[&] {                                                                                      \
		atlas::blocking_enter();                                                           \
		auto r_ = (call);                                                                  \
		int e_ = errno;                                                                    \
		atlas::blocking_exit();                                                            \
		errno = e_;                                                                        \
		return r_;                                                                         \
	}()
#define REGISTER(name) (void)runtime->register_current_thread(name)
#else
#define BLOCKING(call) (call)
#define REGISTER(name) pthread_setname_np(pthread_self(), name)
#endif

void sleeper()
{
	REGISTER("sleeper");
	for (;;) {
		timespec ts{0, 20 * 1000 * 1000};
		int r = BLOCKING(nanosleep(&ts, nullptr));
		count(r, errno);
	}
}

void waiter()
{
	REGISTER("waiter");
	static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
	pthread_mutex_lock(&mu);
	for (;;) {
		timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 1;
		int r = BLOCKING(pthread_cond_timedwait(&cv, &mu, &until));
		if (r == EINTR)
			eintr_count++;
	}
}

void acceptor()
{
	REGISTER("acceptor");
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	sockaddr_in a{};
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof(a));
	listen(fd, 4);
	for (;;) {
		int c = BLOCKING(accept(fd, nullptr, nullptr));
		count(c, errno);
		if (c >= 0)
			close(c);
	}
}

void looper()
{
	REGISTER("looper");
	int sv[2];
	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	for (;;) {
		pollfd p{sv[0], POLLIN, 0};
		int r = BLOCKING(poll(&p, 1, 5));
		count(r, errno);
#ifdef ATLAS_EXPLICIT
		atlas::quiescence_point();
#endif
	}
}

void stack_thread()
{
	REGISTER("stack");
	int epfd = epoll_create1(0);
#ifdef ATLAS_EXPLICIT
	// Explicit mode has no stack check: idle in a bracketed sleep instead.
	(void)epfd;
	sleeper();
#else
	blocking_function(epfd);
#endif
}

// "signal": its SIGUSR1 handler sleeps in a wrapped call, which must not count as a point.
std::atomic<bool> in_handler{false};
void handler(int)
{
	in_handler = true;
	timespec ts{0, 300 * 1000 * 1000};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
	}
	in_handler = false;
}

// Blocked in long sleeps; SIGUSR1 makes it run the handler (which must make it non-quiescent).
// Its EINTR is the application's own signal's: not counted.
void sigblocked_thread()
{
	REGISTER("sigblocked");
	for (;;) {
		timespec ts{10, 0};
		(void)BLOCKING(nanosleep(&ts, nullptr));
	}
}

// Mostly running in user space (so that SIGUSR1 lands outside a wrapped call), reaching a
// point every few milliseconds.
void signal_thread()
{
	REGISTER("signal");
	for (;;) {
		timespec start, now;
		clock_gettime(CLOCK_MONOTONIC, &start);
		do
			clock_gettime(CLOCK_MONOTONIC, &now);
		while ((now.tv_sec - start.tv_sec) * 1000000000L + now.tv_nsec - start.tv_nsec <
		       2000000L);
		int r = BLOCKING(poll(nullptr, 0, 0));
		count(r, errno);
	}
}

} // namespace

// ATLAS_TEST_FORK=1: the program forks first, as a daemonizing server does; the child is the
// program, the parent forwards SIGTERM to it and waits.
void fork_if_asked()
{
	const char *f = std::getenv("ATLAS_TEST_FORK");
	if (!f || *f != '1')
		return;
	pid_t child = fork();
	if (child <= 0)
		return; // the child (or fork failed: run as the program)
	sigset_t term;
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &term, nullptr);
	int sig = 0;
	while (sigwait(&term, &sig) != 0 || sig != SIGTERM) {
	}
	kill(child, SIGTERM);
	int status;
	waitpid(child, &status, 0);
	_exit(0);
}

int main()
{
	fork_if_asked();
	// SIGTERM and SIGUSR2 are taken with sigwait by main; every other thread inherits the mask.
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGUSR2); // ATLAS_TEST_DLOPEN: dlopen that library
	pthread_sigmask(SIG_BLOCK, &set, nullptr);
	struct sigaction sa {
	};
	sa.sa_handler = handler;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGUSR1, &sa, nullptr);

	const char *socket_path = nullptr;
#ifdef ATLAS_EXPLICIT
	atlas::RuntimeOptions options;
	runtime = atlas::Runtime::create(std::move(options)).release();
	// Sanitizer helper threads exist already or never run patched code.
	std::thread([] {}).join();
	if (auto *d = opendir("/proc/self/task")) {
		while (auto *e = readdir(d))
			if (long tid = std::strtol(e->d_name, nullptr, 10); tid > 0)
				(void)runtime->exempt_thread(static_cast<pid_t>(tid));
		closedir(d);
	}
	atlas::control::ServerOptions so;
	if (const char *p = std::getenv("ATLAS_CONTROL_SOCKET"))
		so.path = p;
	so.loader = test_loader;
	auto started = atlas::control::Server::start(*runtime, so);
	if (!started) {
		std::fprintf(stderr, "server: %s\n", started.error().message.c_str());
		return 1;
	}
	auto *server = std::move(started).value().release();
	socket_path = server->path().c_str();
#else
	auto set_loader =
	    reinterpret_cast<int (*)(void *)>(dlsym(RTLD_DEFAULT, "atlas_preload_set_test_loader"));
	auto get_path = reinterpret_cast<const char *(*)(void)>(
	    dlsym(RTLD_DEFAULT, "atlas_preload_socket_path"));
	if (!set_loader || !get_path || set_loader(&test_loader) != 0 || !get_path()) {
		std::fprintf(stderr, "not running under an active libatlas-preload.so\n");
		return 1;
	}
	socket_path = get_path();
#endif
	std::vector<std::thread> threads;
	threads.emplace_back(sleeper);
	threads.emplace_back(waiter);
	threads.emplace_back(acceptor);
	threads.emplace_back(looper);
	threads.emplace_back(stack_thread);
	threads.emplace_back(signal_thread);
	threads.emplace_back(sigblocked_thread);
	for (auto &t : threads)
		t.detach();
	std::printf("ready %s\n", socket_path);
	std::fflush(stdout);
	int sig = 0;
	for (;;) {
		int r = BLOCKING(sigwait(&set, &sig));
		if (r == 0 && sig == SIGTERM)
			break;
		if (r == 0 && sig == SIGUSR2)
			if (const char *lib = std::getenv("ATLAS_TEST_DLOPEN"))
				(void)dlopen(lib, RTLD_NOW | RTLD_LOCAL);
	}
	std::printf("eintr %ld\n", eintr_count.load());
	std::fflush(stdout);
	_exit(0);
}
