// The control socket server over a real socket, with a test loader (all builds).
#include "../runtime/changes.hpp"
#include "../runtime/helpers.hpp"

#include <control.hpp>
#include <protocol.hpp>

#include <algorithm>
#include <gtest/gtest.h>
#include <mutex>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

extern char **environ;

using namespace atlas_test;

namespace
{

struct ControlTest : ::testing::Test {
	Target program;
	std::unique_ptr<atlas::Runtime> rt;
	std::unique_ptr<atlas::control::Server> server;
	std::string dir;
	std::atomic<int> loads{0};
	// unreachable() calls of each change the loader made, in load order.
	std::mutex released_mu;
	std::vector<int> released;
	// Changes to the facts the peer policy decides on (server threads read it).
	std::mutex adjust_mu;
	std::function<void(atlas::control::PeerFacts &)> adjust;

	void SetUp() override
	{
		char tmpl[] = "/tmp/atlas-control-XXXXXX";
		ASSERT_NE(mkdtemp(tmpl), nullptr);
		dir = tmpl;
		auto views = std::make_shared<FakeViewState>();
		views->unavailable = true;
		atlas::RuntimeOptions o;
		o.views = std::make_unique<FakeViews>(views);
		rt = atlas::Runtime::create(std::move(o));
		exempt_existing_threads(*rt);
		atlas::control::ServerOptions so;
		so.path = dir + "/sub/test.sock";
		so.max_line = 1024;
		so.idle_timeout = 2000ms;
		so.trusted_keys = ""; // none, whatever the environment says
		so.adjust_peer_facts = [this](atlas::control::PeerFacts &f) {
			std::lock_guard lock(adjust_mu);
			if (adjust)
				adjust(f);
		};
		so.loader = [this](const std::string &path) -> atlas::control::Loaded {
			loads++;
			if (path == "throw")
				throw std::runtime_error("boom");
			if (path == "missing")
				return atlas::make_error(atlas::Errc::change_failed,
				                         "no such patch");
			auto change = std::make_shared<SwapChange>(program, path + "@1");
			change->fail_apply = path == "fail";
			std::lock_guard lock(released_mu);
			change->on_unreachable = [this, i = released.size()] {
				std::lock_guard l(released_mu);
				released[i]++;
			};
			released.push_back(0);
			return std::shared_ptr<atlas::CodeChange>(change);
		};
		auto started = atlas::control::Server::start(*rt, so);
		ASSERT_TRUE(started) << started.error().message;
		server = std::move(started).value();
	}
	void TearDown() override
	{
		server.reset();
		std::system(("rm -rf " + dir).c_str());
	}
	nlohmann::json call(const nlohmann::json &req)
	{
		auto resp = atlas::control::call(server->path(), req);
		EXPECT_TRUE(resp) << (resp ? "" : resp.error().message);
		return resp ? *resp : nlohmann::json();
	}
	int connect_raw()
	{
		int fd = socket(AF_UNIX, SOCK_STREAM, 0);
		sockaddr_un a{};
		a.sun_family = AF_UNIX;
		std::strcpy(a.sun_path, server->path().c_str());
		EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof(a)), 0);
		return fd;
	}
	void set_adjust(std::function<void(atlas::control::PeerFacts &)> f)
	{
		std::lock_guard lock(adjust_mu);
		adjust = std::move(f);
	}
	// Runs peer_client as `uid` against the socket: its exit status (0: the reply held
	// `expect`). Opens the directories so that another uid reaches the socket at all.
	int run_peer(const char *uid, const char *expect)
	{
		chmod(dir.c_str(), 0755);
		chmod((dir + "/sub").c_str(), 0755);
		chmod(server->path().c_str(), 0666);
		pid_t child = -1;
		std::string path = server->path(), u = uid, e = expect;
		char *argv[] = {const_cast<char *>(ATLAS_PEER_CLIENT), path.data(), u.data(),
		                e.data(), nullptr};
		if (posix_spawn(&child, ATLAS_PEER_CLIENT, nullptr, nullptr, argv, environ) != 0)
			return -1;
		int status = 0;
		waitpid(child, &status, 0);
		return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	}
	static std::string read_all(int fd)
	{
		std::string out;
		char buf[4096];
		ssize_t n;
		while ((n = recv(fd, buf, sizeof(buf), 0)) > 0)
			out.append(buf, static_cast<size_t>(n));
		return out;
	}
};

TEST_F(ControlTest, SocketAndDirectoryModes)
{
	struct stat st;
	ASSERT_EQ(stat((dir + "/sub").c_str(), &st), 0);
	EXPECT_EQ(st.st_mode & 0777, 0700u);
	ASSERT_EQ(stat(server->path().c_str(), &st), 0);
	EXPECT_TRUE(S_ISSOCK(st.st_mode));
	EXPECT_EQ(st.st_mode & 0077, 0u);
	std::string path = server->path();
	server.reset();
	EXPECT_NE(stat(path.c_str(), &st), 0) << "socket not removed";
}

std::string fmt_uid_dir(uid_t uid)
{
	return "/tmp/atlas-" + std::to_string(uid);
}

TEST_F(ControlTest, DefaultLocation)
{
	EXPECT_EQ(atlas::control::socket_path(42, "/x"), "/x/42.sock");
	const char *old = getenv("XDG_RUNTIME_DIR");
	std::string saved = old ? old : "";
	char tmpl[] = "/tmp/atlas-xdg-XXXXXX";
	ASSERT_NE(mkdtemp(tmpl), nullptr);
	const std::string xdg = tmpl;
	setenv("XDG_RUNTIME_DIR", xdg.c_str(), 1);
	EXPECT_EQ(atlas::control::default_socket_dir(), xdg + "/atlas");
	const std::string mine = geteuid() == 0 ? "/run/atlas" : fmt_uid_dir(geteuid());
	// Not this uid's (a daemon that dropped privileges inherits root's): not used.
	if (geteuid() == 0) {
		ASSERT_EQ(chown(xdg.c_str(), 7, 7), 0);
		EXPECT_EQ(atlas::control::default_socket_dir(), mine);
	}
	setenv("XDG_RUNTIME_DIR", "/nonexistent/run", 1);
	EXPECT_EQ(atlas::control::default_socket_dir(), mine);
	unsetenv("XDG_RUNTIME_DIR");
	EXPECT_EQ(atlas::control::default_socket_dir(), mine);
	rmdir(xdg.c_str());
	if (old)
		setenv("XDG_RUNTIME_DIR", saved.c_str(), 1);
	auto dirs = atlas::control::socket_search_dirs();
	ASSERT_FALSE(dirs.empty());
	EXPECT_EQ(dirs[0], atlas::control::default_socket_dir());
	EXPECT_NE(std::find(dirs.begin(), dirs.end(), "/run/atlas"), dirs.end());
	if (geteuid() != 0)
		return;
	// Another uid (a server after -u): /tmp/atlas-<uid>, which root's search finds.
	int pipefd[2];
	ASSERT_EQ(pipe(pipefd), 0);
	const pid_t child = fork();
	if (child == 0) {
		const std::string chosen =
		    setuid(65534) == 0 ? atlas::control::default_socket_dir() : "setuid failed";
		(void)!write(pipefd[1], chosen.data(), chosen.size());
		_exit(0);
	}
	close(pipefd[1]);
	char buf[128] = {};
	(void)!read(pipefd[0], buf, sizeof(buf) - 1);
	close(pipefd[0]);
	waitpid(child, nullptr, 0);
	EXPECT_STREQ(buf, "/tmp/atlas-65534");
	// Every /tmp/atlas-<uid> is searched, nothing else there.
	ASSERT_EQ(mkdir("/tmp/atlas-4000001", 0700), 0);
	dirs = atlas::control::socket_search_dirs();
	rmdir("/tmp/atlas-4000001");
	EXPECT_NE(std::find(dirs.begin(), dirs.end(), "/tmp/atlas-4000001"), dirs.end());
	for (const auto &d : dirs)
		EXPECT_EQ(d.find("/tmp/atlas-xdg"), std::string::npos) << d;
}

TEST_F(ControlTest, PingStatusApplyRevert)
{
	auto r = call({{"verb", "ping"}});
	EXPECT_EQ(r["ok"], true);
	EXPECT_EQ(r["pid"], getpid());
	r = call({{"verb", "apply"}, {"patch", "fix"}, {"mode", "global"}, {"deadline_ms", 2000}});
	EXPECT_EQ(r["outcome"], "finished") << r.dump();
	EXPECT_EQ(r["ok"], true);
	EXPECT_EQ(program.entry, &version_two);
	r = call({{"verb", "apply"}, {"patch", "fix"}});
	EXPECT_EQ(r["outcome"], "already_applied") << r.dump();
	r = call({{"verb", "status"}});
	ASSERT_EQ(r["status"]["applied"].size(), 1u) << r.dump();
	EXPECT_EQ(r["status"]["applied"][0]["change"], "fix@1");
	EXPECT_EQ(r["status"]["mode"], "global only");
	r = call({{"verb", "revert"}, {"identity", "fix@1"}, {"mode", "global"}});
	EXPECT_EQ(r["outcome"], "finished") << r.dump();
	EXPECT_EQ(program.entry, &version_one);
	r = call({{"verb", "revert"}, {"identity", "fix@1"}});
	EXPECT_EQ(r["ok"], false);
	EXPECT_NE(r["message"].get<std::string>().find("not applied"), std::string::npos);
	r = call({{"verb", "wait"}});
	EXPECT_EQ(r["ok"], false);
	r = call({{"verb", "revert_pending"}});
	EXPECT_EQ(r["ok"], false);
	r = call({{"verb", "apply"}, {"patch", "fix"}, {"mode", "wait-free"}});
	EXPECT_EQ(r["ok"], false);
	EXPECT_NE(r["message"].get<std::string>().find("wait-free mode unavailable"),
	          std::string::npos)
	    << r.dump();
}

// A patch loaded for an apply that did not take it (already applied, refused, failed) is released
// (unreachable(): a loaded patch runs its .fini_array and is unmapped) exactly once; an applied
// one only after its revert (by the runtime), never while it can run.
TEST_F(ControlTest, ChangesNotAppliedAreReleasedOnce)
{
	auto apply = [&](const char *patch, const char *mode, int deadline_ms = 2000) {
		return call({{"verb", "apply"},
		             {"patch", patch},
		             {"mode", mode},
		             {"deadline_ms", deadline_ms}})["outcome"];
	};
	auto counts = [&] {
		std::lock_guard lock(released_mu);
		return released;
	};
	EXPECT_EQ(apply("fix", "global"), "finished");
	for (int i = 0; i < 3; i++)
		EXPECT_EQ(apply("fix", "auto"), "already_applied");
	EXPECT_EQ(apply("other", "wait-free"), "refused"); // no views here
	EXPECT_EQ(apply("fail", "global"), "failed");
	EXPECT_EQ(program.entry, &version_two);
	// A registered thread that never reaches a quiescence point: the deadline refuses.
	std::atomic<bool> registered{false}, stop{false};
	std::thread stuck([&] {
		(void)rt->register_current_thread("stuck");
		registered = true;
		while (!stop)
			std::this_thread::sleep_for(1ms);
		(void)rt->unregister_current_thread();
	});
	while (!registered)
		std::this_thread::sleep_for(1ms);
	EXPECT_EQ(apply("slow", "global", 100), "refused");
	stop = true;
	stuck.join();
	EXPECT_EQ(counts(), (std::vector<int>{0, 1, 1, 1, 1, 1, 1}))
	    << "[0] is applied: never released; every other one exactly once";
	EXPECT_EQ(call({{"verb", "revert"}, {"identity", "fix@1"}, {"mode", "global"}})["outcome"],
	          "finished");
	EXPECT_EQ(program.entry, &version_one);
	EXPECT_EQ(counts(), (std::vector<int>{1, 1, 1, 1, 1, 1, 1}));
	EXPECT_EQ(loads.load(), 7);
}

TEST_F(ControlTest, ErrorsAreAnswered)
{
	auto r = call({{"verb", "apply"}, {"patch", "missing"}});
	EXPECT_EQ(r["outcome"], "failed");
	EXPECT_NE(r["message"].get<std::string>().find("no such patch"), std::string::npos);
	r = call({{"verb", "apply"}, {"patch", "throw"}});
	EXPECT_EQ(r["outcome"], "failed");
	EXPECT_NE(r["message"].get<std::string>().find("boom"), std::string::npos);
	r = call({{"verb", "apply"}});
	EXPECT_EQ(r["ok"], false);
	r = call({{"verb", "apply"}, {"patch", "x"}, {"mode", "sideways"}});
	EXPECT_NE(r["error"].get<std::string>().find("mode"), std::string::npos);
	r = call({{"verb", "dance"}});
	EXPECT_NE(r["error"].get<std::string>().find("unknown verb"), std::string::npos);
	r = call({{"nothing", 1}});
	EXPECT_EQ(r["ok"], false);
	EXPECT_EQ(program.entry, nullptr);
}

// A load that fails says why as a code the CLI can branch on (atlas::Errc's name): the loader's
// own (change_failed in these tests' loader), or internal for one that threw.
TEST_F(ControlTest, LoadFailuresCarryTheirCode)
{
	auto r = call({{"verb", "apply"}, {"patch", "missing"}});
	EXPECT_EQ(r["outcome"], "failed");
	EXPECT_EQ(r["code"], "change_failed") << r.dump();
	r = call({{"verb", "apply"}, {"patch", "throw"}});
	EXPECT_EQ(r["outcome"], "failed");
	EXPECT_EQ(r["code"], "internal") << r.dump();
	EXPECT_EQ(program.entry, nullptr);
}

TEST_F(ControlTest, GarbageHugeAndHalfClosed)
{
	// Several lines on one connection, garbage among them; then a half-close with a last
	// request lacking its newline.
	int fd = connect_raw();
	std::string req = "garbage\n\xff\xfe{]\n[1,2]\n{\"verb\":\"ping\"}\n{\"verb\":\"ping\"}";
	ASSERT_EQ(send(fd, req.data(), req.size(), MSG_NOSIGNAL), static_cast<ssize_t>(req.size()));
	shutdown(fd, SHUT_WR);
	std::string out = read_all(fd);
	close(fd);
	std::vector<nlohmann::json> lines;
	size_t start = 0, nl;
	while ((nl = out.find('\n', start)) != std::string::npos) {
		lines.push_back(
		    nlohmann::json::parse(out.substr(start, nl - start), nullptr, false));
		start = nl + 1;
	}
	ASSERT_EQ(lines.size(), 5u) << out;
	for (int i = 0; i < 3; i++)
		EXPECT_EQ(lines[i]["ok"], false) << out;
	EXPECT_EQ(lines[3]["ok"], true);
	EXPECT_EQ(lines[4]["ok"], true);

	// A line over the cap: an error, then the connection is closed.
	fd = connect_raw();
	std::string huge(100000, 'x');
	(void)send(fd, huge.data(), huge.size(), MSG_NOSIGNAL);
	out = read_all(fd);
	close(fd);
	EXPECT_NE(out.find("longer than 1024 bytes"), std::string::npos) << out.substr(0, 200);

	// A connection that closes at once, and one that stays silent (idle timeout).
	close(connect_raw());
	int silent = connect_raw();
	EXPECT_EQ(call({{"verb", "ping"}})["ok"], true);
	close(silent);
	EXPECT_EQ(call({{"verb", "ping"}})["ok"], true);
}

TEST_F(ControlTest, OtherUsersAreRefused)
{
	if (geteuid() != 0)
		GTEST_SKIP() << "needs root to setuid() to nobody";
	// Let nobody reach the socket through the directories; the server must still refuse.
	chmod(dir.c_str(), 0755);
	chmod((dir + "/sub").c_str(), 0755);
	chmod(server->path().c_str(), 0666);
	pid_t child = -1;
	std::string path = server->path();
	char uid[] = "65534";
	char *argv[] = {const_cast<char *>(ATLAS_PEER_CLIENT), path.data(), uid, nullptr};
	ASSERT_EQ(posix_spawn(&child, ATLAS_PEER_CLIENT, nullptr, nullptr, argv, environ), 0);
	int status = 0;
	waitpid(child, &status, 0);
	ASSERT_TRUE(WIFEXITED(status)) << status;
	EXPECT_EQ(WEXITSTATUS(status), 0);
	EXPECT_EQ(loads.load(), 0);
}

// The kernel's attach rules on this machine, through the socket: root (CAP_SYS_PTRACE) is
// served unless ptrace_scope is 3; nobody, not this process's user, is refused and told why.
TEST_F(ControlTest, PeerRulesOnThisMachine)
{
	if (geteuid() != 0)
		GTEST_SKIP() << "needs root to setuid() to nobody";
	const auto read_scope = atlas::control::read_ptrace_scope();
	ASSERT_TRUE(read_scope) << read_scope.error().message;
	const int scope = *read_scope;
	ASSERT_GE(scope, 0);
	EXPECT_EQ(call({{"verb", "ping"}})["ok"], true); // this process itself
	EXPECT_EQ(run_peer("0", scope == 3 ? "ptrace_scope is 3" : "\"ok\":true"), 0);
	EXPECT_EQ(run_peer("65534", scope == 3 ? "ptrace_scope is 3"
	                            : scope == 2
	                                ? "ptrace_scope is 2"
	                                : "is not this process's user (real/effective/saved uids "
	                                  "0/0/0, gids 0/0/0) and lacks CAP_SYS_PTRACE"),
	          0);
	EXPECT_EQ(loads.load(), 0);
}

// Each rule through the socket with a real peer (uid 65534, no capabilities, a child of this
// process, not an ancestor), this process's ids and the scope made those of a nobody server.
TEST_F(ControlTest, PeerRulesThroughTheSocket)
{
	if (geteuid() != 0)
		GTEST_SKIP() << "needs root to setuid() to nobody";
	auto as_nobody = [](int scope, bool dumpable) {
		return [=](atlas::control::PeerFacts &f) {
			for (int i = 0; i < 3; i++) {
				f.uid[i] = 65534;
				f.gid[i] = 65534;
			}
			f.cap_permitted = 0;
			f.ptrace_scope = scope;
			f.dumpable = dumpable;
		};
	};
	set_adjust(as_nobody(0, true));
	EXPECT_EQ(run_peer("65534", "\"ok\":true"), 0);
	set_adjust(as_nobody(0, false));
	EXPECT_EQ(run_peer("65534", "this process is not dumpable"), 0);
	EXPECT_EQ(run_peer("0", "\"ok\":true"), 0); // CAP_SYS_PTRACE
	set_adjust(as_nobody(1, true));
	EXPECT_EQ(run_peer("65534", "ptrace_scope is 1 (restricted)"), 0);
	EXPECT_EQ(run_peer("0", "\"ok\":true"), 0);
	set_adjust(as_nobody(2, true));
	EXPECT_EQ(run_peer("65534", "ptrace_scope is 2 (admin-only)"), 0);
	EXPECT_EQ(run_peer("0", "\"ok\":true"), 0);
	set_adjust(as_nobody(3, true));
	EXPECT_EQ(run_peer("65534", "ptrace_scope is 3"), 0);
	EXPECT_EQ(run_peer("0", "ptrace_scope is 3"), 0);
	// The process's own threads, even then.
	EXPECT_EQ(call({{"verb", "ping"}})["ok"], true);
	set_adjust(nullptr);
	EXPECT_EQ(loads.load(), 0);
}

TEST_F(ControlTest, ServerThreadsAreExempt)
{
	auto s = rt->status();
	EXPECT_GE(s.exempt_threads.size(), 5u); // acceptor + 4 workers (+ existing threads)
	// A transition's unknown-thread check accepts them: apply works.
	auto r = call({{"verb", "apply"}, {"patch", "e"}, {"mode", "global"}});
	EXPECT_EQ(r["outcome"], "finished") << r.dump();
}

// On (simulated) views: a wait-free transition deletes the old base, which stays live while a
// thread is in it. The server's threads are exempt and never migrate at points: after every
// connection they follow the base (Runtime::follow_base()), so none is left in a retired view.
TEST(ControlViews, ServerThreadsFollowTheBase)
{
	char tmpl[] = "/tmp/atlas-control-XXXXXX";
	ASSERT_NE(mkdtemp(tmpl), nullptr);
	const std::string dir = tmpl;
	auto views = std::make_shared<FakeViewState>();
	atlas::RuntimeOptions o;
	o.views = std::make_unique<FakeViews>(views);
	auto rt = atlas::Runtime::create(std::move(o));
	ASSERT_TRUE(rt);
	exempt_existing_threads(*rt);
	const auto before = rt->status().exempt_threads;
	Target program;
	atlas::control::ServerOptions so;
	so.path = dir + "/test.sock";
	so.loader = [&](const std::string &path) -> atlas::control::Loaded {
		return std::shared_ptr<atlas::CodeChange>(
		    std::make_shared<SwapChange>(program, path + "@1"));
	};
	auto started = atlas::control::Server::start(*rt, so);
	ASSERT_TRUE(started) << started.error().message;
	auto server = std::move(started).value();
	std::vector<pid_t> mine;
	for (pid_t t : rt->status().exempt_threads)
		if (std::find(before.begin(), before.end(), t) == before.end())
			mine.push_back(t);
	ASSERT_EQ(mine.size(), 5u); // acceptor + 4 workers
	auto all_in_base = [&] {
		const long base = rt->status().base_view;
		for (pid_t t : mine)
			if (views->current_of(t) != base)
				return false;
		return true;
	};
	for (const char *verb : {"apply", "revert"}) {
		nlohmann::json req = {{"verb", verb}, {"mode", "wait-free"}};
		if (std::string(verb) == "apply")
			req["patch"] = "p";
		else
			req["identity"] = "p@1";
		auto answer = atlas::control::call(server->path(), req);
		ASSERT_TRUE(answer) << answer.error().message;
		nlohmann::json resp = std::move(answer).value();
		ASSERT_EQ(resp["outcome"], "finished") << resp.dump();
		EXPECT_FALSE(views->live(0)) << "the first base was retired";
		EXPECT_TRUE(eventually([&] { return all_in_base(); }, 5s))
		    << verb << ": a server thread stays in a retired view";
	}
	EXPECT_EQ(rt->status().base_view, 2);
	server.reset();
	std::system(("rm -rf " + dir).c_str());
}

} // namespace

namespace
{

// The protocol's tables (protocol.hpp) cover every verb, outcome and mode once, with the names
// the runtime gives outcomes and the exit codes docs/live-patching.md lists; the server answers
// every verb in the table and names them all when it does not know one.
TEST(ProtocolTable, EveryVerbOutcomeAndModeHasOneRow)
{
	using namespace atlas::control;
	for (auto verb : {Verb::ping, Verb::status, Verb::apply, Verb::revert, Verb::wait,
	                  Verb::revert_pending}) {
		EXPECT_EQ(spec_of(verb).verb, verb);
		EXPECT_EQ(find_verb(spec_of(verb).name), &spec_of(verb));
	}
	EXPECT_EQ(verb_list(), "apply, revert, status, wait, revert_pending or ping");
	const std::pair<atlas::Outcome, int> exit_codes[] = {
	    {atlas::Outcome::finished, 0}, {atlas::Outcome::already_applied, 3},
	    {atlas::Outcome::refused, 4},  {atlas::Outcome::failed, 1},
	    {atlas::Outcome::pending, 5},  {atlas::Outcome::reverting, 5},
	    {atlas::Outcome::reverted, 6}};
	for (auto [outcome, code] : exit_codes) {
		EXPECT_EQ(spec_of(outcome).outcome, outcome);
		EXPECT_EQ(spec_of(outcome).name, atlas::to_string(outcome));
		EXPECT_EQ(static_cast<int>(spec_of(outcome).exit), code)
		    << atlas::to_string(outcome);
		EXPECT_EQ(find_outcome(spec_of(outcome).name), &spec_of(outcome));
	}
	EXPECT_EQ(find_outcome("usage"), nullptr);
	for (const auto &m : modes) {
		atlas::Mode parsed = atlas::Mode::automatic;
		EXPECT_TRUE(parse_mode(m.name, parsed));
		EXPECT_EQ(parsed, m.mode);
		EXPECT_TRUE(parse_mode(m.alias, parsed));
		EXPECT_EQ(parsed, m.mode);
	}
	for (std::size_t i = 0; i < exits.size(); i++)
		EXPECT_EQ(static_cast<std::size_t>(exits[i].code), i);
}

TEST_F(ControlTest, EveryVerbInTheTableIsAnswered)
{
	for (const auto &spec : atlas::control::verbs) {
		auto r =
		    call({{"verb", spec.name}, {"identity", "nothing@0/0"}, {"deadline_ms", 10}});
		EXPECT_EQ(r.value("verb", ""), spec.name) << r.dump();
		if (spec.reports)
			EXPECT_TRUE(r.contains("outcome") || r.contains("error")) << r.dump();
		else
			EXPECT_EQ(r["ok"], true) << r.dump();
	}
	auto r = call({{"verb", "dance"}});
	EXPECT_NE(r["error"].get<std::string>().find(atlas::control::verb_list()),
	          std::string::npos)
	    << r.dump();
}

} // namespace
