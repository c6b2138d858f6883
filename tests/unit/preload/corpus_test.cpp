// Servers written in other people's idioms (tests/unit/preload/corpus/), each run unmodified
// under the preload library and patched in global mode on the first try while a client sends a
// steady request stream (servers we did not write must patch as ours do): every request is answered
// exactly once, by the version in effect (reply_for(n) = 2n before the patch, 3n while it is
// applied), and the largest gap between replies during the transitions is reported. Plain build
// only (LD_PRELOAD).
//
// The same binary runs in the guest on the views kernel in wait-free mode
// (guest.corpus_wait_free): ATLAS_CORPUS_MODE=wait-free, and ATLAS_CORPUS_DIR=<dir> holding
// the servers, their patches, the preload library and the CLI under their build names.
#include "spawn.hpp"

#include <arpa/inet.h>
#include <atomic>
#include <chrono>
#include <gtest/gtest.h>
#include <iostream>
#include <netinet/in.h>
#include <nlohmann/json.hpp>
#include <sys/socket.h>
#include <thread>

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace
{

// A file of the test: from ATLAS_CORPUS_DIR when set (the guest), else where the build put it.
std::string file(const char *built)
{
	const char *dir = std::getenv("ATLAS_CORPUS_DIR");
	if (!dir || !*dir)
		return built;
	const std::string path = built;
	return std::string(dir) + path.substr(path.rfind('/'));
}

// Apply-and-revert rounds: 3, or ATLAS_CORPUS_ROUNDS (the guest, where each costs seconds).
int rounds()
{
	const char *r = std::getenv("ATLAS_CORPUS_ROUNDS");
	return r && std::atoi(r) > 0 ? std::atoi(r) : 3;
}

std::string mode()
{
	const char *m = std::getenv("ATLAS_CORPUS_MODE");
	return m && *m ? m : "global";
}

// One connection, one request in flight, a request every millisecond: each reply must be 2n or
// 3n for its own n. Records the largest time between two replies.
class SteadyClient
{
public:
	explicit SteadyClient(int port)
	{
		fd_ = socket(AF_INET, SOCK_STREAM, 0);
		sockaddr_in a{};
		a.sin_family = AF_INET;
		a.sin_port = htons(static_cast<uint16_t>(port));
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (connect(fd_, reinterpret_cast<sockaddr *>(&a), sizeof(a)) != 0)
			error_ = "connect failed";
		else
			thread_ = std::thread([this] { run(); });
	}
	~SteadyClient()
	{
		stop();
		close(fd_);
	}
	void stop()
	{
		stop_ = true;
		if (thread_.joinable())
			thread_.join();
	}
	long replies(int version) const
	{
		return by_version_[version].load();
	}
	long answered() const
	{
		return by_version_[2].load() + by_version_[3].load();
	}
	std::chrono::microseconds largest_gap() const
	{
		return std::chrono::microseconds(largest_gap_us_.load());
	}
	const std::string &error() const
	{
		return error_;
	}

private:
	void run()
	{
		auto last = Clock::now();
		std::string pending;
		for (long n = 1; !stop_; n++) {
			const std::string request = std::to_string(n) + "\n";
			if (send(fd_, request.data(), request.size(), MSG_NOSIGNAL) !=
			    static_cast<ssize_t>(request.size())) {
				error_ = "send failed";
				return;
			}
			// The reply: one line.
			while (pending.find('\n') == std::string::npos) {
				char buf[256];
				const ssize_t got = recv(fd_, buf, sizeof(buf), 0);
				if (got <= 0) {
					error_ = "connection closed after " +
					         std::to_string(n - 1) + " replies";
					return;
				}
				pending.append(buf, static_cast<size_t>(got));
			}
			const auto eol = pending.find('\n');
			const long reply = std::stol(pending.substr(0, eol));
			pending.erase(0, eol + 1);
			const auto now = Clock::now();
			const auto gap =
			    std::chrono::duration_cast<std::chrono::microseconds>(now - last)
			        .count();
			if (gap > largest_gap_us_)
				largest_gap_us_ = gap;
			last = now;
			if (reply == 2 * n)
				by_version_[2]++;
			else if (reply == 3 * n)
				by_version_[3]++;
			else {
				error_ = "request " + std::to_string(n) + " got " +
				         std::to_string(reply);
				return;
			}
			std::this_thread::sleep_for(1ms);
		}
	}

	int fd_ = -1;
	std::thread thread_;
	std::atomic<bool> stop_{false};
	std::atomic<long> by_version_[4] = {0, 0, 0, 0};
	std::atomic<long> largest_gap_us_{0};
	std::string error_;
};

// Starts `server` under the preload, sends the steady stream over 4 connections, applies and
// reverts the corpus patch rounds() times (in mode(); first try each, deadline 3 s), and checks
// that replies came from both versions and none was lost or wrong.
void patch_under_load(const char *name, const std::string &server, const std::string &patch)
{
	char tmpl[] = "/tmp/atlas-corpus-XXXXXX";
	ASSERT_NE(mkdtemp(tmpl), nullptr);
	const std::string dir = tmpl;
	setenv("XDG_RUNTIME_DIR", dir.c_str(), 1);
	atlas_test::Process target;
	ASSERT_TRUE(
	    atlas_test::start_process(target, server, {"LD_PRELOAD=" + file(ATLAS_PRELOAD_LIB)}));
	const std::string line = target.socket; // "<socket> <port>"
	const auto space = line.rfind(' ');
	ASSERT_NE(space, std::string::npos) << "ready line: " << line;
	const int port = std::stoi(line.substr(space + 1));
	const std::string pid = std::to_string(target.pid);
	std::string out;
	auto cli = [&](const std::string &args) {
		return atlas_test::run_command(file(ATLAS_CLI) + " " + args + " 2>&1", &out);
	};
	std::vector<std::unique_ptr<SteadyClient>> clients;
	for (int i = 0; i < 4; i++)
		clients.push_back(std::make_unique<SteadyClient>(port));
	std::this_thread::sleep_for(300ms);
	std::vector<double> transition_ms;
	for (int round = 0; round < rounds(); round++) {
		ASSERT_EQ(cli("--json apply " + pid + " " + patch + " --mode " + mode() +
		              " --deadline 3000"),
		          0)
		    << name << ", round " << round << ": " << out;
		transition_ms.push_back(
		    nlohmann::json::parse(out)["report"].value("duration_ns", 0.0) / 1e6);
		std::this_thread::sleep_for(200ms);
		ASSERT_EQ(cli("--json revert " + pid + " corpus-fix --mode " + mode() +
		              " --deadline 3000"),
		          0)
		    << name << ", round " << round << ": " << out;
		transition_ms.push_back(
		    nlohmann::json::parse(out)["report"].value("duration_ns", 0.0) / 1e6);
		std::this_thread::sleep_for(200ms);
	}
	long answered = 0, v2 = 0, v3 = 0;
	std::chrono::microseconds gap{0};
	for (auto &c : clients) {
		c->stop();
		EXPECT_EQ(c->error(), "") << name;
		answered += c->answered();
		v2 += c->replies(2);
		v3 += c->replies(3);
		gap = std::max(gap, c->largest_gap());
	}
	EXPECT_GT(v2, 0) << name;
	EXPECT_GT(v3, 0) << name << ": no reply came from the patched version";
	const std::string last = target.stop();
	EXPECT_EQ(last, "served " + std::to_string(answered)) << name << ": replies lost";
	double worst = 0;
	for (double ms : transition_ms)
		worst = std::max(worst, ms);
	std::cout << name << ": " << answered << " replies (" << v2 << " unpatched, " << v3
	          << " patched), " << 2 * rounds() << " " << mode() << " transitions (longest "
	          << worst << " ms), largest gap between replies " << gap.count() / 1000.0 << " ms"
	          << std::endl;
	::testing::Test::RecordProperty("largest_gap_us", std::to_string(gap.count()));
	std::system(("rm -rf " + dir).c_str());
}

TEST(PreloadCorpus, LibeventServerPatchedUnderLoad)
{
	patch_under_load("libevent", file(ATLAS_CORPUS_LIBEVENT),
	                 file(ATLAS_CORPUS_LIBEVENT_PATCH));
}

TEST(PreloadCorpus, GlibServerPatchedUnderLoad)
{
	patch_under_load("glib", file(ATLAS_CORPUS_GLIB), file(ATLAS_CORPUS_GLIB_PATCH));
}

} // namespace
