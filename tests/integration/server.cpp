// The integration test's server (docs/live-patching.md, "Testing", integration.*): a
// multi-threaded request/response server on a Unix SOCK_SEQPACKET socket whose every reply is
// compute_reply(request), the function the test's patches replace. Built twice:
//  - integ_server_explicit (ATLAS_EXPLICIT): links libatlas, creates its Runtime and the
//    control Server (with the real patch loader, stacking earlier patches), registers its
//    threads, calls quiescence_point() in its loops and brackets blocking calls;
//  - integ_server_plain: no atlas call at all, run under LD_PRELOAD=libatlas-preload.so.
// Compiled -O2 -fno-ipa-ra (see CMakeLists.txt): function-level patching needs it.
//
// Threads: main (waits for SIGTERM), one acceptor, ATLAS_INTEG_WORKERS (5) workers sharing one
// epoll set (EPOLLONESHOT per connection: a connection is served by one worker at a time).
// Requests: any datagram is answered with compute_reply() as 16 hex digits, except three
// commands for the test's lagging thread: "STALL" makes the worker spin in user space, without
// a quiescence point or a system call, until "RELEASE" (or 60 s), then answer "stalled";
// "STALLING?" answers "yes" while a worker spins, else "no"; "RELEASE" answers "released".
// ATLAS_EVENT_LOG=<file>: the runtime's event log (both builds; the preload library reads it).
// Protocol with the test: prints "ready <control socket> <service socket>"; on SIGTERM prints
// "served <replies> errors <count>" and exits with _exit(0).
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <mutex>
#include <pthread.h>
#include <string>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>
#include <vector>

#ifdef ATLAS_EXPLICIT
#include <atlas/patch/loader.hpp>
#include <atlas/runtime.hpp>
#include <control.hpp>
#include <dirent.h>
#include <fcntl.h>
#include <memory>
#else
#include <dlfcn.h>
#endif

// --- the code the patches change ------------------------------------------------------------
// tests/integration/patches/{v2,v3}.c replace compute_reply; the test recomputes every version
// (integration_test.cpp) to tell which one answered. mix64 is static: patch A reaches it by a
// reference record.
extern "C" {
__attribute__((noinline, used)) static uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	asm volatile("" : "+r"(x));
	return x;
}

// Version 1: FNV-1a with the standard basis, then mix64.
__attribute__((noinline)) uint64_t compute_reply(const unsigned char *data, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (size_t i = 0; i < len; i++) {
		h ^= data[i];
		h *= 0x100000001b3ULL;
	}
	return mix64(h);
}
}

namespace
{

constexpr int workers_default = 5;
std::atomic<long> served{0};
std::atomic<long> errors{0};
int epfd = -1;
std::mutex fd_mu;

#ifdef ATLAS_EXPLICIT
atlas::Runtime *runtime = nullptr;
#define POINT() atlas::quiescence_point()
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
#define POINT() ((void)0)
#define BLOCKING(call) (call)
#define REGISTER(name) pthread_setname_np(pthread_self(), name)
#endif

long now_ms()
{
	timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

std::atomic<bool> stalling{false}, released{false};

// Spins in user space until released: no quiescence point, no system call (clock_gettime is
// the vDSO's).
void stall()
{
	long until = now_ms() + 60000;
	stalling = true;
	while (!released.load() && now_ms() < until)
		asm volatile("pause" ::: "memory");
	stalling = false;
	released = false;
}

bool is(const unsigned char *buf, ssize_t n, const char *command)
{
	return static_cast<size_t>(n) == std::strlen(command) && std::memcmp(buf, command, n) == 0;
}

// Serves one datagram of connection `fd`; false when the connection is finished.
bool serve_one(int fd)
{
	unsigned char buf[512];
	ssize_t n = BLOCKING(recv(fd, buf, sizeof(buf), MSG_DONTWAIT));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return true;
	if (n <= 0) {
		if (n < 0)
			errors++;
		return false;
	}
	char reply[32];
	int len;
	if (is(buf, n, "STALL")) {
		stall();
		len = std::snprintf(reply, sizeof(reply), "stalled");
	} else if (is(buf, n, "STALLING?")) {
		len = std::snprintf(reply, sizeof(reply), "%s", stalling.load() ? "yes" : "no");
	} else if (is(buf, n, "RELEASE")) {
		released = true;
		len = std::snprintf(reply, sizeof(reply), "released");
	} else {
		uint64_t r = compute_reply(buf, static_cast<size_t>(n));
		len = std::snprintf(reply, sizeof(reply), "%016llx",
		                    static_cast<unsigned long long>(r));
	}
	if (send(fd, reply, static_cast<size_t>(len), MSG_NOSIGNAL) != len) {
		errors++;
		return false;
	}
	served++;
	return true;
}

void worker(int index)
{
	std::string name = "worker-" + std::to_string(index);
	REGISTER(name.c_str());
	for (;;) {
		POINT();
		epoll_event ev{};
		int n = BLOCKING(epoll_wait(epfd, &ev, 1, 1000));
		if (n != 1)
			continue;
		int fd = ev.data.fd;
		// Re-arming and closing under one lock: the kernel orders a re-arm before the next
		// event of that connection (maybe on another worker, which may close it), but TSan
		// does not see that order through epoll.
		if (serve_one(fd)) {
			ev.events = EPOLLIN | EPOLLONESHOT;
			std::lock_guard lock(fd_mu);
			if (epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev) != 0)
				errors++;
		} else {
			std::lock_guard lock(fd_mu);
			close(fd);
		}
	}
}

void acceptor(int listener)
{
	REGISTER("acceptor");
	for (;;) {
		POINT();
		int c = BLOCKING(accept4(listener, nullptr, nullptr, SOCK_CLOEXEC));
		if (c < 0) {
			if (errno != EINTR)
				errors++;
			continue;
		}
		epoll_event ev{};
		ev.events = EPOLLIN | EPOLLONESHOT;
		ev.data.fd = c;
		if (epoll_ctl(epfd, EPOLL_CTL_ADD, c, &ev) != 0) {
			errors++;
			close(c);
		}
	}
}

#ifdef ATLAS_EXPLICIT
// The real patch loader, stacking: the applied patches are passed as `earlier`, oldest first,
// and no reference is kept (as libatlas-preload.so does): the control server releases a patch
// whose apply did not take it.
atlas::control::Loaded load(const std::string &path)
{
	atlas::patch::LoadOptions options;
	for (const auto &c : runtime->applied_changes())
		if (auto lp = std::dynamic_pointer_cast<const atlas::patch::LoadedPatch>(c))
			options.earlier.push_back(std::move(lp));
	return atlas::patch::load_patch(path, options);
}
#endif

} // namespace

int main()
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, nullptr);
	signal(SIGPIPE, SIG_IGN);

	int workers = workers_default;
	if (const char *w = std::getenv("ATLAS_INTEG_WORKERS"))
		workers = std::max(1, std::atoi(w));
	const char *service = std::getenv("ATLAS_INTEG_SOCKET");
	if (!service || std::strlen(service) >= sizeof(sockaddr_un::sun_path)) {
		std::fprintf(stderr,
		             "integ_server: set ATLAS_INTEG_SOCKET to the service socket path\n");
		return 1;
	}

	std::string control_path;
#ifdef ATLAS_EXPLICIT
	atlas::RuntimeOptions options;
	// The event log, where the preload library writes it too.
	if (const char *log = std::getenv("ATLAS_EVENT_LOG"); log && *log)
		options.events.fd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	runtime = atlas::Runtime::create(std::move(options)).release();
	if (!runtime) {
		std::fprintf(stderr, "integ_server: creating the runtime failed\n");
		return 1;
	}
	// Threads that exist now (main, sanitizer helpers) never run patched code: main registers
	// below, the helpers are exempt.
	std::thread([] {}).join();
	if (auto *d = opendir("/proc/self/task")) {
		while (auto *e = readdir(d))
			if (long tid = std::strtol(e->d_name, nullptr, 10);
			    tid > 0 && tid != gettid())
				(void)runtime->exempt_thread(static_cast<pid_t>(tid));
		closedir(d);
	}
	REGISTER("main");
	atlas::control::ServerOptions so;
	if (const char *p = std::getenv("ATLAS_CONTROL_SOCKET"))
		so.path = p;
	so.loader = load;
	auto started = atlas::control::Server::start(*runtime, so);
	if (!started) {
		std::fprintf(stderr, "integ_server: control socket: %s\n",
		             started.error().message.c_str());
		return 1;
	}
	auto *server = std::move(started).value().release();
	control_path = server->path();
#else
	auto get_path = reinterpret_cast<const char *(*)(void)>(
	    dlsym(RTLD_DEFAULT, "atlas_preload_socket_path"));
	if (!get_path || !get_path()) {
		std::fprintf(stderr, "integ_server: not running under libatlas-preload.so\n");
		return 1;
	}
	control_path = get_path();
#endif

	epfd = epoll_create1(EPOLL_CLOEXEC);
	int listener = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	sockaddr_un addr{};
	addr.sun_family = AF_UNIX;
	std::strcpy(addr.sun_path, service);
	unlink(service);
	if (epfd < 0 || listener < 0 ||
	    bind(listener, reinterpret_cast<sockaddr *>(&addr), sizeof(addr)) != 0 ||
	    listen(listener, 64) != 0) {
		std::fprintf(stderr, "integ_server: service socket %s: %s\n", service,
		             std::strerror(errno));
		return 1;
	}
	std::thread(acceptor, listener).detach();
	for (int i = 0; i < workers; i++)
		std::thread(worker, i).detach();

	std::printf("ready %s %s\n", control_path.c_str(), service);
	std::fflush(stdout);
	int sig = 0;
	for (;;) {
		int r = BLOCKING(sigwait(&set, &sig));
		if (r == 0 && sig == SIGTERM)
			break;
	}
	std::printf("served %ld errors %ld\n", served.load(), errors.load());
	std::fflush(stdout);
	unlink(service);
#ifdef ATLAS_EXPLICIT
	server->unlink_socket();
#endif
	_exit(0);
}
