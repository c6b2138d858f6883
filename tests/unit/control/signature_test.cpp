// Signed patches (ATLAS_TRUSTED_KEYS): through the control socket with a test loader that
// records the bytes it was handed.
#include "../runtime/changes.hpp"
#include "../runtime/helpers.hpp"

#include <control.hpp>
#include <fstream>
#include <gtest/gtest.h>
#include <mutex>
#include <signature.hpp>
#include <sstream>
#include <sys/stat.h>

using namespace atlas_test;

namespace
{

std::string slurp(const std::string &path)
{
	std::ifstream in(path, std::ios::binary);
	std::stringstream s;
	s << in.rdbuf();
	return s.str();
}

void spit(const std::string &path, const std::string &data)
{
	std::ofstream out(path, std::ios::binary | std::ios::trunc);
	out << data;
}

struct SignatureTest : ::testing::Test {
	Target program;
	std::unique_ptr<atlas::Runtime> rt;
	std::unique_ptr<atlas::control::Server> server;
	std::string dir;
	std::mutex mu;
	std::vector<std::string> paths, contents;             // what the loader was handed
	std::function<void(const std::string &)> before_read; // guarded by mu

	void SetUp() override
	{
		char tmpl[] = "/tmp/atlas-sig-XXXXXX";
		ASSERT_NE(mkdtemp(tmpl), nullptr);
		dir = tmpl;
		auto views = std::make_shared<FakeViewState>();
		views->unavailable = true;
		atlas::RuntimeOptions o;
		o.views = std::make_unique<FakeViews>(views);
		rt = atlas::Runtime::create(std::move(o));
		exempt_existing_threads(*rt);
		auto made = atlas::control::generate_key(dir + "/trusted");
		ASSERT_TRUE(made) << made.error().message;
		made = atlas::control::generate_key(dir + "/other");
		ASSERT_TRUE(made) << made.error().message;
	}
	void TearDown() override
	{
		server.reset();
		std::system(("rm -rf " + dir).c_str());
	}
	atlas::control::ServerOptions options(const std::string &keys)
	{
		atlas::control::ServerOptions so;
		so.path = dir + "/s/test.sock";
		so.trusted_keys = keys;
		so.loader = [this](const std::string &path) -> atlas::control::Loaded {
			std::lock_guard lock(mu);
			if (before_read)
				before_read(path);
			std::string bytes = slurp(path);
			paths.push_back(path);
			contents.push_back(bytes);
			return std::shared_ptr<atlas::CodeChange>(
			    std::make_shared<SwapChange>(program, bytes + "@1"));
		};
		return so;
	}
	void start(const std::string &keys)
	{
		auto started = atlas::control::Server::start(*rt, options(keys));
		ASSERT_TRUE(started) << started.error().message;
		server = std::move(started).value();
	}
	nlohmann::json apply(const std::string &patch)
	{
		auto resp = atlas::control::call(
		    server->path(), {{"verb", "apply"}, {"patch", patch}, {"mode", "global"}});
		EXPECT_TRUE(resp) << (resp ? "" : resp.error().message);
		return resp ? *resp : nlohmann::json();
	}
	std::string patch(const std::string &name, const std::string &data, const char *key)
	{
		const std::string p = dir + "/" + name;
		spit(p, data);
		if (key) {
			auto signed_ = atlas::control::sign_file(dir + "/" + key + ".key", p);
			EXPECT_TRUE(signed_) << (signed_ ? "" : signed_.error().message);
		}
		return p;
	}
	std::string start_error(const std::string &keys)
	{
		auto s = atlas::control::Server::start(*rt, options(keys));
		EXPECT_FALSE(s) << "started with keys " << keys;
		return s ? std::string() : s.error().message;
	}
};

TEST_F(SignatureTest, KeygenWritesPemFiles)
{
	struct stat st;
	ASSERT_EQ(stat((dir + "/trusted.key").c_str(), &st), 0);
	EXPECT_EQ(st.st_mode & 0777, 0600u);
	EXPECT_NE(slurp(dir + "/trusted.pub").find("-----BEGIN PUBLIC KEY-----"),
	          std::string::npos);
	auto again = atlas::control::generate_key(dir + "/trusted");
	EXPECT_FALSE(again);
	const std::string error = again ? "" : again.error().message;
	EXPECT_NE(error.find("File exists"), std::string::npos) << error;
	const std::string p = patch("x.patch", "x", "trusted");
	EXPECT_EQ(slurp(p + ".sig").size(), 64u);
}

TEST_F(SignatureTest, SignedByTrustedKeyIsApplied)
{
	start(dir + "/trusted.pub");
	const std::string p = patch("a.patch", "patch bytes A", "trusted");
	auto r = apply(p);
	EXPECT_EQ(r["outcome"], "finished") << r.dump();
	std::lock_guard lock(mu);
	ASSERT_EQ(contents.size(), 1u);
	EXPECT_EQ(contents[0], "patch bytes A");
	EXPECT_TRUE(paths[0].starts_with("/proc/self/fd/")) << paths[0];
}

TEST_F(SignatureTest, UnsignedIsRefused)
{
	start(dir + "/trusted.pub");
	auto r = apply(patch("u.patch", "unsigned", nullptr));
	EXPECT_EQ(r["ok"], false);
	EXPECT_EQ(r["outcome"], "failed");
	const std::string m = r["message"];
	EXPECT_NE(m.find("signature is missing"), std::string::npos) << m;
	EXPECT_NE(m.find("atlas sign KEY"), std::string::npos) << m;
	EXPECT_TRUE(contents.empty());
}

TEST_F(SignatureTest, SignedByUntrustedKeyIsRefused)
{
	start(dir + "/trusted.pub");
	auto r = apply(patch("o.patch", "signed by other", "other"));
	EXPECT_EQ(r["outcome"], "failed");
	const std::string m = r["message"];
	EXPECT_NE(m.find("does not verify against any of its 1 key(s)"), std::string::npos) << m;
	EXPECT_TRUE(contents.empty());
}

TEST_F(SignatureTest, ModifiedAfterSigningIsRefused)
{
	start(dir + "/trusted.pub");
	const std::string p = patch("m.patch", "original", "trusted");
	spit(p, "modified");
	auto r = apply(p);
	EXPECT_EQ(r["outcome"], "failed");
	EXPECT_NE(r["message"].get<std::string>().find("changed after it was signed"),
	          std::string::npos)
	    << r.dump();
	// A signature that is not 64 bytes.
	spit(p + ".sig", "short");
	r = apply(p);
	EXPECT_EQ(r["outcome"], "failed") << r.dump();
	EXPECT_TRUE(contents.empty());
}

// The loader gets the verified bytes, whatever happens to the file after the check.
TEST_F(SignatureTest, LoaderGetsTheVerifiedBytes)
{
	start(dir + "/trusted.pub");
	const std::string p = patch("t.patch", "verified", "trusted");
	{
		std::lock_guard lock(mu);
		before_read = [&](const std::string &) { spit(p, "swapped after the check"); };
	}
	auto r = apply(p);
	EXPECT_EQ(r["outcome"], "finished") << r.dump();
	std::lock_guard lock(mu);
	ASSERT_EQ(contents.size(), 1u);
	EXPECT_EQ(contents[0], "verified");
}

TEST_F(SignatureTest, DirectoryOfKeys)
{
	const std::string keys = dir + "/keys";
	ASSERT_EQ(mkdir(keys.c_str(), 0755), 0);
	spit(keys + "/a.pub", slurp(dir + "/trusted.pub"));
	spit(keys + "/b.pub", slurp(dir + "/other.pub"));
	spit(keys + "/README", "not a key, not read");
	start(keys);
	auto r = apply(patch("d.patch", "by other, trusted in the directory", "other"));
	EXPECT_EQ(r["outcome"], "finished") << r.dump();
}

TEST_F(SignatureTest, BadTrustedKeysRefuseTheStart)
{
	spit(dir + "/garbage.pub", "not a key\n");
	EXPECT_NE(start_error(dir + "/garbage.pub").find("holds no PEM public key"),
	          std::string::npos);
	spit(dir + "/broken.pub", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n");
	EXPECT_NE(start_error(dir + "/broken.pub").find("cannot be parsed"), std::string::npos);
	EXPECT_NE(start_error(dir + "/trusted.key").find("holds a private key"), std::string::npos);
	EXPECT_NE(start_error(dir + "/missing.pub").find("No such file"), std::string::npos);
	chmod((dir + "/trusted.pub").c_str(), 0666);
	EXPECT_NE(start_error(dir + "/trusted.pub").find("writable by group or others"),
	          std::string::npos);
	const std::string empty = dir + "/empty";
	ASSERT_EQ(mkdir(empty.c_str(), 0700), 0);
	EXPECT_NE(start_error(empty).find("no *.pub or *.pem"), std::string::npos);
	// Every message says the socket is not started.
	EXPECT_NE(start_error(empty).find("control socket is not started"), std::string::npos);
	struct stat st;
	EXPECT_NE(stat((dir + "/s/test.sock").c_str(), &st), 0) << "a socket was left";
}

TEST_F(SignatureTest, EnvironmentVariable)
{
	auto so = options(dir + "/trusted.pub");
	so.trusted_keys.reset();
	setenv("ATLAS_TRUSTED_KEYS", (dir + "/nonexistent").c_str(), 1);
	auto s = atlas::control::Server::start(*rt, so);
	EXPECT_FALSE(s);
	std::string error = s ? "" : s.error().message;
	EXPECT_NE(error.find("ATLAS_TRUSTED_KEYS"), std::string::npos) << error;
	setenv("ATLAS_TRUSTED_KEYS", "", 1);
	s = atlas::control::Server::start(*rt, so);
	EXPECT_FALSE(s);
	error = s ? "" : s.error().message;
	EXPECT_NE(error.find("set but empty"), std::string::npos) << error;
	setenv("ATLAS_TRUSTED_KEYS", (dir + "/trusted.pub").c_str(), 1);
	s = atlas::control::Server::start(*rt, so);
	unsetenv("ATLAS_TRUSTED_KEYS");
	ASSERT_TRUE(s) << s.error().message;
	server = std::move(s).value();
	EXPECT_EQ(apply(patch("e.patch", "e", nullptr))["outcome"], "failed");
	EXPECT_EQ(apply(patch("f.patch", "f", "trusted"))["outcome"], "finished");
}

} // namespace
