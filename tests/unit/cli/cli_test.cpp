// The atlas CLI against a real runtime process (explicit_target: its own Runtime and control
// Server, no LD_PRELOAD), so this runs in the plain, ASan+UBSan and TSan builds.
#include "../preload/spawn.hpp"

#include <cstring>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <string>
#include <sys/socket.h>
#include <sys/un.h>
#include <thread>

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
	// A stale socket file of a dead process is listed as not answering.
	std::string stale = dir + "/atlas/1.sock";
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	sockaddr_un a{};
	a.sun_family = AF_UNIX;
	std::strcpy(a.sun_path, stale.c_str());
	ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof(a)), 0);
	close(fd);
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
	ASSERT_EQ(run("ps", &out), 0) << out;
	EXPECT_NE(out.find(pid), std::string::npos) << out;
}

} // namespace
