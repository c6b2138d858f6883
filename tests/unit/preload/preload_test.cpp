// libatlas-preload.so in a real multi-threaded program (preload_target), driven through the
// control socket and the atlas CLI. Plain build only: an LD_PRELOAD library cannot come before
// the ASan runtime, and TSan's pthread_create interceptor bypasses ours.
#include "spawn.hpp"

#include <control.hpp>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <sys/syscall.h>
#include <thread>

using namespace std::chrono_literals;

namespace
{

struct PreloadTest : ::testing::Test {
	atlas_test::Process target;
	std::string dir;

	void SetUp() override
	{
		char tmpl[] = "/tmp/atlas-preload-XXXXXX";
		ASSERT_NE(mkdtemp(tmpl), nullptr);
		dir = tmpl;
		// The CLI and the target agree on the socket location through XDG_RUNTIME_DIR.
		setenv("XDG_RUNTIME_DIR", dir.c_str(), 1);
		ASSERT_TRUE(atlas_test::start_process(target, ATLAS_PRELOAD_TARGET,
		                                      {"LD_PRELOAD=" ATLAS_PRELOAD_LIB}));
		EXPECT_EQ(target.socket, fmt_socket());
		// main + 7 threads registered by the pthread_create wrapper.
		ASSERT_TRUE(eventually_threads(8));
	}
	void TearDown() override
	{
		target.stop();
		std::system(("rm -rf " + dir).c_str());
	}
	std::string fmt_socket() const
	{
		return dir + "/atlas/" + std::to_string(target.pid) + ".sock";
	}
	nlohmann::json call(const nlohmann::json &req)
	{
		auto resp = atlas::control::call(target.socket, req);
		EXPECT_TRUE(resp) << (resp ? "" : resp.error().message);
		return resp ? *resp : nlohmann::json();
	}
	bool eventually_threads(std::size_t n)
	{
		for (int i = 0; i < 500; i++) {
			auto s = call({{"verb", "status"}});
			if (s["status"]["threads"].size() == n)
				return true;
			std::this_thread::sleep_for(10ms);
		}
		return false;
	}
	pid_t tid_of(const std::string &name)
	{
		auto s = call({{"verb", "status"}});
		for (const auto &t : s["status"]["threads"])
			if (t["name"] == name)
				return t["tid"].get<pid_t>();
		return 0;
	}
	int cli(const std::string &args, std::string *out = nullptr)
	{
		return atlas_test::run_command(std::string(ATLAS_CLI) + " " + args, out);
	}
};

TEST_F(PreloadTest, ThreadsRegisteredAndQuiescentInWrappedCalls)
{
	auto s = call({{"verb", "status"}});
	std::set<std::string> names;
	for (const auto &t : s["status"]["threads"])
		names.insert(t["name"].get<std::string>());
	for (const char *n :
	     {"sleeper", "waiter", "acceptor", "looper", "stack", "signal", "sigblocked"})
		EXPECT_TRUE(names.count(n)) << n << " in " << s.dump();
	// Global mode: every thread idles in a wrapped call or passes one every few ms.
	auto r =
	    call({{"verb", "apply"}, {"patch", "ok"}, {"mode", "global"}, {"deadline_ms", 5000}});
	EXPECT_EQ(r["outcome"], "finished") << r.dump();
	r = call({{"verb", "apply"}, {"patch", "ok"}, {"mode", "global"}});
	EXPECT_EQ(r["outcome"], "already_applied") << r.dump();
	r = call({{"verb", "revert"}, {"identity", "ok@test"}, {"mode", "global"}});
	EXPECT_EQ(r["outcome"], "finished") << r.dump();
	EXPECT_EQ(target.stop(), "eintr 0");
}

TEST_F(PreloadTest, StackCheckRefusesThreadInReplacedFunction)
{
	auto r =
	    call({{"verb", "apply"}, {"patch", "stack"}, {"mode", "global"}, {"deadline_ms", 300}});
	EXPECT_EQ(r["outcome"], "refused") << r.dump();
	const auto &lagging = r["report"]["lagging"];
	ASSERT_EQ(lagging.size(), 1u) << r.dump();
	EXPECT_EQ(lagging[0]["name"], "stack");
	EXPECT_NE(lagging[0]["note"].get<std::string>().find("stack holds a function"),
	          std::string::npos)
	    << r.dump();
	auto s = call({{"verb", "status"}});
	EXPECT_TRUE(s["status"]["applied"].empty());
	EXPECT_EQ(target.stop(), "eintr 0");
}

TEST_F(PreloadTest, WrappedCallInSignalHandlerIsNotAPoint)
{
	pid_t tid = tid_of("signal");
	ASSERT_GT(tid, 0);
	ASSERT_EQ(syscall(SYS_tgkill, target.pid, tid, SIGUSR1), 0);
	std::this_thread::sleep_for(30ms); // the handler sleeps 300 ms in nanosleep (wrapped)
	auto r =
	    call({{"verb", "apply"}, {"patch", "ok2"}, {"mode", "global"}, {"deadline_ms", 100}});
	EXPECT_EQ(r["outcome"], "refused") << r.dump();
	bool named = false;
	for (const auto &t : r["report"]["lagging"])
		named |= t["name"] == "signal";
	EXPECT_TRUE(named) << r.dump();
	std::this_thread::sleep_for(400ms);
	r = call({{"verb", "apply"}, {"patch", "ok2"}, {"mode", "global"}, {"deadline_ms", 5000}});
	EXPECT_EQ(r["outcome"], "finished") << r.dump();
	EXPECT_EQ(target.stop(), "eintr 0");
}

// Repeated transitions against threads idling in every kind of wrapped call: each finishes
// well before its deadline, and the application never sees EINTR.
TEST_F(PreloadTest, RepeatedTransitions)
{
	for (int i = 0; i < 40; i++) {
		auto start = std::chrono::steady_clock::now();
		auto r = call({{"verb", "apply"},
		               {"patch", "ok"},
		               {"mode", "global"},
		               {"deadline_ms", 5000}});
		ASSERT_EQ(r["outcome"], "finished") << i << ": " << r.dump();
		r = call({{"verb", "revert"},
		          {"identity", "ok@test"},
		          {"mode", "global"},
		          {"deadline_ms", 5000}});
		ASSERT_EQ(r["outcome"], "finished") << i << ": " << r.dump();
		EXPECT_LT(std::chrono::steady_clock::now() - start, 2s) << i;
	}
	EXPECT_EQ(target.stop(), "eintr 0");
}

// A handler interrupting a thread blocked in a wrapped call runs application code: the thread
// must not count as quiescent while it runs.
TEST_F(PreloadTest, HandlerOnBlockedThreadIsNotQuiescent)
{
	pid_t tid = tid_of("sigblocked");
	ASSERT_GT(tid, 0);
	ASSERT_EQ(syscall(SYS_tgkill, target.pid, tid, SIGUSR1), 0);
	std::this_thread::sleep_for(30ms); // the handler sleeps 300 ms
	auto r =
	    call({{"verb", "apply"}, {"patch", "ok2"}, {"mode", "global"}, {"deadline_ms", 100}});
	EXPECT_EQ(r["outcome"], "refused") << r.dump();
	bool named = false;
	for (const auto &t : r["report"]["lagging"])
		named |= t["name"] == "sigblocked";
	EXPECT_TRUE(named) << r.dump();
	std::this_thread::sleep_for(400ms);
	r = call({{"verb", "apply"}, {"patch", "ok2"}, {"mode", "global"}, {"deadline_ms", 5000}});
	EXPECT_EQ(r["outcome"], "finished") << r.dump();
	EXPECT_EQ(target.stop(), "eintr 0");
}

TEST_F(PreloadTest, CliExitCodes)
{
	const std::string pid = std::to_string(target.pid);
	std::string out;
	EXPECT_EQ(cli("status " + pid, &out), 0) << out;
	EXPECT_NE(out.find("acceptor"), std::string::npos) << out;
	EXPECT_EQ(cli("ps", &out), 0) << out;
	EXPECT_NE(out.find(pid), std::string::npos) << out;
	EXPECT_EQ(cli("apply " + pid + " ok --mode global", &out), 0) << out;
	EXPECT_EQ(cli("apply " + pid + " ok --mode global", &out), 3) << out;
	EXPECT_EQ(cli("apply " + pid + " stack --mode global --deadline 200", &out), 4) << out;
	EXPECT_NE(out.find("stack"), std::string::npos) << out;
	EXPECT_EQ(cli("apply " + pid + " nonexistent", &out), 1) << out;
	EXPECT_EQ(cli("revert " + pid + " ok@test --mode global", &out), 0) << out;
	EXPECT_EQ(cli("revert " + pid + " ok@test", &out), 4) << out; // not applied: refused
	EXPECT_EQ(cli("--json status " + pid, &out), 0) << out;
	EXPECT_TRUE(nlohmann::json::parse(out, nullptr, false).is_object()) << out;
	EXPECT_EQ(cli("wait " + pid, &out), 4) << out; // nothing pending: refused
	EXPECT_EQ(cli("apply " + pid + " ok --mode sideways", &out), 2) << out;
	EXPECT_EQ(cli("status " + std::to_string(getpid()), &out), 7) << out;
	EXPECT_NE(out.find("LD_PRELOAD"), std::string::npos) << out;
	EXPECT_EQ(target.stop(), "eintr 0");
}

} // namespace

namespace
{

// A daemonizing fork: the child gets its own runtime and socket, the parent keeps its own.
TEST(PreloadFork, ChildServesItsOwnSocket)
{
	char tmpl[] = "/tmp/atlas-fork-XXXXXX";
	ASSERT_NE(mkdtemp(tmpl), nullptr);
	std::string dir = tmpl;
	setenv("XDG_RUNTIME_DIR", dir.c_str(), 1);
	atlas_test::Process target;
	ASSERT_TRUE(atlas_test::start_process(
	    target, ATLAS_PRELOAD_TARGET, {"LD_PRELOAD=" ATLAS_PRELOAD_LIB, "ATLAS_TEST_FORK=1"}));
	auto call = [](const std::string &path, const nlohmann::json &req) {
		auto resp = atlas::control::call(path, req);
		EXPECT_TRUE(resp) << (resp ? "" : resp.error().message);
		return resp ? *resp : nlohmann::json();
	};
	auto ping = call(target.socket, {{"verb", "ping"}});
	const pid_t child = ping.value("pid", 0);
	EXPECT_NE(child, target.pid);
	EXPECT_EQ(target.socket, dir + "/atlas/" + std::to_string(child) + ".sock");
	// The parent still answers on its own socket.
	auto parent =
	    call(dir + "/atlas/" + std::to_string(target.pid) + ".sock", {{"verb", "ping"}});
	EXPECT_EQ(parent.value("pid", 0), target.pid);
	// The child's threads are registered with the child's runtime, and it can be patched.
	bool all = false;
	for (int i = 0; i < 500 && !all; i++) {
		all = call(target.socket, {{"verb", "status"}})["status"]["threads"].size() == 8;
		if (!all)
			std::this_thread::sleep_for(10ms);
	}
	EXPECT_TRUE(all);
	auto r =
	    call(target.socket,
	         {{"verb", "apply"}, {"patch", "ok"}, {"mode", "global"}, {"deadline_ms", 5000}});
	EXPECT_EQ(r["outcome"], "finished") << r.dump();
	EXPECT_EQ(target.stop(), "eintr 0");
	std::system(("rm -rf " + dir).c_str());
}

// A real patch (atlas-mkpatch output, loaded by atlas::patch::load_patch in the target) applied,
// re-applied, reverted and applied again with the CLI while the program keeps running.
TEST(PreloadRealPatch, ApplyRevertThroughCli)
{
	char tmpl[] = "/tmp/atlas-real-XXXXXX";
	ASSERT_NE(mkdtemp(tmpl), nullptr);
	std::string dir = tmpl;
	setenv("XDG_RUNTIME_DIR", dir.c_str(), 1);
	atlas_test::Process target;
	ASSERT_TRUE(atlas_test::start_process(target, ATLAS_REAL_TARGET,
	                                      {"LD_PRELOAD=" ATLAS_PRELOAD_LIB}));
	ASSERT_EQ(target.line(), "answer 1");
	const std::string pid = std::to_string(target.pid);
	auto cli = [](const std::string &args, std::string &out) {
		FILE *p = popen((std::string(ATLAS_CLI) + " " + args + " 2>&1").c_str(), "r");
		out.clear();
		char buf[4096];
		size_t n;
		while ((n = fread(buf, 1, sizeof(buf), p)) > 0)
			out.append(buf, n);
		int status = pclose(p);
		return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	};
	std::string out;
	ASSERT_EQ(cli("apply " + pid + " " ATLAS_REAL_PATCH " --mode global --deadline 5000", out),
	          0)
	    << out;
	EXPECT_EQ(target.line(), "answer 2");
	EXPECT_EQ(cli("apply " + pid + " " ATLAS_REAL_PATCH, out), 3) << out;
	ASSERT_EQ(cli("--json status " + pid, out), 0) << out;
	auto status = nlohmann::json::parse(out, nullptr, false);
	ASSERT_EQ(status["status"]["applied"].size(), 1u) << out;
	std::string identity = status["status"]["applied"][0]["change"];
	EXPECT_NE(identity.find("real-fix"), std::string::npos) << identity;
	ASSERT_EQ(cli("revert " + pid + " " + identity + " --mode global", out), 0) << out;
	EXPECT_EQ(target.line(), "answer 1");
	ASSERT_EQ(cli("apply " + pid + " " ATLAS_REAL_PATCH " --mode global", out), 0) << out;
	EXPECT_EQ(target.line(), "answer 2");
	// The event loop serve() never returns: its replacement is refused (process unchanged),
	// the idling thread named with the stack check's reason.
	EXPECT_EQ(
	    cli("apply " + pid + " " ATLAS_REAL_SERVE_PATCH " --mode global --deadline 300", out),
	    4)
	    << out;
	EXPECT_NE(out.find("stack holds serve, which the change replaces"), std::string::npos)
	    << out;
	ASSERT_EQ(cli("--json status " + pid, out), 0) << out;
	EXPECT_EQ(nlohmann::json::parse(out, nullptr, false)["status"]["applied"].size(), 1u)
	    << out;
	EXPECT_EQ(target.stop(), "bye");
	std::system(("rm -rf " + dir).c_str());
}

// Every way of idling that real servers use is a quiescence point (idle/idle_target.c: usleep
// and sleep pacing, read and write on pipes, contended mutex and rwlock, pthread_join, waitpid,
// pause, a barrier, flock, sem_timedwait, readv): a global transition finds all 14 threads
// quiescent on the first try, well within its deadline, every time, and the program sees no
// failed call. Before these calls were wrapped, every apply to it was refused.
void patch_idle_target(const std::vector<std::string> &env, bool by_name);

TEST(PreloadIdle, EveryIdlePatternIsAQuiescencePoint)
{
	patch_idle_target({"LD_PRELOAD=" ATLAS_PRELOAD_LIB}, true);
}

// A server started by root that drops to its own user (memcached -u memcache) is not
// dumpable: /proc/self belongs to root then. It is patched and reverted all the same.
TEST(PreloadIdle, AfterDroppingPrivilegesToo)
{
	if (geteuid() != 0)
		GTEST_SKIP() << "needs root to drop privileges";
	patch_idle_target({"LD_PRELOAD=" ATLAS_PRELOAD_LIB, "IDLE_TARGET_USER=nobody"}, false);
}

void patch_idle_target(const std::vector<std::string> &env, bool by_name)
{
	char tmpl[] = "/tmp/atlas-idle-XXXXXX";
	ASSERT_NE(mkdtemp(tmpl), nullptr);
	std::string dir = tmpl;
	setenv("XDG_RUNTIME_DIR", dir.c_str(), 1);
	atlas_test::Process target;
	ASSERT_TRUE(atlas_test::start_process(target, ATLAS_IDLE_TARGET, env));
	const std::string pid = std::to_string(target.pid);
	std::string out;
	auto cli = [&](const std::string &args) {
		return atlas_test::run_command(std::string(ATLAS_CLI) + " " + args + " 2>&1", &out);
	};
	// main, the 17 idling threads and the thread pthread_join waits for.
	bool all = false;
	for (int i = 0; i < 500 && !all; i++) {
		ASSERT_EQ(cli("--json status " + pid), 0) << out;
		all = nlohmann::json::parse(out, nullptr, false)["status"]["threads"].size() == 19;
		if (!all)
			std::this_thread::sleep_for(10ms);
	}
	ASSERT_TRUE(all) << out;
	std::this_thread::sleep_for(200ms); // every thread into its idle call
	for (int round = 0; round < 3; round++) {
		ASSERT_EQ(
		    cli("apply " + pid + " " ATLAS_IDLE_PATCH " --mode global --deadline 3000"), 0)
		    << "round " << round << ": " << out;
		ASSERT_EQ(cli("--json status " + pid), 0) << out;
		auto status = nlohmann::json::parse(out, nullptr, false);
		ASSERT_EQ(status["status"]["applied"].size(), 1u) << out;
		const std::string identity = status["status"]["applied"][0]["change"];
		// Reverted by its whole identity, by its name, by a prefix of the identity.
		const std::string names[] = {identity, "idle-fix", identity.substr(0, 12)};
		const std::string name = by_name ? names[round] : identity;
		ASSERT_EQ(cli("revert " + pid + " " + name + " --mode global --deadline 3000"), 0)
		    << "round " << round << ": " << out;
	}
	EXPECT_EQ(cli("revert " + pid + " idle-fix"), 4) << out;
	EXPECT_NE(out.find("revert: 'idle-fix' is not applied in process " + pid +
	                   ": no applied patch has that name or starts with it; none is applied"),
	          std::string::npos)
	    << out;
	EXPECT_EQ(target.stop(), "errors 0");
	std::system(("rm -rf " + dir).c_str());
}

// Mappings of patch `name` in process `pid` (its text is the memfd "atlas-patch:<name>").
int patch_mappings(pid_t pid, const std::string &name)
{
	std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
	std::string line;
	int n = 0;
	while (std::getline(maps, line))
		n += line.find("atlas-patch:" + name) != std::string::npos;
	return n;
}

// A patch loaded for an apply that does not take it (already applied, refused) is unmapped at
// once, and a patch stacked later binds to the applied instance, never to such a copy.
TEST(PreloadRealPatch, UnappliedCopiesAreUnmappedAndNeverStackedOn)
{
	char tmpl[] = "/tmp/atlas-real-XXXXXX";
	ASSERT_NE(mkdtemp(tmpl), nullptr);
	std::string dir = tmpl;
	setenv("XDG_RUNTIME_DIR", dir.c_str(), 1);
	atlas_test::Process target;
	ASSERT_TRUE(atlas_test::start_process(target, ATLAS_REAL_TARGET,
	                                      {"LD_PRELOAD=" ATLAS_PRELOAD_LIB}));
	ASSERT_EQ(target.line(), "answer 1");
	const std::string pid = std::to_string(target.pid);
	auto cli = [](const std::string &args, std::string &out) {
		return atlas_test::run_command(std::string(ATLAS_CLI) + " " + args, &out);
	};
	std::string out;
	EXPECT_EQ(patch_mappings(target.pid, "real-fix"), 0);
	ASSERT_EQ(cli("apply " + pid + " " ATLAS_REAL_PATCH " --mode global --deadline 5000", out),
	          0)
	    << out;
	EXPECT_EQ(target.line(), "answer 2");
	const int fix_mappings = patch_mappings(target.pid, "real-fix");
	EXPECT_GE(fix_mappings, 1);
	for (int i = 0; i < 3; i++) {
		EXPECT_EQ(cli("apply " + pid + " " ATLAS_REAL_PATCH, out), 3) << out;
		EXPECT_EQ(patch_mappings(target.pid, "real-fix"), fix_mappings)
		    << "an already applied copy stayed mapped (round " << i << ")";
	}
	for (int i = 0; i < 2; i++) {
		EXPECT_EQ(
		    cli("apply " + pid + " " ATLAS_REAL_SERVE_PATCH " --mode global --deadline 300",
		        out),
		    4)
		    << out;
		EXPECT_EQ(patch_mappings(target.pid, "real-serve"), 0)
		    << "a refused patch stayed mapped (round " << i << ")";
	}
	// Stacked on real-fix: its real_fix_calls must be the applied instance's (x + 3), not a
	// copy's that never ran (x + 30), let alone an unmapped copy's (the target would crash).
	ASSERT_EQ(
	    cli("apply " + pid + " " ATLAS_REAL_STACK_PATCH " --mode global --deadline 5000", out),
	    0)
	    << out;
	EXPECT_EQ(target.line(), "answer 3");
	ASSERT_EQ(cli("--json status " + pid, out), 0) << out;
	auto applied = nlohmann::json::parse(out, nullptr, false)["status"]["applied"];
	ASSERT_EQ(applied.size(), 2u) << out;
	// Last in, first out.
	for (int i = 1; i >= 0; i--) {
		ASSERT_EQ(cli("revert " + pid + " " + applied[i]["change"].get<std::string>() +
		                  " --mode global",
		              out),
		          0)
		    << out;
		EXPECT_EQ(target.line(), i == 1 ? "answer 2" : "answer 1");
	}
	// Reverted: released by the runtime, once.
	EXPECT_EQ(patch_mappings(target.pid, "real-fix"), 0);
	EXPECT_EQ(patch_mappings(target.pid, "real-stack"), 0);
	EXPECT_EQ(target.stop(), "bye");
	std::system(("rm -rf " + dir).c_str());
}

// Wait-free mode on simulated views (ATLAS_PRELOAD_TEST_SIMULATED_VIEWS=1): a library dlopen'ed
// while the transition is pending (two views) is named in status until one view remains.
TEST(PreloadSimulatedViews, DlopenWhileTwoViewsExistIsNotedInStatus)
{
	char tmpl[] = "/tmp/atlas-dlopen-XXXXXX";
	ASSERT_NE(mkdtemp(tmpl), nullptr);
	std::string dir = tmpl;
	setenv("XDG_RUNTIME_DIR", dir.c_str(), 1);
	atlas_test::Process target;
	ASSERT_TRUE(atlas_test::start_process(target, ATLAS_PRELOAD_TARGET,
	                                      {"LD_PRELOAD=" ATLAS_PRELOAD_LIB,
	                                       "ATLAS_PRELOAD_TEST_SIMULATED_VIEWS=1",
	                                       "ATLAS_TEST_DLOPEN=" ATLAS_DLOPEN_PROBE}));
	auto call = [&](const nlohmann::json &req) {
		auto resp = atlas::control::call(target.socket, req);
		EXPECT_TRUE(resp) << (resp ? "" : resp.error().message);
		return resp ? *resp : nlohmann::json();
	};
	bool all = false;
	for (int i = 0; i < 500 && !all; i++) {
		all = call({{"verb", "status"}})["status"]["threads"].size() == 8;
		if (!all)
			std::this_thread::sleep_for(10ms);
	}
	ASSERT_TRUE(all);
	EXPECT_EQ(call({{"verb", "status"}})["status"]["views_available"], true);
	// "stack" replaces the function the "stack" thread idles in: the stack check holds it
	// back, so the transition stays pending with two views.
	auto r = call(
	    {{"verb", "apply"}, {"patch", "stack"}, {"mode", "wait-free"}, {"deadline_ms", 200}});
	ASSERT_EQ(r["outcome"], "pending") << r.dump();
	EXPECT_TRUE(call({{"verb", "status"}})["status"]["loaded_while_split"].empty());
	ASSERT_EQ(kill(target.pid, SIGUSR2), 0); // the program dlopens the probe library
	nlohmann::json listed;
	for (int i = 0; i < 200 && listed.empty(); i++) {
		listed = call({{"verb", "status"}})["status"]["loaded_while_split"];
		if (listed.empty())
			std::this_thread::sleep_for(10ms);
	}
	ASSERT_EQ(listed.size(), 1u) << listed.dump();
	EXPECT_NE(listed[0]["name"].get<std::string>().find("dlopen_probe"), std::string::npos);
	EXPECT_NE(
	    listed[0]["note"].get<std::string>().find("cannot be unshared until one view remains"),
	    std::string::npos)
	    << listed.dump();
	// `atlas status` shows it too, and the blocked threads the transition counts as migrated:
	// they stay in the old view until their calls return.
	std::string out;
	ASSERT_EQ(atlas_test::run_command(
	              std::string(ATLAS_CLI) + " status " + std::to_string(target.pid), &out),
	          0)
	    << out;
	for (const std::string &text :
	     {std::string("wait-free mode: available"), std::string(" pending (target view "),
	      std::string("objects loaded while two views exist (1):"),
	      listed[0]["name"].get<std::string>(), listed[0]["note"].get<std::string>(),
	      std::string("blocked  (migrates on wake)")})
		EXPECT_NE(out.find(text), std::string::npos) << text << " missing in:\n" << out;
	r = call({{"verb", "revert_pending"}, {"deadline_ms", 5000}});
	EXPECT_EQ(r["outcome"], "reverted") << r.dump();
	EXPECT_TRUE(call({{"verb", "status"}})["status"]["loaded_while_split"].empty());
	EXPECT_EQ(target.stop(), "eintr 0");
	std::system(("rm -rf " + dir).c_str());
}

// The CLI's exit codes for the wait-free outcomes, on simulated views: an apply that stays
// pending at its deadline (5, with what to do next), a wait that is still pending (5), a
// revert-pending (6: reverted, nothing changed); then a wait-free apply and revert that finish
// (0) while threads sit blocked in wrapped calls.
TEST(PreloadSimulatedViews, CliPendingAndRevertedExitCodes)
{
	char tmpl[] = "/tmp/atlas-cli-wf-XXXXXX";
	ASSERT_NE(mkdtemp(tmpl), nullptr);
	std::string dir = tmpl;
	setenv("XDG_RUNTIME_DIR", dir.c_str(), 1);
	atlas_test::Process target;
	ASSERT_TRUE(atlas_test::start_process(
	    target, ATLAS_PRELOAD_TARGET,
	    {"LD_PRELOAD=" ATLAS_PRELOAD_LIB, "ATLAS_PRELOAD_TEST_SIMULATED_VIEWS=1"}));
	const std::string pid = std::to_string(target.pid);
	auto cli = [&](const std::string &args, std::string *out) {
		return atlas_test::run_command(std::string(ATLAS_CLI) + " " + args, out);
	};
	std::string out;
	bool all = false;
	for (int i = 0; i < 500 && !all; i++) {
		all = cli("--json status " + pid, &out) == 0 &&
		      nlohmann::json::parse(out, nullptr, false)["status"]["threads"].size() == 8;
		if (!all)
			std::this_thread::sleep_for(10ms);
	}
	ASSERT_TRUE(all) << out;
	// "stack" replaces the function the "stack" thread idles in: held back by the stack check.
	EXPECT_EQ(cli("apply " + pid + " stack --mode wait-free --deadline 200", &out), 5) << out;
	EXPECT_NE(out.find("pending"), std::string::npos) << out;
	EXPECT_NE(out.find("revert-pending"), std::string::npos) << "what to do next: " << out;
	EXPECT_EQ(cli("wait " + pid + " --deadline 100", &out), 5) << out;
	{
		// The "stack" thread is still lagging, with why; threads blocked with clean stacks
		// count as migrated and move when their calls return.
		ASSERT_EQ(cli("--json status " + pid, &out), 0) << out;
		const auto st = nlohmann::json::parse(out, nullptr, false)["status"];
		bool stack_lagging = false;
		int sleepers = 0;
		for (const auto &t : st["threads"]) {
			if (t["name"] == "stack")
				stack_lagging =
				    t["note"].get<std::string>().find("stack holds a function") !=
				        std::string::npos &&
				    t["view"] != st["transition"]["target_view"] &&
				    !t["migrates_on_wake"].get<bool>();
			else
				sleepers += t["migrates_on_wake"].get<bool>();
		}
		EXPECT_TRUE(stack_lagging) << out;
		EXPECT_GT(sleepers, 0) << out;
	}
	EXPECT_EQ(cli("apply " + pid + " ok --mode wait-free", &out), 4) << "busy: " << out;
	EXPECT_EQ(cli("revert-pending " + pid + " --deadline 5000", &out), 6) << out;
	EXPECT_EQ(cli("revert-pending " + pid, &out), 4) << "nothing pending: " << out;
	EXPECT_EQ(cli("apply " + pid + " ok --mode wait-free --deadline 5000", &out), 0) << out;
	EXPECT_EQ(cli("apply " + pid + " ok --mode wait-free", &out), 3) << out;
	EXPECT_EQ(cli("revert " + pid + " ok@test --mode wait-free --deadline 5000", &out), 0)
	    << out;
	// Nothing applied, no transition, and no thread left in a retired view: the control
	// server's threads follow the base after each connection (so poll briefly).
	nlohmann::json s;
	for (int i = 0; i < 200; i++) {
		ASSERT_EQ(cli("--json status " + pid, &out), 0) << out;
		s = nlohmann::json::parse(out, nullptr, false)["status"];
		if (s["left_behind"].empty())
			break;
		std::this_thread::sleep_for(10ms);
	}
	EXPECT_TRUE(s["applied"].empty()) << out;
	EXPECT_FALSE(s.contains("transition")) << out;
	EXPECT_TRUE(s["left_behind"].empty()) << out;
	EXPECT_EQ(target.stop(), "eintr 0");
	std::system(("rm -rf " + dir).c_str());
}

} // namespace
