// The atlas CLI against a real runtime process (explicit_target: its own Runtime and control
// Server, no LD_PRELOAD), so this runs in the plain, ASan+UBSan and TSan builds.
#include "../preload/spawn.hpp"

#include <cstring>
#include <gtest/gtest.h>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace
{

struct CliTest : ::testing::Test {
	atlas_test::Process target;
	std::string dir;
	std::string pid;

	void SetUp() override
	{
		char tmpl[] = "/tmp/atlas-cli-XXXXXX";
		ASSERT_NE(mkdtemp(tmpl), nullptr);
		dir = tmpl;
		setenv("XDG_RUNTIME_DIR", dir.c_str(), 1);
		ASSERT_TRUE(atlas_test::start_process(target, ATLAS_EXPLICIT_TARGET, {}));
		pid = std::to_string(target.pid);
		EXPECT_EQ(target.socket, dir + "/atlas/" + pid + ".sock");
		// Six worker threads register themselves (main and sanitizer threads are exempt).
		bool all = false;
		for (int i = 0; i < 500 && !all; i++) {
			std::string out;
			run("--json status " + pid, &out);
			auto j = nlohmann::json::parse(out, nullptr, false);
			all = j.is_object() && j["status"]["threads"].size() >= 6;
			if (!all)
				std::this_thread::sleep_for(10ms);
		}
		ASSERT_TRUE(all);
	}
	void TearDown() override
	{
		target.stop();
		std::system(("rm -rf " + dir).c_str());
	}
	static int run(const std::string &args, std::string *out = nullptr)
	{
		return atlas_test::run_command(std::string(ATLAS_CLI) + " " + args, out);
	}
};

TEST_F(CliTest, StatusHumanAndJson)
{
	std::string out;
	ASSERT_EQ(run("status " + pid, &out), 0) << out;
	EXPECT_NE(out.find("global only"), std::string::npos) << out;
	EXPECT_NE(out.find("acceptor"), std::string::npos) << out;
	EXPECT_NE(out.find("applied patches (0)"), std::string::npos) << out;
	ASSERT_EQ(run("--json status " + pid, &out), 0) << out;
	auto j = nlohmann::json::parse(out, nullptr, false);
	ASSERT_TRUE(j.is_object()) << out;
	EXPECT_EQ(j["pid"], target.pid);
}

// Every field of the status JSON appears in the human output, with its value. A field added to
// the JSON without a line in `atlas status` fails here until it gets one.
TEST_F(CliTest, StatusHumanShowsEveryJsonField)
{
	std::string out;
	ASSERT_EQ(run("apply " + pid + " ok --mode global --deadline 5000", &out), 0) << out;
	ASSERT_EQ(run("--json status " + pid, &out), 0) << out;
	const auto s = nlohmann::json::parse(out, nullptr, false)["status"];
	ASSERT_TRUE(s.is_object()) << out;
	ASSERT_EQ(run("status " + pid, &out), 0) << out;
	auto shows = [&](const std::string &text) { return out.find(text) != std::string::npos; };
	// What the human output shows for each field (values that cannot change in between).
	std::string exempt;
	for (const auto &t : s["exempt_threads"])
		exempt += (exempt.empty() ? "" : " ") + std::to_string(t.get<long long>());
	const std::map<std::string, std::vector<std::string>> shown = {
	    {"mode", {"process " + pid + ": " + s["mode"].get<std::string>()}},
	    {"views_available", {"wait-free mode: unavailable"}},
	    {"views_note", {"wait-free mode: unavailable: " + s["views_note"].get<std::string>()}},
	    {"membarrier_sync_core",
	     {std::string("membarrier SYNC_CORE: ") +
	      (s["membarrier_sync_core"].get<bool>() ? "yes" : "no")}},
	    {"membarrier_note", {s["membarrier_note"].get<std::string>()}},
	    {"base_view", {"base view " + std::to_string(s["base_view"].get<long>())}},
	    {"single_view", {"views live: unknown (no views, or no probe)"}},
	    {"threads",
	     {"threads (" + std::to_string(s["threads"].size()) + "):", "last quiescence", " ago"}},
	    {"exempt_threads",
	     {"exempt threads (" + std::to_string(s["exempt_threads"].size()) + "): " + exempt}},
	    {"applied", {"applied patches (1):", "ok@test  (global mode, transition 1"}},
	    {"slow_path_entries",
	     {"handshakes begun (slow paths of points, wrapped-call exits): "}},
	    {"migrated_on_wake",
	     {"threads that woke in a retired view and moved to the base: " +
	      std::to_string(s["migrated_on_wake"].get<long long>())}},
	    {"loaded_while_split", {"objects loaded while two views exist (0)"}},
	    {"left_behind", {"threads left in a retired view (0)"}},
	    {"last_report",
	     {"last request: finished ok@test: apply ok@test: done in global mode (transition 1, "
	      "global mode, "}},
	};
	for (const auto &[key, value] : s.items()) {
		auto it = shown.find(key);
		ASSERT_NE(it, shown.end()) << "status field \"" << key << "\" (" << value.dump()
		                           << ") is not in the human output:\n"
		                           << out;
		for (const auto &text : it->second)
			EXPECT_TRUE(shows(text)) << key << ": \"" << text << "\" missing in:\n"
			                         << out;
	}
	// Fields that appear only sometimes are checked as well when absent here.
	EXPECT_FALSE(s.contains("transition"));
	EXPECT_FALSE(shows("transition 1 ")) << out;
	EXPECT_FALSE(s["views_available"].get<bool>());
	EXPECT_EQ(s["migrated_on_wake"], 0);
	// Threads that completed the transition's handshake show when (blocked ones may never).
	bool quiesced = false;
	for (const auto &t : s["threads"])
		quiesced |= t["last_quiescence_ns"].get<long long>() > 0;
	EXPECT_TRUE(quiesced);
}

TEST_F(CliTest, ApplyRevertExitCodes)
{
	std::string out;
	EXPECT_EQ(run("apply " + pid + " ok --mode global --deadline 5000", &out), 0) << out;
	EXPECT_NE(out.find("finished"), std::string::npos) << out;
	EXPECT_EQ(run("apply " + pid + " ok", &out), 3) << out;
	EXPECT_EQ(run("status " + pid, &out), 0) << out;
	EXPECT_NE(out.find("ok@test"), std::string::npos) << out;
	EXPECT_EQ(run("apply " + pid + " broken", &out), 1) << out;
	EXPECT_NE(out.find("no such test patch"), std::string::npos) << out;
	EXPECT_EQ(run("apply " + pid + " ok2 --mode wait-free", &out), 4) << out;
	EXPECT_EQ(run("--json revert " + pid + " ok@test", &out), 0) << out;
	auto j = nlohmann::json::parse(out, nullptr, false);
	EXPECT_EQ(j["outcome"], "finished") << out;
	EXPECT_EQ(run("revert " + pid + " ok@test", &out), 4) << out;
	EXPECT_EQ(run("revert-pending " + pid, &out), 4) << out;
	EXPECT_EQ(run("wait " + pid, &out), 4) << out;
}

TEST_F(CliTest, UsageAndUnreachable)
{
	std::string out;
	EXPECT_EQ(run("", &out), 2) << out;
	EXPECT_EQ(run("apply " + pid, &out), 2) << out;
	EXPECT_EQ(run("apply " + pid + " ok --mode sideways", &out), 2) << out;
	EXPECT_EQ(run("status notapid", &out), 2) << out;
	EXPECT_EQ(run("status " + std::to_string(getpid()), &out), 7) << out;
	EXPECT_NE(out.find("LD_PRELOAD="), std::string::npos) << out;
	EXPECT_EQ(run("status 999999999", &out), 7) << out;
	EXPECT_EQ(run("--help", &out), 0) << out;
	EXPECT_NE(out.find("Exit codes"), std::string::npos) << out;
}

TEST_F(CliTest, PsFindsLiveRuntimesOnly)
{
	auto bound_socket = [](const std::string &path) {
		int fd = socket(AF_UNIX, SOCK_STREAM, 0);
		sockaddr_un a{};
		a.sun_family = AF_UNIX;
		std::strcpy(a.sun_path, path.c_str());
		const bool ok = bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof(a)) == 0;
		close(fd);
		return ok;
	};
	// A socket whose process lives but does not answer is listed as not answering.
	ASSERT_TRUE(bound_socket(dir + "/atlas/1.sock"));
	// One whose process is gone (killed before it could remove it) is removed, not listed.
	const pid_t gone = fork();
	if (gone == 0)
		_exit(0);
	ASSERT_GT(gone, 0);
	waitpid(gone, nullptr, 0);
	const std::string stale = dir + "/atlas/" + std::to_string(gone) + ".sock";
	ASSERT_TRUE(bound_socket(stale));
	std::string out;
	ASSERT_EQ(run("--json ps", &out), 0) << out;
	auto list = nlohmann::json::parse(out, nullptr, false);
	ASSERT_TRUE(list.is_array()) << out;
	bool live = false, dead = false;
	for (const auto &p : list) {
		if (p["pid"] == target.pid)
			live = p["alive"].get<bool>();
		if (p["pid"] == 1)
			dead = !p["alive"].get<bool>();
	}
	EXPECT_TRUE(live) << out;
	EXPECT_TRUE(dead) << out;
	for (const auto &p : list)
		EXPECT_NE(p["pid"], gone) << out;
	EXPECT_NE(access(stale.c_str(), F_OK), 0) << stale << " left behind";
	ASSERT_EQ(run("ps", &out), 0) << out;
	EXPECT_NE(out.find(pid), std::string::npos) << out;
}

} // namespace
