// The load generator against a fake memcached that can stall, corrupt values and drop
// connections: a stall of known length must show in the percentiles (no coordinated
// omission), wrong replies and lost requests must be counted, and the protocol parser must
// take replies split anywhere.
#include "engine.hpp"
#include "memcache.hpp"

#include <arpa/inet.h>
#include <atomic>
#include <chrono>
#include <cstring>
#include <gtest/gtest.h>
#include <map>
#include <mutex>
#include <netinet/in.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

using namespace atlas::loadgen;
using namespace std::chrono_literals;

namespace
{

std::uint64_t mono_ns()
{
	return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
	                                      std::chrono::steady_clock::now().time_since_epoch())
	                                      .count());
}

// A memcached that speaks get (one or more keys) and set, a thread per connection.
class FakeMemcached
{
public:
	std::atomic<std::uint64_t> stall_at{0};  // monotonic ns; 0: never
	std::atomic<std::uint64_t> stall_for{0}; // ns every request waits from stall_at on
	std::atomic<bool> corrupt{false};        // get replies carry a wrong byte
	std::atomic<unsigned> close_after{0};    // requests per connection before closing it
	std::atomic<unsigned> handled{0};

	FakeMemcached()
	{
		listener_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		sockaddr_in a{};
		a.sin_family = AF_INET;
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		socklen_t len = sizeof(a);
		if (bind(listener_, reinterpret_cast<sockaddr *>(&a), sizeof(a)) != 0 ||
		    listen(listener_, 64) != 0 ||
		    getsockname(listener_, reinterpret_cast<sockaddr *>(&a), &len) != 0)
			throw std::runtime_error("fake memcached: cannot listen");
		port = ntohs(a.sin_port);
		acceptor_ = std::thread([this] { accept_loop(); });
	}
	~FakeMemcached()
	{
		stopping_ = true;
		shutdown(listener_, SHUT_RDWR);
		acceptor_.join();
		{
			std::lock_guard lock(mu_);
			for (int fd : fds_)
				shutdown(fd, SHUT_RDWR);
		}
		for (auto &t : conns_)
			t.join();
		close(listener_);
	}
	std::size_t stored()
	{
		std::lock_guard lock(mu_);
		return data_.size();
	}

	std::uint16_t port = 0;

private:
	void accept_loop()
	{
		for (;;) {
			const int fd = accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
			if (fd < 0) {
				if (stopping_)
					return;
				continue;
			}
			std::lock_guard lock(mu_);
			fds_.push_back(fd);
			conns_.emplace_back([this, fd] { serve(fd); });
		}
	}

	void wait_out_stall()
	{
		const std::uint64_t at = stall_at.load();
		if (at == 0)
			return;
		const std::uint64_t until = at + stall_for.load();
		const std::uint64_t now = mono_ns();
		if (now >= at && now < until)
			std::this_thread::sleep_for(std::chrono::nanoseconds(until - now));
	}

	void serve(int fd)
	{
		std::string in;
		char buf[65536];
		unsigned requests = 0;
		for (;;) {
			const auto eol = in.find("\r\n");
			if (eol == std::string::npos) {
				const ssize_t n = recv(fd, buf, sizeof(buf), 0);
				if (n <= 0)
					break;
				in.append(buf, static_cast<std::size_t>(n));
				continue;
			}
			const std::string line = in.substr(0, eol);
			std::string reply;
			std::size_t used = eol + 2;
			if (line.starts_with("set ")) {
				char key[64];
				unsigned flags = 0, exptime = 0;
				std::size_t bytes = 0;
				std::sscanf(line.c_str(), "set %63s %u %u %zu", key, &flags,
				            &exptime, &bytes);
				if (in.size() < used + bytes + 2) {
					const ssize_t n = recv(fd, buf, sizeof(buf), 0);
					if (n <= 0)
						break;
					in.append(buf, static_cast<std::size_t>(n));
					continue;
				}
				std::lock_guard lock(mu_);
				data_[key] = in.substr(used, bytes);
				used += bytes + 2;
				reply = "STORED\r\n";
			} else if (line.starts_with("get ")) {
				std::size_t pos = 4;
				while (pos < line.size()) {
					auto sp = line.find(' ', pos);
					if (sp == std::string::npos)
						sp = line.size();
					const std::string key = line.substr(pos, sp - pos);
					pos = sp + 1;
					std::string value;
					{
						std::lock_guard lock(mu_);
						auto it = data_.find(key);
						if (it == data_.end())
							continue;
						value = it->second;
					}
					if (corrupt && !value.empty())
						value[0] = '#';
					reply += "VALUE " + key + " 0 " +
					         std::to_string(value.size()) + "\r\n" + value +
					         "\r\n";
				}
				reply += "END\r\n";
			} else {
				reply = "ERROR\r\n";
			}
			in.erase(0, used);
			wait_out_stall();
			handled++;
			if (send(fd, reply.data(), reply.size(), MSG_NOSIGNAL) < 0)
				break;
			if (close_after && ++requests >= close_after)
				break;
		}
		close(fd);
		std::lock_guard lock(mu_);
		fds_.erase(std::find(fds_.begin(), fds_.end(), fd));
	}

	int listener_ = -1;
	std::atomic<bool> stopping_{false};
	std::thread acceptor_;
	std::mutex mu_;
	std::vector<int> fds_;
	std::vector<std::thread> conns_;
	std::map<std::string, std::string> data_;
};

MemcacheMix small_mix()
{
	MemcacheMix mix;
	mix.keys = 500;
	mix.value_size = 64;
	mix.set_fraction = 0.1;
	mix.long_fraction = 0.02;
	mix.long_keys = 20;
	return mix;
}

Options options_for(const FakeMemcached &server)
{
	Options o;
	o.port = server.port;
	o.connections = 4;
	o.threads = 2;
	o.poisson = false;
	o.drain_s = 3;
	return o;
}

ProtocolFactory factory_for(const MemcacheMix &mix)
{
	return [mix] { return std::make_unique<Memcache>(mix); };
}

} // namespace

TEST(Loadgen, SetupStoresEveryKey)
{
	FakeMemcached server;
	const auto mix = small_mix();
	std::string error;
	ASSERT_TRUE(run_setup(options_for(server), factory_for(mix), error)) << error;
	EXPECT_EQ(server.stored(), mix.keys);
}

// The self-test the evaluation's numbers rest on: every request due during a 300 ms stall
// waits for its end, so about rate x 150 ms of them are 150 ms late or more, and the largest
// latency is the stall. A closed-loop generator would show one slow request per connection.
TEST(Loadgen, AStallOfKnownLengthShowsInThePercentiles)
{
	FakeMemcached server;
	const auto mix = small_mix();
	auto o = options_for(server);
	o.rate = 2000;
	o.duration_s = 3;
	std::string error;
	ASSERT_TRUE(run_setup(o, factory_for(mix), error)) << error;
	constexpr std::uint64_t stall = 300'000'000;
	server.stall_for = stall;
	server.stall_at = mono_ns() + 1'200'000'000; // inside the second interval
	Result r;
	ASSERT_TRUE(run_load(o, factory_for(mix), r, error)) << error;
	EXPECT_EQ(r.wrong + r.errors + r.unanswered, 0u)
	    << (r.messages.empty() ? "" : r.messages[0]);
	EXPECT_EQ(r.answered, r.sent);
	EXPECT_NEAR(static_cast<double>(r.sent), 6000, 60);
	EXPECT_GE(r.latency.max(), stall * 9 / 10);
	EXPECT_LT(r.latency.max(), stall + 250'000'000);
	const double late = static_cast<double>(r.latency.count_at_or_above(stall / 2));
	EXPECT_GT(late, 0.6 * 2000 * 0.15) << "requests 150 ms late or more";
	EXPECT_LT(late, 1.6 * 2000 * 0.15) << "requests 150 ms late or more";
	EXPECT_GE(r.latency.quantile(0.99), stall / 2);
	// Latency over time: the stall is in the interval its requests were due in.
	ASSERT_EQ(r.intervals.size(), 3u);
	EXPECT_GE(r.intervals[1].max(), stall * 9 / 10);
	EXPECT_LT(r.intervals[0].quantile(0.5), stall / 10);
	// Per kind: every kind was sent and answered.
	ASSERT_EQ(r.kinds.size(), 3u);
	for (const auto &k : r.kinds)
		EXPECT_GT(k.answered, 0u) << k.name;
}

TEST(Loadgen, WrongValuesAreCounted)
{
	FakeMemcached server;
	const auto mix = small_mix();
	auto o = options_for(server);
	o.rate = 500;
	o.duration_s = 0.5;
	std::string error;
	ASSERT_TRUE(run_setup(o, factory_for(mix), error)) << error;
	server.corrupt = true;
	Result r;
	ASSERT_TRUE(run_load(o, factory_for(mix), r, error)) << error;
	EXPECT_GT(r.wrong, 0u);
	EXPECT_EQ(r.errors + r.unanswered, 0u);
	// Sets still succeed; every get is wrong.
	EXPECT_EQ(r.answered, r.kinds[Memcache::set].answered);
	ASSERT_FALSE(r.messages.empty());
	EXPECT_NE(r.messages[0].find("wrong value"), std::string::npos) << r.messages[0];
}

TEST(Loadgen, LostConnectionsAreCountedAndReopened)
{
	FakeMemcached server;
	const auto mix = small_mix();
	auto o = options_for(server);
	o.rate = 1000;
	o.duration_s = 1;
	std::string error;
	ASSERT_TRUE(run_setup(o, factory_for(mix), error)) << error;
	server.close_after = 50;
	Result r;
	ASSERT_TRUE(run_load(o, factory_for(mix), r, error)) << error;
	EXPECT_GT(r.reconnects, 0u);
	EXPECT_GT(r.answered, 0u);
	EXPECT_EQ(r.answered + r.wrong + r.errors + r.unanswered, r.sent);
}

TEST(Loadgen, NoServerIsAClearError)
{
	Options o;
	o.port = 1; // nothing listens there
	std::string error;
	Result r;
	EXPECT_FALSE(run_load(o, factory_for(small_mix()), r, error));
	EXPECT_NE(error.find("cannot connect to 127.0.0.1:1"), std::string::npos) << error;
}

TEST(MemcacheProtocol, RepliesSplitAnywhereParseTheSame)
{
	Memcache mc(small_mix());
	Request req;
	std::mt19937_64 rng(3);
	// A three-key get whose middle key is a miss, and a full one.
	for (int missing = 0; missing < 2; missing++) {
		req.kind = Memcache::multi_get;
		req.first_key = 7;
		req.keys = 3;
		std::string reply;
		for (unsigned i = 0; i < 3; i++) {
			if (missing && i == 1)
				continue;
			const auto v = mc.value_of(7 + i);
			reply += "VALUE " + Memcache::key_name(7 + i) + " 0 " +
			         std::to_string(v.size()) + "\r\n" + v + "\r\n";
		}
		reply += "END\r\n";
		for (std::size_t cut = 0; cut < reply.size(); cut++) {
			std::size_t consumed = 0;
			std::string why;
			EXPECT_EQ(
			    mc.parse(req, std::string_view(reply).substr(0, cut), consumed, why),
			    ReplyStatus::incomplete)
			    << "cut at " << cut;
		}
		std::size_t consumed = 0;
		std::string why;
		const auto status = mc.parse(req, reply + "VALUE", consumed, why);
		EXPECT_EQ(status, missing ? ReplyStatus::wrong : ReplyStatus::ok) << why;
		EXPECT_EQ(consumed, reply.size());
		if (missing) {
			EXPECT_NE(why.find("1 not found"), std::string::npos) << why;
		}
	}
}

TEST(MemcacheProtocol, MalformedRepliesAreWrongOrBroken)
{
	Memcache mc(small_mix());
	Request get;
	get.kind = Memcache::get;
	get.first_key = 1;
	get.keys = 1;
	Request set;
	set.kind = Memcache::set;
	set.first_key = 1;
	std::size_t consumed = 0;
	std::string why;
	EXPECT_EQ(mc.parse(get, "SERVER_ERROR out of memory\r\n", consumed, why),
	          ReplyStatus::wrong);
	EXPECT_EQ(mc.parse(get, "VALUE k00000002 0 1\r\nx\r\nEND\r\n", consumed, why),
	          ReplyStatus::broken);
	EXPECT_EQ(mc.parse(get, "HELLO\r\n", consumed, why), ReplyStatus::broken);
	EXPECT_EQ(mc.parse(get, "VALUE k00000001 0 zz\r\n", consumed, why), ReplyStatus::broken);
	EXPECT_EQ(mc.parse(set, "NOT_STORED\r\n", consumed, why), ReplyStatus::broken);
	EXPECT_EQ(mc.parse(set, "STORED\r\n", consumed, why), ReplyStatus::ok);
	EXPECT_EQ(consumed, 8u);
	// The values differ between keys.
	EXPECT_NE(mc.value_of(1), mc.value_of(2));
}
