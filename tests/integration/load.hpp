// The integration server's load (integration_test.cpp, and the guest's wait-free run,
// tests/guest/runtime/server_wait_free.cpp): the three versions of compute_reply recomputed,
// the SOCK_SEQPACKET client, and client connections sending requests back to back while
// checking that every reply comes from one of the versions.
#ifndef ATLAS_TESTS_INTEGRATION_LOAD_HPP
#define ATLAS_TESTS_INTEGRATION_LOAD_HPP

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <poll.h>
#include <string>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace atlas_integ
{

// --- the three versions of compute_reply, recomputed ------------------------------------------

inline uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

inline uint64_t fnv(const unsigned char *data, size_t len, uint64_t h)
{
	for (size_t i = 0; i < len; i++) {
		h ^= data[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

inline uint64_t version_value(int version, const unsigned char *data, size_t len)
{
	switch (version) {
	case 1:
		return mix64(fnv(data, len, 0xcbf29ce484222325ULL));
	case 2:
		return mix64(fnv(data, len, 0x9e3779b97f4a7c15ULL)) ^ 0x2222222222222222ULL;
	case 3: {
		uint64_t h = mix64(fnv(data, len, 0x9e3779b97f4a7c15ULL));
		return (h * 3 + 0x33) ^ (h >> 29);
	}
	}
	return 0;
}

inline int64_t now_ns()
{
	return std::chrono::duration_cast<std::chrono::nanoseconds>(
	           std::chrono::steady_clock::now().time_since_epoch())
	    .count();
}

inline int connect_seqpacket(const std::string &path)
{
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	sockaddr_un a{};
	a.sun_family = AF_UNIX;
	std::strncpy(a.sun_path, path.c_str(), sizeof(a.sun_path) - 1);
	if (fd >= 0 && connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof(a)) == 0)
		return fd;
	if (fd >= 0)
		close(fd);
	return -1;
}

// One request/response exchange with a bounded wait; the reply's text or "" on any failure
// (`error` says which).
inline std::string exchange(int fd, const void *req, size_t len, std::string &error, int timeout_ms)
{
	if (send(fd, req, len, MSG_NOSIGNAL) != static_cast<ssize_t>(len)) {
		error = std::string("send: ") + std::strerror(errno);
		return {};
	}
	pollfd p{fd, POLLIN, 0};
	int r = poll(&p, 1, timeout_ms);
	if (r != 1) {
		error = r == 0 ? "no reply within " + std::to_string(timeout_ms) + " ms"
		               : std::string("poll: ") + std::strerror(errno);
		return {};
	}
	char buf[64];
	ssize_t n = recv(fd, buf, sizeof(buf), 0);
	if (n <= 0) {
		error = n == 0 ? "connection closed by the server"
		               : std::string("recv: ") + std::strerror(errno);
		return {};
	}
	return std::string(buf, static_cast<size_t>(n));
}

// --- the load ----------------------------------------------------------------------------------

struct Sample {
	int64_t sent_ns, received_ns;
	int version; // 1..3, or 0: the reply matched no version
};

struct Client {
	std::mutex mu;
	std::vector<Sample> samples;
	std::string error; // first failure: the client stops
	std::string first_mismatch;
};

// Sends requests back to back, pausing `pause` between them (on 2 cores the patcher thread,
// which loads the patch, needs some CPU), and checks every reply.
inline void client_loop(Client &c, const std::string &service, unsigned seed,
                        std::chrono::microseconds pause, std::atomic<bool> &stop)
{
	int fd = connect_seqpacket(service);
	if (fd < 0) {
		std::lock_guard lock(c.mu);
		c.error = "connect to " + service + ": " + std::strerror(errno);
		return;
	}
	uint64_t x = 0x853c49e6748fea9bULL ^ seed;
	unsigned char req[256];
	while (!stop.load(std::memory_order_relaxed)) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		size_t len = 8 + x % 200;
		for (size_t i = 0; i < len; i++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			req[i] = static_cast<unsigned char>(x);
		}
		std::string error;
		int64_t sent = now_ns();
		std::string reply = exchange(fd, req, len, error, 20000);
		int64_t received = now_ns();
		if (reply.empty()) {
			std::lock_guard lock(c.mu);
			c.error = error;
			break;
		}
		int version = 0;
		unsigned long long value = 0;
		if (reply.size() == 16 && std::sscanf(reply.c_str(), "%16llx", &value) == 1)
			for (int v = 1; v <= 3 && !version; v++)
				if (version_value(v, req, len) == value)
					version = v;
		std::lock_guard lock(c.mu);
		if (!version && c.first_mismatch.empty())
			c.first_mismatch = "reply '" + reply + "' to a request of " +
			                   std::to_string(len) + " bytes matches no version";
		c.samples.push_back({sent, received, version});
		if (pause.count() > 0)
			std::this_thread::sleep_for(pause);
	}
	close(fd);
}

// `n` clients running client_loop() against `service` until stop_and_join().
struct ClientPool {
	std::atomic<bool> stop{false};
	std::vector<std::unique_ptr<Client>> clients;
	std::vector<std::thread> threads;

	ClientPool(int n, const std::string &service, std::chrono::microseconds pause)
	{
		for (int i = 0; i < n; i++) {
			clients.push_back(std::make_unique<Client>());
			threads.emplace_back(client_loop, std::ref(*clients.back()), service,
			                     static_cast<unsigned>(i + 1), pause, std::ref(stop));
		}
	}
	void stop_and_join()
	{
		stop = true;
		for (auto &t : threads)
			t.join();
		threads.clear();
	}
	~ClientPool()
	{
		stop_and_join();
	}
};

// Whether a child process still runs (not even a zombie: kill(pid, 0) would accept one). Once
// it has been reaped, `status` holds its wait status; until then -1.
struct ChildWatch {
	pid_t pid;
	int status = -1;

	bool alive()
	{
		if (status != -1)
			return false;
		int s = 0;
		pid_t r = waitpid(pid, &s, WNOHANG);
		if (r == pid)
			status = s;
		return r == 0;
	}
};

} // namespace atlas_integ

#endif
