// SPDX-License-Identifier: MIT
// Symbol-name normalisation, compiler command lines and diff file headers.
#include "apply_diff.hpp"
#include "compile_args.hpp"
#include "producer_check.hpp"
#include "symbol_names.hpp"

#include <gtest/gtest.h>

using namespace atlas::build_patch;

TEST(SymbolNames, NumbersAreDropped)
{
	EXPECT_EQ(normalized_name("calls.0"), "calls");
	EXPECT_EQ(normalized_name("calls.17"), "calls");
	EXPECT_EQ(normalized_name("f.constprop.1.isra.0"), "f.constprop.isra");
	EXPECT_EQ(normalized_name("f.cold"), "f.cold");
	EXPECT_EQ(normalized_name("f.part.3.cold.2"), "f.part.cold");
	EXPECT_EQ(normalized_name("plain"), "plain");
	EXPECT_EQ(normalized_name(".LC0"), ".LC0");
	EXPECT_EQ(normalized_name("_ZN1A1fEv"), "_ZN1A1fEv");
}

TEST(SymbolNames, Pieces)
{
	EXPECT_TRUE(is_cold_piece("f.cold"));
	EXPECT_TRUE(is_cold_piece("f.part.0.cold.1"));
	EXPECT_FALSE(is_cold_piece("cold"));
	EXPECT_FALSE(is_cold_piece("f.coldish"));
	EXPECT_TRUE(is_clone("f.constprop.0"));
	EXPECT_TRUE(is_clone("f.isra.2"));
	EXPECT_TRUE(is_clone("f.part.1"));
	EXPECT_FALSE(is_clone("f"));
	EXPECT_FALSE(is_clone("f.cold"));
	EXPECT_EQ(base_function("f.constprop.0.cold"), "f");
}

TEST(CompilerCommand, CompileWithOutput)
{
	auto c =
	    parse_compiler_command({"-O2", "-MD", "-MF", "x.d", "-c", "-o", "obj/x.o", "src/x.c"});
	ASSERT_EQ(c.compiles.size(), 1u);
	EXPECT_EQ(c.compiles[0].first, "src/x.c");
	EXPECT_EQ(c.compiles[0].second, "obj/x.o");
	EXPECT_FALSE(c.links);
}

TEST(CompilerCommand, CompileDefaultObjectNames)
{
	auto c = parse_compiler_command({"-c", "src/a.c", "b.cpp", "-I", "inc", "-DX=1"});
	ASSERT_EQ(c.compiles.size(), 2u);
	EXPECT_EQ(c.compiles[0].second, "a.o");
	EXPECT_EQ(c.compiles[1].second, "b.o");
	auto joined = parse_compiler_command({"-c", "x.c", "-ox.o"});
	ASSERT_EQ(joined.compiles.size(), 1u);
	EXPECT_EQ(joined.compiles[0].second, "x.o");
}

TEST(CompilerCommand, AssemblyAndPreprocessingAreNotRecorded)
{
	EXPECT_TRUE(parse_compiler_command({"-c", "x.S"}).compiles.empty());
	EXPECT_TRUE(parse_compiler_command({"-E", "x.c"}).compiles.empty());
	EXPECT_FALSE(parse_compiler_command({"-E", "x.c"}).links);
	EXPECT_FALSE(parse_compiler_command({"--version"}).links);
}

TEST(CompilerCommand, Link)
{
	auto c = parse_compiler_command(
	    {"-pie", "-Wl,--build-id", "-o", "prog", "main.o", "lib/libx.a", "-lpthread"});
	EXPECT_TRUE(c.links);
	EXPECT_EQ(c.link_output, "prog");
	EXPECT_EQ(c.link_inputs, (std::vector<std::string>{"main.o", "lib/libx.a"}));
	auto one_step = parse_compiler_command({"-O2", "main.c", "-o", "prog"});
	EXPECT_TRUE(one_step.links);
	EXPECT_EQ(one_step.compiled_and_linked, (std::vector<std::string>{"main.c"}));
}

TEST(DiffFiles, HeadersAndHunksOnly)
{
	// A removed line that reads like a header ("--- x") inside a hunk is not one.
	const char *diff = "diff --git a/x.c b/x.c\n"
	                   "--- a/x.c\t2024-01-01\n"
	                   "+++ b/x.c\t2024-01-01\n"
	                   "@@ -1,3 +1,3 @@\n"
	                   " a\n"
	                   "--- not a header\n"
	                   "+++ not one either\n"
	                   " c\n"
	                   "--- /dev/null\n"
	                   "+++ b/new.c\n"
	                   "@@ -0,0 +1 @@\n"
	                   "+int x;\n";
	auto files = files_of_diff(diff);
	ASSERT_EQ(files.size(), 2u);
	EXPECT_EQ(files[0].old_path, "a/x.c");
	EXPECT_EQ(files[0].new_path, "b/x.c");
	EXPECT_EQ(files[1].old_path, "/dev/null");
	EXPECT_EQ(files[1].new_path, "b/new.c");
}

TEST(ProducerFlags, MissingFlagsNamed)
{
	EXPECT_TRUE(missing_flags("GNU C17 12.2.0 -mtune=generic -g -O2 -ffunction-sections "
	                          "-fdata-sections -flive-patching=inline-clone -fPIE")
	                .empty());
	EXPECT_TRUE(missing_flags("GNU C++17 12.2.0 -g -O2 -ffunction-sections -fdata-sections "
	                          "-flive-patching=inline-only-static")
	                .empty());
	auto m = missing_flags("GNU C17 12.2.0 -g -O2 -ffunction-sections -fno-function-sections");
	EXPECT_EQ(m, (std::vector<std::string>{"-ffunction-sections", "-fdata-sections",
	                                       "-flive-patching=inline-clone"}));
	auto clang = missing_flags("clang version 14.0.6");
	ASSERT_EQ(clang.size(), 1u);
	EXPECT_NE(clang[0].find("not gcc"), std::string::npos);
}
