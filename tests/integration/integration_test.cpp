// Integration test (docs/live-patching.md, "Testing", integration.*): a multi-threaded server
// (server.cpp) under continuous load from several client connections is patched, re-patched,
// stacked, reverted and refused by a deadline with the atlas CLI, in global mode, while every
// reply is checked against the versions that can have been in effect while it was in flight.
//
//  - integration.Explicit.*: integ_server_explicit (own Runtime, control Server and patch
//    loader): plain, ASan+UBSan and TSan builds.
//  - integration.Preload.*: integ_server_plain under LD_PRELOAD=libatlas-preload.so: plain
//    build only (the sanitizer runtimes cannot be preloaded around).
//
// Versions: 1 is the server's own compute_reply, 2 is patch A (patches/v2.c), 3 is patch B
// (patches/v3.c, stacked on A). The reply to a request identifies its version exactly.
#include "../unit/preload/spawn.hpp"
#include "load.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <gtest/gtest.h>
#include <iterator>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <poll.h>
#include <set>
#include <string>
#include <sys/socket.h>
#include <sys/un.h>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using namespace atlas_integ;

namespace
{

// --- the timeline of operations ------------------------------------------------------------------

struct Op {
	std::string what;
	int64_t start_ns, end_ns;
	int before, after; // the version in effect before and after the operation
	int code;          // the CLI's exit status
};

// The versions a reply may come from: the version in effect when the request was sent, and
// every version that was or may have become in effect until the reply was received.
// `ops` are sequential (one ends before the next starts), so sorted by both ends.
std::set<int> allowed(const std::vector<Op> &ops, int64_t sent, int64_t received)
{
	auto it = std::partition_point(ops.begin(), ops.end(),
	                               [&](const Op &op) { return op.end_ns < sent; });
	std::set<int> v{it == ops.begin() ? 1 : std::prev(it)->after};
	for (; it != ops.end() && it->start_ns <= received; ++it) {
		v.insert(it->before);
		v.insert(it->after);
	}
	return v;
}

struct Scenario {
	std::string server;
	std::vector<std::string> env;
	std::string patch_a, patch_b;
	std::chrono::seconds duration{12};
	int clients = 4;
	std::chrono::microseconds pause{200}; // per client, between a reply and its next request
	int min_rounds = 3;                   // at least, even beyond `duration`
	int workers = 5;
};

std::string cli(const std::string &args)
{
	return std::string(ATLAS_CLI) + " " + args;
}

int run(const std::string &args, std::string *out = nullptr)
{
	return atlas_test::run_command(cli(args), out);
}

std::string identity_of(const std::string &patch)
{
	std::string out;
	if (atlas_test::run_command(std::string(ATLAS_MKPATCH) + " --inspect " + patch + " --json",
	                            &out) != 0)
		return {};
	auto j = nlohmann::json::parse(out, nullptr, false);
	return j.is_object() && j["identity"].is_string() ? j["identity"].get<std::string>() : "";
}

void run_scenario(const Scenario &s)
{
	char tmpl[] = "/tmp/atlas-integ-XXXXXX";
	ASSERT_NE(mkdtemp(tmpl), nullptr);
	const std::string dir = tmpl;
	setenv("XDG_RUNTIME_DIR", dir.c_str(), 1);
	const std::string service = dir + "/service.sock";
	std::vector<std::string> env = s.env;
	env.push_back("ATLAS_INTEG_SOCKET=" + service);
	env.push_back("ATLAS_INTEG_WORKERS=" + std::to_string(s.workers));
	const std::string event_log = dir + "/events.jsonl";
	env.push_back("ATLAS_EVENT_LOG=" + event_log);

	const std::string id_a = identity_of(s.patch_a), id_b = identity_of(s.patch_b);
	ASSERT_FALSE(id_a.empty()) << s.patch_a;
	ASSERT_FALSE(id_b.empty()) << s.patch_b;

	atlas_test::Process server;
	ASSERT_TRUE(atlas_test::start_process(server, s.server, env)) << s.server;
	ASSERT_EQ(server.socket, dir + "/atlas/" + std::to_string(server.pid) + ".sock " + service);
	const std::string pid = std::to_string(server.pid);

	// Every application thread registered (main, acceptor, workers) before the first request:
	// an unknown thread would make transitions refuse.
	size_t threads = 0;
	for (int i = 0; i < 1000 && threads < static_cast<size_t>(s.workers) + 2; i++) {
		std::string out;
		run("--json status " + pid, &out);
		auto j = nlohmann::json::parse(out, nullptr, false);
		threads = j.is_object() ? j["status"]["threads"].size() : 0;
		if (threads < static_cast<size_t>(s.workers) + 2)
			std::this_thread::sleep_for(10ms);
	}
	ASSERT_EQ(threads, static_cast<size_t>(s.workers) + 2);

	ClientPool pool(s.clients, service, s.pause);
	auto &clients = pool.clients;
	ChildWatch watch{server.pid};

	std::vector<Op> ops;
	int version = 1;
	struct OpStats {
		int count = 0;
		int64_t total_ns = 0, max_ns = 0;
	};
	std::map<std::string, OpStats> op_counts;
	bool stop_rounds = false;
	long extra_requests = 0; // the deadline round's own requests, also served
	size_t live_checked = 0;

	// After an operation: every client must complete three more exchanges sent after it ended,
	// each answered by `expected` only.
	auto settle = [&](int expected, int64_t since, const std::string &after) {
		const auto limit = std::chrono::steady_clock::now() + 20s;
		for (auto &c : clients) {
			for (;;) {
				size_t fresh = 0;
				{
					std::lock_guard lock(c->mu);
					ASSERT_TRUE(c->error.empty())
					    << "after " << after << ": " << c->error;
					for (auto it = c->samples.rbegin();
					     it != c->samples.rend() && it->sent_ns > since; ++it) {
						fresh++;
						ASSERT_EQ(it->version, expected)
						    << "(0: the reply matches no version) after "
						    << after << ": a request sent "
						    << (it->sent_ns - since) / 1000
						    << " us after it ended";
					}
				}
				if (fresh >= 3) {
					live_checked += fresh;
					break;
				}
				ASSERT_LT(std::chrono::steady_clock::now(), limit)
				    << "the load stalled after " << after;
				std::this_thread::sleep_for(2ms);
			}
		}
	};
	// One CLI operation: its exit status must be `code`; the version becomes `after`.
	auto op = [&](const std::string &what, const std::string &args, int code, int after,
	              const std::string &must_say = {}) -> std::string {
		std::string out;
		if (::testing::Test::HasFatalFailure())
			return out;
		int64_t start = now_ns();
		int r = run(args, &out);
		int64_t end = now_ns();
		ops.push_back({what, start, end, version, after, r});
		OpStats &stats = op_counts[what];
		stats.count++;
		stats.total_ns += end - start;
		stats.max_ns = std::max(stats.max_ns, end - start);
		EXPECT_EQ(r, code) << what << ": atlas " << args << "\n" << out;
		if (!must_say.empty()) {
			EXPECT_NE(out.find(must_say), std::string::npos) << what << "\n" << out;
		}
		EXPECT_TRUE(watch.alive())
		    << "the server died during " << what << ", status " << watch.status;
		if (r != code)
			stop_rounds = true;
		version = after;
		settle(after, end, what);
		return out;
	};

	const std::string a = " " + s.patch_a, b = " " + s.patch_b;
	int rounds = 0;
	auto duration = s.duration;
	if (const char *e = std::getenv("ATLAS_INTEG_SECONDS"); e && std::atoi(e) > 0)
		duration = std::chrono::seconds(std::atoi(e));
	const auto until = std::chrono::steady_clock::now() + duration;
	while ((std::chrono::steady_clock::now() < until || rounds < s.min_rounds) &&
	       !stop_rounds && !::testing::Test::HasFatalFailure()) {
		// Global mode requested, or (every other round) the CLI's defaults: mode auto,
		// which is global without views, and the runtime's default deadline.
		const std::string g = rounds % 2 ? "" : " --mode global --deadline 5000";
		if (rounds == 1) {
			// Refused by a deadline: a worker spins in user space (no point, no system
			// call) while A is applied with a 300 ms deadline. The server stays at
			// version 1 and keeps answering; exactly that worker is named as lagging.
			std::string stall_error, stall_reply;
			std::thread staller([&] {
				int fd = connect_seqpacket(service);
				if (fd < 0) {
					stall_error = "connect failed";
					return;
				}
				stall_reply = exchange(fd, "STALL", 5, stall_error, 60000);
				close(fd);
			});
			int q = connect_seqpacket(service);
			std::string q_error, answer;
			for (int i = 0; i < 2000 && q >= 0 && answer != "yes"; i++) {
				answer = exchange(q, "STALLING?", 9, q_error, 20000);
				extra_requests++;
				if (answer != "yes")
					std::this_thread::sleep_for(5ms);
			}
			EXPECT_EQ(answer, "yes") << "no worker stalls: " << q_error;
			std::string out;
			if (answer == "yes")
				out =
				    op("apply A (deadline)",
				       "--json apply " + pid + a + " --mode global --deadline 300",
				       4, 1, "refused");
			if (q >= 0) {
				EXPECT_EQ(exchange(q, "RELEASE", 7, q_error, 20000), "released")
				    << q_error;
				extra_requests++;
				close(q);
			}
			staller.join();
			extra_requests++;
			// Exactly the spinning worker is named, running (it never reached a point).
			auto j = nlohmann::json::parse(out, nullptr, false);
			bool named =
			    j.is_object() && j["outcome"] == "refused" &&
			    j["report"]["lagging"].size() == 1 &&
			    j["report"]["lagging"][0].value("name", "").rfind("worker-", 0) == 0 &&
			    j["report"]["lagging"][0]["state"] == "running";
			EXPECT_TRUE(named)
			    << "expected exactly the spinning worker, running: " << out;
			EXPECT_EQ(stall_reply, "stalled") << stall_error;
			if (!named || stall_reply != "stalled")
				stop_rounds = true;
			// B cannot be loaded without A (its integ_v2_core is A's): failed,
			// unchanged.
			op("apply B without A", "apply " + pid + b + g, 1, 1, "integ_v2_core");
		}
		if (rounds % 4 == 0) {
			// No views on this kernel: wait-free mode is refused, nothing changes.
			op("apply A wait-free", "apply " + pid + a + " --mode wait-free", 4, 1,
			   "wait-free mode unavailable");
		}
		op("apply A", "apply " + pid + a + g, 0, 2);
		op("apply A again", "apply " + pid + a + g, 3, 2, "already applied");
		op("apply B", "apply " + pid + b + g, 0, 3);
		if (rounds % 4 == 2) {
			// Last in, first out: A cannot go while B replaces the same function.
			op("revert A under B", "revert " + pid + " " + id_a + g, 4, 3, id_b);
			op("apply B again", "apply " + pid + b + g, 3, 3, "already applied");
		}
		op("revert B", "revert " + pid + " " + id_b + g, 0, 2);
		if (rounds % 4 == 3) {
			// Re-stacking B on A, then unwinding again.
			op("apply B", "apply " + pid + b + g, 0, 3);
			op("revert B", "revert " + pid + " " + id_b + g, 0, 2);
		}
		op("revert A", "revert " + pid + " " + id_a + g, 0, 1);
		if (rounds % 4 == 1)
			op("revert A again", "revert " + pid + " " + id_a + g, 4, 1, "not applied");
		rounds++;
	}
	bool fatal = ::testing::Test::HasFatalFailure() || stop_rounds;

	pool.stop_and_join();

	// The server's own account: it never failed a connection, and it is alive until SIGTERM.
	ASSERT_TRUE(watch.alive()) << "the server died, status " << watch.status;
	std::string status_out;
	EXPECT_EQ(run("--json status " + pid, &status_out), 0) << status_out;
	auto st = nlohmann::json::parse(status_out, nullptr, false);
	ASSERT_TRUE(st.is_object()) << status_out;
	if (!fatal) {
		EXPECT_TRUE(st["status"]["applied"].empty()) << status_out;
	}
	// Patch text mappings left with nothing applied: none. A reverted patch is unmapped by the
	// runtime, one whose apply did not take it (already applied, refused by the deadline or
	// for its mode) by the control server.
	std::string maps_out;
	atlas_test::run_command("grep -c 'memfd:atlas-patch:' /proc/" + pid + "/maps", &maps_out);
	const long mappings_left = std::atol(maps_out.c_str());
	if (!fatal) {
		EXPECT_EQ(mappings_left, 0) << "patch text mappings left with nothing applied";
	}
	kill(server.pid, SIGTERM);
	std::string last = server.line();
	int wstatus = 0;
	ASSERT_EQ(waitpid(server.pid, &wstatus, 0), server.pid);
	server.pid = -1;
	EXPECT_TRUE(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0) << "server status " << wstatus;
	long served = -1, errors = -1;
	ASSERT_EQ(std::sscanf(last.c_str(), "served %ld errors %ld", &served, &errors), 2) << last;
	EXPECT_EQ(errors, 0);

	// The event log agrees: one line per event, each an object with its time; a "request" and
	// a "finished" per transition that the CLI reported done (exit 0), a "request" and a
	// "refused" naming one lagging thread for the deadline; the other refusals (already
	// applied, not applied, LIFO, wait-free without views) and the failed load start none.
	std::map<std::string, long> events;
	long malformed = 0, refused_lagging = 0;
	if (FILE *f = std::fopen(event_log.c_str(), "r")) {
		char *line = nullptr;
		size_t cap = 0;
		while (getline(&line, &cap, f) > 0) {
			auto e = nlohmann::json::parse(line, nullptr, false);
			if (!e.is_object() || !e["event"].is_string() ||
			    !e["mono_ns"].is_number()) {
				malformed++;
				continue;
			}
			events[e["event"].get<std::string>()]++;
			if (e["event"] == "refused" && e["lagging"].size() == 1)
				refused_lagging++;
		}
		std::free(line);
		std::fclose(f);
	}
	std::system(("rm -rf " + dir).c_str());
	if (fatal)
		return;
	const long done =
	    std::count_if(ops.begin(), ops.end(), [](const Op &o) { return o.code == 0; });
	const long deadlines = std::count_if(
	    ops.begin(), ops.end(), [](const Op &o) { return o.what == "apply A (deadline)"; });
	EXPECT_EQ(malformed, 0);
	EXPECT_EQ(events["runtime_started"], 1);
	EXPECT_EQ(events["request"], done + deadlines);
	EXPECT_EQ(events["finished"], done);
	EXPECT_EQ(events["refused"], deadlines);
	EXPECT_EQ(refused_lagging, deadlines);
	EXPECT_EQ(events["failed"], 0);

	// Every reply against the timeline.
	size_t total = 0, per_version[4] = {0, 0, 0, 0}, during_op = 0;
	for (auto &c : clients) {
		EXPECT_TRUE(c->error.empty()) << c->error;
		EXPECT_TRUE(c->first_mismatch.empty()) << c->first_mismatch;
		for (const Sample &smp : c->samples) {
			total++;
			per_version[smp.version]++;
			std::set<int> ok = allowed(ops, smp.sent_ns, smp.received_ns);
			if (ok.size() > 1)
				during_op++;
			ASSERT_TRUE(ok.count(smp.version))
			    << "reply from version " << smp.version
			    << " to a request in flight from " << smp.sent_ns << " to "
			    << smp.received_ns << " ns; allowed: " << *ok.begin()
			    << (ok.size() > 1 ? " or more" : "");
		}
	}
	EXPECT_EQ(per_version[0], 0u);
	// Every client's reply, and the deadline round's requests, were counted by the server.
	EXPECT_EQ(served, static_cast<long>(total) + extra_requests);
	EXPECT_GE(rounds, s.min_rounds);
	for (int v = 1; v <= 3; v++)
		EXPECT_GT(per_version[v], 0u) << "no reply from version " << v;

	std::string counts;
	for (const auto &[what, n] : op_counts)
		counts += "\n  " + what + ": " + std::to_string(n.count) +
		          " x, CLI wall time mean " + std::to_string(n.total_ns / n.count / 1000) +
		          " us, max " + std::to_string(n.max_ns / 1000) + " us";
	std::printf("integration: %d rounds, %zu operations:%s\n", rounds, ops.size(),
	            counts.c_str());
	std::printf("integration: %zu replies checked (v1 %zu, v2 %zu, v3 %zu; %zu in flight "
	            "during an operation; %zu checked live right after one), server served %ld\n",
	            total, per_version[1], per_version[2], per_version[3], during_op, live_checked,
	            served);
	std::printf("integration: event log: %ld requests, %ld finished, %ld refused, %ld threads "
	            "parked, %ld blocked\n",
	            events["request"], events["finished"], events["refused"],
	            events["thread_parked"], events["thread_blocked"]);
	std::printf(
	    "integration: %ld patch text mappings left in the server with nothing applied\n",
	    mappings_left);
}

} // namespace

TEST(Explicit, PatchRepatchStackRevertUnderLoad)
{
	run_scenario({.server = ATLAS_INTEG_EXPLICIT,
	              .env = {},
	              .patch_a = ATLAS_INTEG_EXPLICIT_A,
	              .patch_b = ATLAS_INTEG_EXPLICIT_B});
}

#ifdef ATLAS_INTEG_PLAIN
TEST(Preload, PatchRepatchStackRevertUnderLoad)
{
	run_scenario({.server = ATLAS_INTEG_PLAIN,
	              .env = {std::string("LD_PRELOAD=") + ATLAS_PRELOAD_LIB},
	              .patch_a = ATLAS_INTEG_PLAIN_A,
	              .patch_b = ATLAS_INTEG_PLAIN_B});
}
#endif
