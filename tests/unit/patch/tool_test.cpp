// SPDX-License-Identifier: MIT
// atlas-mkpatch end to end: building, manifest validation against the target, --inspect.
#include "atlas/patch/patch.hpp"

#include "test_util.hpp"

#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

namespace atlas::patch
{
namespace
{

namespace fs = std::filesystem;
using test::bin;
using test::load;
using test::run;

class Tool : public ::testing::Test
{
protected:
	void SetUp() override
	{
		dir = fs::temp_directory_path() /
		      ("atlas-mkpatch-test." + std::to_string(getpid()) + "." +
		       ::testing::UnitTest::GetInstance()->current_test_info()->name());
		fs::create_directories(dir);
	}
	void TearDown() override
	{
		fs::remove_all(dir);
	}
	// Writes a manifest whose source is fix.c; returns its path.
	std::string manifest(nlohmann::json j)
	{
		if (!j.contains("source"))
			j["source"] = test::patch_src("fix.c");
		if (!j.contains("name"))
			j["name"] = "t";
		std::string path = (dir / "m.json").string();
		std::ofstream(path) << j.dump();
		return path;
	}
	test::RunResult mkpatch(const std::string &args)
	{
		return run(std::string(ATLAS_TEST_MKPATCH) + " " + args);
	}
	test::RunResult build(const nlohmann::json &j,
	                      const std::string &target = ATLAS_TEST_TARGET,
	                      const std::string &args = "")
	{
		return mkpatch("-m " + manifest(j) + " --target " + target + " -o " +
		               (dir / "out.patch.o").string() + " " + args);
	}
	fs::path dir;
};

TEST_F(Tool, BuildsAPatch)
{
	auto r =
	    build({{"requires_global", true},
	           {"redirects",
	            {{{"target", "helper"}, {"file", "dup_b.c"}, {"replacement", "helper_fixed"}}}},
	           {"references",
	            {{{"symbol", "a_counter"}, {"target", "counter"}, {"file", "dup_b.c"}}}}});
	ASSERT_EQ(r.status, 0) << r.output;
	auto p = parse_patch(load((dir / "out.patch.o").string()));
	ASSERT_TRUE(p.ok()) << p.error().message;
	EXPECT_TRUE(p->metadata.requires_global());
	EXPECT_EQ(p->metadata.redirects[0].target.file, "dup_b.c");
	EXPECT_EQ(p->metadata.references[0].target.file, "dup_b.c");
	// readelf accepts it as an ordinary relocatable object.
	auto re = run("readelf -S -W " + (dir / "out.patch.o").string());
	EXPECT_EQ(re.status, 0);
	EXPECT_NE(re.output.find(".atlas.patch"), std::string::npos);
	EXPECT_EQ(re.output.find("Warning"), std::string::npos) << re.output;
}

TEST_F(Tool, UnknownTargetSymbolIsNamed)
{
	auto r = build({{"redirects", {{{"target", "no_such_function"}}}}});
	EXPECT_EQ(r.status, 1);
	EXPECT_NE(r.output.find("no function named 'no_such_function'"), std::string::npos)
	    << r.output;
}

TEST_F(Tool, AmbiguousTargetSymbolListsCandidates)
{
	auto r = build({{"redirects", {{{"target", "helper"}, {"replacement", "helper_fixed"}}}}});
	EXPECT_EQ(r.status, 1);
	EXPECT_NE(r.output.find("'helper' is ambiguous"), std::string::npos) << r.output;
	EXPECT_NE(r.output.find("file dup_a.c"), std::string::npos) << r.output;
	EXPECT_NE(r.output.find("file dup_b.c"), std::string::npos) << r.output;

	r = build({{"redirects", {{{"target", "process"}}}},
	           {"references", {{{"symbol", "a_counter"}, {"target", "counter"}}}}});
	EXPECT_EQ(r.status, 1);
	EXPECT_NE(r.output.find("reference 'a_counter'"), std::string::npos) << r.output;
	EXPECT_NE(r.output.find("ambiguous"), std::string::npos) << r.output;
}

TEST_F(Tool, ReplacementMissingFromTheSource)
{
	auto r = build({{"redirects", {{{"target", "helper"}, {"file", "dup_a.c"}}}}});
	EXPECT_EQ(r.status, 1);
	// fix.c has no function named helper: the patch validator says so.
	EXPECT_NE(r.output.find("replacement 'helper'"), std::string::npos) << r.output;
}

TEST_F(Tool, StrippedTargetWithSeparateDebugFile)
{
	const nlohmann::json j = {
	    {"redirects",
	     {{{"target", "helper"}, {"file", "dup_a.c"}, {"replacement", "helper_fixed"}}}},
	    {"references",
	     {{{"symbol", "a_counter"}, {"target", "counter"}, {"file", "dup_a.c"}}}}};
	auto r = build(j, bin("dup_target.stripped"));
	EXPECT_EQ(r.status, 1);
	EXPECT_NE(r.output.find("is stripped"), std::string::npos) << r.output;
	EXPECT_NE(r.output.find("--symbols"), std::string::npos) << r.output;

	r = build(j, bin("dup_target.stripped"), "--symbols " + bin("dup_target.debug"));
	ASSERT_EQ(r.status, 0) << r.output;
	auto p = parse_patch(load((dir / "out.patch.o").string()));
	ASSERT_TRUE(p.ok()) << p.error().message;
	auto unstripped = parse_patch(load(bin("fix.patch.o")));
	ASSERT_TRUE(unstripped.ok());
	// The same symbols as from the unstripped binary, index for index.
	EXPECT_EQ(p->metadata.redirects[0], unstripped->metadata.redirects[0]);
	EXPECT_EQ(p->metadata.references, unstripped->metadata.references);
	EXPECT_EQ(p->metadata.target_build_id, unstripped->metadata.target_build_id);
	EXPECT_EQ(p->metadata.target_path, bin("dup_target.stripped"));

	// A symbols file of another build is refused.
	r = build(j, bin("dup_target.stripped"),
	          "--symbols " + std::string(ATLAS_TEST_OTHER_TARGET));
	EXPECT_EQ(r.status, 1);
	EXPECT_NE(r.output.find("has build-id ffff, but the target"), std::string::npos)
	    << r.output;
	r = build(j, bin("dup_target.stripped"),
	          "--symbols " + std::string(ATLAS_TEST_NOBUILDID_TARGET));
	EXPECT_EQ(r.status, 1);
	EXPECT_NE(r.output.find("no GNU build-id"), std::string::npos) << r.output;
}

TEST_F(Tool, StrictManifest)
{
	auto r = build({{"redirects", {{{"target", "process"}, {"fiel", "x.c"}}}}});
	EXPECT_EQ(r.status, 1);
	EXPECT_NE(r.output.find("redirects[0]: unknown key \"fiel\""), std::string::npos)
	    << r.output;
	r = build({{"redirects", nlohmann::json::array()}});
	EXPECT_NE(r.output.find("non-empty array"), std::string::npos) << r.output;
	r = build({{"redirects", {{{"target", "process"}}}}, {"requires_global", "yes"}});
	EXPECT_NE(r.output.find("requires_global must be true or false"), std::string::npos)
	    << r.output;
	std::string path = (dir / "broken.json").string();
	std::ofstream(path) << "{\"name\": ";
	r = mkpatch("-m " + path);
	EXPECT_EQ(r.status, 1);
	EXPECT_NE(r.output.find("not valid JSON"), std::string::npos) << r.output;
}

TEST_F(Tool, CompilerErrorsFailTheBuild)
{
	std::string src = (dir / "bad.c").string();
	std::ofstream(src) << "int process(int x) { return x + ; }\n";
	auto r = build({{"source", src}, {"redirects", {{{"target", "process"}}}}});
	EXPECT_EQ(r.status, 1);
	EXPECT_NE(r.output.find("compiling"), std::string::npos) << r.output;
	EXPECT_FALSE(fs::exists(dir / "out.patch.o"));
}

TEST_F(Tool, InspectJsonMatchesTheLibrary)
{
	auto r = mkpatch("--inspect " + bin("fix.patch.o") + " --json");
	ASSERT_EQ(r.status, 0) << r.output;
	auto j = nlohmann::json::parse(r.output);
	auto p = parse_patch(load(bin("fix.patch.o")));
	ASSERT_TRUE(p.ok());
	const Metadata &m = p->metadata;
	EXPECT_EQ(j["format_version"], m.version);
	EXPECT_EQ(j["name"], m.name);
	EXPECT_EQ(j["content_hash"], to_hex(m.content_hash));
	EXPECT_EQ(j["identity"], p->identity().to_string());
	EXPECT_EQ(j["target"]["path"], m.target_path);
	EXPECT_EQ(j["target"]["build_id"], ATLAS_TEST_BUILD_ID);
	EXPECT_TRUE(j["flags"].empty());
	ASSERT_EQ(j["redirects"].size(), m.redirects.size());
	EXPECT_EQ(j["redirects"][0]["target"]["name"], "helper");
	EXPECT_EQ(j["redirects"][0]["target"]["file"], "dup_a.c");
	EXPECT_EQ(j["redirects"][0]["target"]["symtab_index"], *m.redirects[0].target.symtab_index);
	EXPECT_EQ(j["redirects"][0]["replacement"], "helper_fixed");
	EXPECT_EQ(j["redirects"][0]["replacement_section"], ".text.helper_fixed");
	ASSERT_EQ(j["references"].size(), 1u);
	EXPECT_EQ(j["references"][0]["symbol"], "a_counter");

	auto cxx = mkpatch("--inspect " + bin("fix_cpp.patch.o") + " --json");
	ASSERT_EQ(cxx.status, 0) << cxx.output;
	EXPECT_EQ(nlohmann::json::parse(cxx.output)["flags"][0], "requires_global");
}

TEST_F(Tool, InspectText)
{
	auto r = mkpatch("--inspect " + bin("fix.patch.o"));
	ASSERT_EQ(r.status, 0) << r.output;
	EXPECT_NE(r.output.find("patch         fix-helper"), std::string::npos) << r.output;
	EXPECT_NE(r.output.find("build-id      " ATLAS_TEST_BUILD_ID), std::string::npos);
	EXPECT_NE(r.output.find("helper [file dup_a.c"), std::string::npos) << r.output;
}

TEST_F(Tool, InspectRefusesMalformedPatches)
{
	auto b = load(bin("fix.patch.o"));
	b[b.size() / 2] ^= 0x5a;
	std::string path = (dir / "bad.patch.o").string();
	std::ofstream(path, std::ios::binary)
	    .write(reinterpret_cast<const char *>(b.data()), std::streamsize(b.size()));
	auto r = mkpatch("--inspect " + path);
	EXPECT_EQ(r.status, 1);
	EXPECT_NE(r.output.find("bad.patch.o"), std::string::npos) << r.output;
}

} // namespace
} // namespace atlas::patch
