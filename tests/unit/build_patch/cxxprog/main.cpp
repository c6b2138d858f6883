// Runs under libatlas-preload.so: prints "ready <socket>", then "state ..." whenever the state
// of the patched functions changes (worker threads call them all the time and print "error"
// on a result that is neither the original's nor a fix's), and "bye" on SIGTERM.
#include "cxxprog.hpp"

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <dlfcn.h>
#include <pthread.h>
#include <stdexcept>
#include <string>
#include <thread>
#include <time.h>
#include <vector>

namespace
{

std::string level(int x)
{
	try {
		return std::to_string(parse_level(x));
	} catch (const std::out_of_range &e) {
		return std::string("caught:") + e.what();
	}
}

std::string state()
{
	auto square = make_square(3);
	const std::function<int(int)> scale = make_scaler();
	return "state " + std::to_string(Accumulator<int>{40}.add(2)) + " " +
	       std::to_string(total_area(*square, 1)) + " " + std::to_string(scale(5)) + " " +
	       level(7) + " " + std::to_string(session_id());
}

void sleep_ms(int ms)
{
	timespec ts = {0, ms * 1000 * 1000};
	nanosleep(&ts, nullptr);
}

void *reporter(void *)
{
	std::string last;
	for (;;) {
		std::string now = state();
		if (now != last) {
			std::printf("%s\n", now.c_str());
			std::fflush(stdout);
			last = now;
		}
		sleep_ms(2);
	}
	return nullptr;
}

// Load: the same calls from several threads; a result that is neither the original's nor a
// patched one is an error.
void *worker(void *)
{
	for (;;) {
		auto square = make_square(3);
		const int a = Accumulator<int>{40}.add(2), t = total_area(*square, 1),
		          s = make_scaler()(5), id = session_id();
		const std::string l = level(7);
		if ((a != 42 && a != 43) || (t != 10 && t != 11) || (s != 10 && s != 15) ||
		    (id != 1 && id != 101) || (l != "7" && l.rfind("caught:", 0) != 0)) {
			std::printf("error %d %d %d %s %d\n", a, t, s, l.c_str(), id);
			std::fflush(stdout);
		}
		sleep_ms(1);
	}
	return nullptr;
}

} // namespace

int main()
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, nullptr);
	auto socket_path =
	    reinterpret_cast<const char *(*)()>(dlsym(RTLD_DEFAULT, "atlas_preload_socket_path"));
	if (!socket_path || !socket_path()) {
		std::fprintf(stderr, "not running under libatlas-preload.so\n");
		return 1;
	}
	std::printf("ready %s\n", socket_path());
	std::fflush(stdout);
	pthread_t t;
	pthread_create(&t, nullptr, reporter, nullptr);
	for (int i = 0; i < 3; i++) {
		pthread_t w;
		pthread_create(&w, nullptr, worker, nullptr);
	}
	int sig;
	while (sigwait(&set, &sig) != 0 || sig != SIGTERM) {
	}
	std::printf("bye\n");
	std::fflush(stdout);
	return 0;
}
