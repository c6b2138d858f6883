// SPDX-License-Identifier: MIT
/*
 * The integration server under load, patched in wait-free mode on the views kernel
 * (docs/live-patching.md, "Testing"). In the guest: tests/integration's server
 * (integ_server_plain: no atlas call of its own) runs under LD_PRELOAD=libatlas-preload.so;
 * client connections send requests back to back and check every reply (the three versions of
 * compute_reply are recomputed, tests/integration/load.hpp) while the atlas CLI applies,
 * re-applies, stacks and reverts patches A and B in wait-free mode. Checks, as TAP:
 *
 *  - the runtime is in wait-free mode for real (status: views available, one view live, every
 *    application thread registered);
 *  - every operation ends with the exit code expected, every transition in wait-free mode;
 *  - threads that sleep through transitions on the real kernel: the acceptor (blocked in
 *    accept4, no new connection comes) and the main thread (sigwait) never hold a transition
 *    up; every finished transition lists them as migrating on wake, they keep their retired
 *    view live, and a new connection moves the acceptor to the base;
 *  - a deadline: a worker spins without a quiescence point, an apply goes pending and
 *    revert-pending undoes it; a revert goes pending and revert-pending undoes it, the patch
 *    stays applied and is then reverted for real;
 *  - after each operation every client gets three replies from the version in effect; over
 *    the run every reply comes from a version in effect while its request was in flight, none
 *    is lost (the server counted exactly the replies the clients got) or wrong;
 *  - afterwards nothing is applied, no patch text is mapped, every thread outside the base is
 *    a sleeper that migrates on wake, the event log has a finished/pending/reverted line per
 * transition and no failure, and the server exits cleanly.
 *
 * Usage: server_wait_free SERVER PRELOAD CLI PATCH_A PATCH_B [SECONDS]
 */
#include "../../integration/load.hpp"
#include "../../unit/preload/spawn.hpp"
#include "../tap.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <iterator>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <sys/stat.h>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using namespace atlas_integ;

namespace
{

// One CLI operation on the timeline: the versions that may answer before and after it.
struct Op {
	std::string what;
	int64_t start_ns, end_ns;
	std::set<int> before, after;
};

// The versions a reply may come from: those in effect when its request was sent, and those of
// every operation that overlapped its flight.
std::set<int> allowed(const std::vector<Op> &ops, int64_t sent, int64_t received)
{
	auto it = std::partition_point(ops.begin(), ops.end(),
	                               [&](const Op &op) { return op.end_ns < sent; });
	std::set<int> v = it == ops.begin() ? std::set<int>{1} : std::prev(it)->after;
	for (; it != ops.end() && it->start_ns <= received; ++it) {
		v.insert(it->before.begin(), it->before.end());
		v.insert(it->after.begin(), it->after.end());
	}
	return v;
}

std::string cli_path;

int cli(const std::string &args, std::string &out)
{
	return atlas_test::run_command(cli_path + " " + args, &out);
}

nlohmann::json status_of(const std::string &pid)
{
	std::string out;
	cli("--json status " + pid, out);
	auto j = nlohmann::json::parse(out, nullptr, false);
	return j.is_object() && j.contains("status") ? j["status"] : nlohmann::json();
}

std::string set_text(const std::set<int> &s)
{
	std::string t;
	for (int v : s)
		t += (t.empty() ? "" : "/") + std::to_string(v);
	return t;
}

} // namespace

int main(int argc, char **argv)
{
	if (argc < 6) {
		std::fprintf(stderr, "usage: server_wait_free SERVER PRELOAD CLI PATCH_A PATCH_B "
		                     "[SECONDS]\n");
		return 2;
	}
	setvbuf(stdout, nullptr, _IOLBF, 0);
	const std::string server_exe = argv[1], preload = argv[2], patch_a = argv[4],
	                  patch_b = argv[5];
	cli_path = argv[3];
	const int seconds = argc > 6 ? std::max(1, std::atoi(argv[6])) : 30;
	constexpr int workers = 4, clients_n = 3, min_rounds = 2;
	tap_plan(13);

	const std::string dir = "/tmp/atlas-wf";
	mkdir(dir.c_str(), 0700);
	setenv("XDG_RUNTIME_DIR", dir.c_str(), 1);
	const std::string service = dir + "/service.sock", event_log = dir + "/events.jsonl";
	atlas_test::Process server;
	const bool started = atlas_test::start_process(
	    server, server_exe,
	    {"LD_PRELOAD=" + preload, "ATLAS_INTEG_SOCKET=" + service,
	     "ATLAS_INTEG_WORKERS=" + std::to_string(workers), "ATLAS_EVENT_LOG=" + event_log});
	const std::string pid = std::to_string(server.pid);
	// Every application thread registered (main, acceptor, workers) before the first request.
	nlohmann::json st;
	for (int i = 0; started && i < 2000; i++) {
		st = status_of(pid);
		if (st.is_object() && st["threads"].size() == workers + 2u)
			break;
		std::this_thread::sleep_for(10ms);
	}
	if (!tap_check(started && st.is_object(),
	               "the server runs under the preload, its control "
	               "socket answers (%s)",
	               server.socket.c_str()))
		return tap_finish();
	tap_check(st.value("views_available", false) && st["mode"] == "wait_free and global" &&
	              st["single_view"] == true && st["threads"].size() == workers + 2u,
	          "wait-free mode for real: views available, one view live, %zu threads "
	          "registered (%s)",
	          st["threads"].size(), st.dump().c_str());

	ClientPool pool(clients_n, service, 500us);
	auto &clients = pool.clients;
	ChildWatch watch{server.pid};

	std::vector<Op> ops;
	std::set<int> version{1};
	std::map<std::string, std::pair<int, int64_t>> op_stats; // count, total ns
	int bad_ops = 0, bad_settles = 0, transitions_done = 0, pendings = 0, reverteds = 0;
	long extra_requests = 0;
	size_t live_checked = 0;
	std::string id_a, id_b;

	// Every client completes three exchanges sent after `since`, answered by `expected`.
	auto settle = [&](int expected, int64_t since, const std::string &after) {
		const auto limit = std::chrono::steady_clock::now() + 60s;
		for (auto &c : clients) {
			for (;;) {
				size_t fresh = 0;
				bool wrong = false;
				{
					std::lock_guard lock(c->mu);
					if (!c->error.empty()) {
						tap_diag("after %s: client error: %s",
						         after.c_str(), c->error.c_str());
						bad_settles++;
						return;
					}
					for (auto it = c->samples.rbegin();
					     it != c->samples.rend() && it->sent_ns > since; ++it) {
						fresh++;
						wrong |= it->version != expected;
					}
				}
				if (wrong) {
					tap_diag("after %s: a reply not from version %d",
					         after.c_str(), expected);
					bad_settles++;
					return;
				}
				if (fresh >= 3) {
					live_checked += fresh;
					break;
				}
				if (std::chrono::steady_clock::now() > limit) {
					tap_diag("after %s: the load stalled", after.c_str());
					bad_settles++;
					return;
				}
				std::this_thread::sleep_for(2ms);
			}
		}
	};
	// One CLI operation (--json): exit code `code`; the versions become `after` (two of them
	// while a transition is pending: no settling then).
	auto op = [&](const std::string &what, const std::string &args, int code,
	              std::set<int> after, const std::string &must_say = {}) {
		std::string out;
		const int64_t start = now_ns();
		const int r = cli("--json " + args, out);
		const int64_t end = now_ns();
		ops.push_back({what, start, end, version, after});
		auto &stat = op_stats[what];
		stat.first++;
		stat.second += end - start;
		auto j = nlohmann::json::parse(out, nullptr, false);
		const bool transition = code == 0 || code == 5 || code == 6;
		bool ok = r == code && j.is_object() &&
		          (!transition || j["report"]["mode"] == "wait_free") &&
		          (must_say.empty() || out.find(must_say) != std::string::npos);
		if (!watch.alive()) {
			tap_diag("the server died during %s, status %d", what.c_str(),
			         watch.status);
			ok = false;
		}
		if (!ok) {
			bad_ops++;
			tap_diag("%s: atlas %s: exit %d, expected %d: %s", what.c_str(),
			         args.c_str(), r, code, out.c_str());
		}
		transitions_done += r == 0 && code == 0;
		pendings += r == 5;
		reverteds += r == 6;
		version = after;
		if (after.size() == 1)
			settle(*after.begin(), end, what);
		return j;
	};
	// A worker spins in user space (no quiescence point, no system call) until released.
	std::string stall_error;
	std::thread staller;
	int stall_q = -1;
	auto stall = [&] {
		staller = std::thread([&] {
			int fd = connect_seqpacket(service);
			std::string reply =
			    fd >= 0 ? exchange(fd, "STALL", 5, stall_error, 120000) : "";
			if (reply != "stalled")
				stall_error = "STALL answered '" + reply + "': " + stall_error;
			if (fd >= 0)
				close(fd);
		});
		stall_q = connect_seqpacket(service);
		std::string e, answer;
		for (int i = 0; i < 4000 && stall_q >= 0 && answer != "yes"; i++) {
			answer = exchange(stall_q, "STALLING?", 9, e, 20000);
			extra_requests++;
			if (answer != "yes")
				std::this_thread::sleep_for(5ms);
		}
		if (answer != "yes")
			stall_error = "no worker stalls: " + e;
		return answer == "yes";
	};
	auto release = [&] {
		std::string e;
		if (stall_q >= 0 && exchange(stall_q, "RELEASE", 7, e, 20000) != "released")
			stall_error = "RELEASE: " + e;
		extra_requests += 2; // RELEASE and the STALL itself
		if (stall_q >= 0)
			close(stall_q);
		stall_q = -1;
		staller.join();
	};

	const std::string a = " " + patch_a, b = " " + patch_b, wf = " --mode wait-free",
	                  slow = " --deadline 30000", quick = " --deadline 400";

	// The deadline cases first. An apply that goes pending and is undone: version 1 again.
	// The spinning worker is lagging, running (others may still be on their way).
	const auto running_worker = [](const nlohmann::json &l) {
		return l.is_array() && std::any_of(l.begin(), l.end(), [](const auto &t) {
			       return t.value("state", "") == "running" &&
			              t.value("name", "").rfind("worker-", 0) == 0;
		       });
	};
	std::string why;
	bool stalled = stall();
	auto j = op("apply A (pending)", "apply " + pid + a + wf + quick, 5, {1, 2});
	if (!j.is_object() || !running_worker(j["report"]["lagging"]))
		why += "apply: no running worker lagging: " + j.dump() + "; ";
	op("revert-pending the apply", "revert-pending " + pid + slow, 6, {1});
	release();
	settle(1, now_ns(), "the release");
	// A revert that goes pending and is undone: A stays applied, then is reverted for real.
	j = op("apply A", "apply " + pid + a + wf + slow, 0, {2});
	if (j.is_object())
		id_a = j["report"].value("change", "");
	stalled &= stall();
	j = op("revert A (pending)", "revert " + pid + " " + id_a + wf + quick, 5, {1, 2});
	if (!j.is_object() || !running_worker(j["report"]["lagging"]))
		why += "revert: no running worker lagging: " + j.dump() + "; ";
	op("revert-pending the revert", "revert-pending " + pid + slow, 6, {2});
	const auto applied_after_undo = status_of(pid)["applied"];
	if (applied_after_undo.size() != 1 || applied_after_undo[0].value("change", "") != id_a)
		why += "A not applied after the undone revert; ";
	release();
	settle(2, now_ns(), "the release");
	op("revert A after the undone revert", "revert " + pid + " " + id_a + wf + slow, 0, {1});
	tap_check(stalled && why.empty() && stall_error.empty(),
	          "a worker spinning without a point leaves an apply and a revert pending (named, "
	          "running); revert-pending undoes both; the undone revert leaves A applied "
	          "(%s)%s%s%s",
	          applied_after_undo.dump().c_str(), why.empty() && stall_error.empty() ? "" : ": ",
	          why.c_str(), stall_error.c_str());

	// Rounds: apply, re-apply, stack, revert, in wait-free mode, under load.
	int rounds = 0;
	const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
	while ((std::chrono::steady_clock::now() < until || rounds < min_rounds) && bad_ops == 0 &&
	       bad_settles == 0) {
		const std::string m = rounds % 2 ? wf + slow : slow; // auto mode: wait-free here
		j = op("apply A", "apply " + pid + a + m, 0, {2});
		if (j.is_object())
			id_a = j["report"].value("change", id_a);
		op("apply A again", "apply " + pid + a + m, 3, {2}, "already applied");
		j = op("apply B", "apply " + pid + b + m, 0, {3});
		if (j.is_object())
			id_b = j["report"].value("change", id_b);
		if (rounds % 3 == 1)
			op("revert A under B", "revert " + pid + " " + id_a + m, 4, {3}, id_b);
		op("revert B", "revert " + pid + " " + id_b + m, 0, {2});
		if (rounds % 3 == 2) {
			op("apply B", "apply " + pid + b + m, 0, {3});
			op("revert B", "revert " + pid + " " + id_b + m, 0, {2});
		}
		op("revert A", "revert " + pid + " " + id_a + m, 0, {1});
		if (rounds % 3 == 0)
			op("revert A again", "revert " + pid + " " + id_a + m, 4, {1},
			   "not applied");
		rounds++;
	}
	tap_check(bad_ops == 0 && rounds >= min_rounds,
	          "%zu operations in %d rounds ended as expected, every transition in wait-free "
	          "mode (%d finished, %d pending, %d undone)",
	          ops.size(), rounds, transitions_done, pendings, reverteds);
	tap_check(bad_settles == 0,
	          "after every operation each client got replies from the version in effect "
	          "(%zu replies checked right after an operation)",
	          live_checked);

	pool.stop_and_join();

	// Afterwards: nothing applied, no patch text, and every registered thread outside the
	// base is asleep in a wrapped call and migrates when it wakes (the acceptor and main).
	auto outside_base = [&](const nlohmann::json &status, bool *all_sleepers) {
		std::set<std::string> names;
		*all_sleepers = true;
		for (const auto &t : status["threads"]) {
			if (t["view"] == status["base_view"])
				continue;
			names.insert(t.value("name", "?"));
			*all_sleepers &= t["state"] == "blocked" && t["migrates_on_wake"] == true;
		}
		return names;
	};
	st = status_of(pid);
	bool all_sleepers = false;
	std::set<std::string> sleepers =
	    st.is_object() ? outside_base(st, &all_sleepers) : std::set<std::string>{};
	std::string sleeper_names;
	for (const auto &n : sleepers)
		sleeper_names += (sleeper_names.empty() ? "" : ", ") + n;
	tap_check(st.is_object() && st["applied"].empty() && !st.contains("transition") &&
	              all_sleepers && sleepers.count("acceptor") == 1,
	          "afterwards nothing is applied, no transition runs, and the threads outside the "
	          "base view are asleep and migrate on wake: %s",
	          sleeper_names.c_str());
	std::string maps;
	atlas_test::run_command("grep -c 'memfd:atlas-patch:' /proc/" + pid + "/maps", &maps);
	tap_check(std::atol(maps.c_str()) == 0, "no patch text mapping is left (%ld)",
	          std::atol(maps.c_str()));

	// A new connection wakes the acceptor: it moves to the base before it runs the server's
	// code again.
	const auto woke_before = st.is_object() ? st.value("migrated_on_wake", 0L) : 0L;
	int extra = connect_seqpacket(service);
	nlohmann::json acceptor;
	for (int i = 0; i < 500 && extra >= 0; i++) {
		st = status_of(pid);
		for (const auto &t : st.is_object() ? st["threads"] : nlohmann::json::array())
			if (t.value("name", "") == "acceptor")
				acceptor = t;
		if (acceptor.is_object() && acceptor["view"] == st["base_view"])
			break;
		std::this_thread::sleep_for(20ms);
	}
	if (extra >= 0)
		close(extra);
	tap_check(acceptor.is_object() && acceptor["view"] == st["base_view"] &&
	              st.value("migrated_on_wake", 0L) > woke_before,
	          "a new connection woke the acceptor, which moved to the base view %s (threads "
	          "moved on wake: %ld before, %ld after)",
	          st.is_object() ? st["base_view"].dump().c_str() : "?", woke_before,
	          st.is_object() ? st.value("migrated_on_wake", 0L) : 0L);

	// The event log: a line per transition; the sleepers in every wait-free one.
	std::map<std::string, long> events;
	long malformed = 0, sleepers_listed = 0, wait_free_ends = 0;
	if (FILE *f = std::fopen(event_log.c_str(), "r")) {
		char *line = nullptr;
		size_t cap = 0;
		while (getline(&line, &cap, f) > 0) {
			auto e = nlohmann::json::parse(line, nullptr, false);
			if (!e.is_object() || !e["event"].is_string()) {
				malformed++;
				continue;
			}
			const std::string ev = e["event"];
			events[ev]++;
			if (ev == "finished" || ev == "reverted") {
				wait_free_ends += e.value("mode", "") == "wait_free";
				if (ev == "finished")
					sleepers_listed +=
					    e.value("migrate_on_wake", nlohmann::json::array())
					        .size() > 0;
			}
		}
		std::free(line);
		std::fclose(f);
	}
	tap_check(malformed == 0 && events["runtime_started"] == 1 &&
	              events["finished"] == transitions_done && events["pending"] == pendings &&
	              events["reverted"] == reverteds && events["failed"] == 0 &&
	              events["refused"] == 0,
	          "event log: %ld finished, %ld pending, %ld reverted, %ld failed, %ld refused, "
	          "%ld migrations, %ld base switches, %ld views deleted (%ld malformed lines)",
	          events["finished"], events["pending"], events["reverted"], events["failed"],
	          events["refused"], events["thread_migrated"], events["base_switched"],
	          events["view_deleted"], malformed);
	// The acceptor (accept4, no new connection) and main (sigwait) never leave their calls
	// during the run: every transition that finished did so with them asleep in the old view.
	tap_check(
	    wait_free_ends == transitions_done + reverteds && sleepers_listed == transitions_done &&
	        events["thread_migrates_on_wake"] >= transitions_done,
	    "sleepers on the views kernel: %ld of %d transitions finished with threads asleep "
	    "in retired views (%ld thread_migrates_on_wake events)",
	    sleepers_listed, transitions_done, events["thread_migrates_on_wake"]);

	// Every reply against the timeline; none lost.
	size_t total = 0, per_version[4] = {0, 0, 0, 0}, outside = 0, during_op = 0;
	std::string first_outside, client_errors;
	for (auto &c : clients) {
		if (!c->error.empty() || !c->first_mismatch.empty())
			client_errors += c->error + c->first_mismatch + "; ";
		for (const Sample &smp : c->samples) {
			total++;
			per_version[smp.version]++;
			std::set<int> ok = allowed(ops, smp.sent_ns, smp.received_ns);
			during_op += ok.size() > 1;
			if (!ok.count(smp.version) && outside++ == 0)
				first_outside = "version " + std::to_string(smp.version) +
				                " answered, allowed " + set_text(ok);
		}
	}
	tap_check(client_errors.empty() && per_version[0] == 0 && outside == 0,
	          "every reply came from a version in effect while its request was in flight: "
	          "%zu replies (v1 %zu, v2 %zu, v3 %zu; %zu during an operation)%s%s%s",
	          total, per_version[1], per_version[2], per_version[3], during_op,
	          client_errors.empty() ? "" : "; clients: ", client_errors.c_str(),
	          first_outside.c_str());
	tap_check(per_version[1] > 0 && per_version[2] > 0 && per_version[3] > 0,
	          "replies came from all three versions");

	const bool was_alive = watch.alive();
	kill(server.pid, SIGTERM);
	std::string last = server.line(30000);
	int wstatus = 0;
	const bool reaped = waitpid(server.pid, &wstatus, 0) == server.pid;
	server.pid = -1;
	long served = -1, errors = -1;
	std::sscanf(last.c_str(), "served %ld errors %ld", &served, &errors);
	tap_check(was_alive && reaped && WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0 &&
	              errors == 0 && served == static_cast<long>(total) + extra_requests,
	          "the server ran throughout, exits 0 on SIGTERM, no connection error, and "
	          "served exactly the %zu replies the clients got (+%ld test requests): '%s'",
	          total, extra_requests, last.c_str());
	tap_diag("run figures: %d rounds, %zu operations", rounds, ops.size());
	for (const auto &[what, s] : op_stats)
		tap_diag("  %s: %d x, CLI wall time mean %.1f ms", what.c_str(), s.first,
		         double(s.second) / s.first / 1e6);
	return tap_finish();
}
