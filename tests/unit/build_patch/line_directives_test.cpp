// SPDX-License-Identifier: MIT
// The #line directives that keep __LINE__ of unchanged lines (line_directives.hpp).
#include "line_directives.hpp"
#include "process.hpp"

#include <cstdlib>
#include <fstream>
#include <gtest/gtest.h>
#include <random>
#include <sstream>
#include <unistd.h>

using namespace atlas::build_patch;

namespace
{

// Length of a longest common subsequence, by dynamic programming (the reference).
size_t lcs_length(const std::vector<std::string_view> &a, const std::vector<std::string_view> &b)
{
	std::vector<std::vector<size_t>> t(a.size() + 1, std::vector<size_t>(b.size() + 1, 0));
	for (size_t i = 1; i <= a.size(); i++)
		for (size_t j = 1; j <= b.size(); j++)
			t[i][j] = a[i - 1] == b[j - 1] ? t[i - 1][j - 1] + 1
			                               : std::max(t[i - 1][j], t[i][j - 1]);
	return t[a.size()][b.size()];
}

} // namespace

TEST(LineDirectives, NothingMovedNothingInserted)
{
	LineFix f = keep_line_numbers("a\nb\nc\n", "a\nB\nc\n");
	EXPECT_EQ(f.directives, 0u);
	EXPECT_EQ(f.text, "a\nB\nc\n");
}

TEST(LineDirectives, AddedLinesGiveBackTheOldNumbers)
{
	LineFix f = keep_line_numbers("a\nb\nc\n", "x\ny\na\nb\nc\n");
	EXPECT_EQ(f.directives, 1u);
	EXPECT_EQ(f.text, "x\ny\n#line 1\na\nb\nc\n");
}

TEST(LineDirectives, DeletedLinesGiveBackTheOldNumbers)
{
	LineFix f = keep_line_numbers("a\nb\nc\nd\n", "a\nd\n");
	EXPECT_EQ(f.text, "a\n#line 4\nd\n");
}

TEST(LineDirectives, SeveralBlocks)
{
	LineFix f = keep_line_numbers("1\n2\n3\n4\n5\n6\n", "1\nnew\n2\n3\n5\n6\n");
	EXPECT_EQ(f.text, "1\nnew\n#line 2\n2\n3\n#line 5\n5\n6\n");
	EXPECT_EQ(f.directives, 2u);
}

TEST(LineDirectives, NoFinalNewlineKept)
{
	EXPECT_EQ(keep_line_numbers("a\nb", "x\na\nb").text, "x\n#line 1\na\nb");
}

TEST(LineDirectives, NeverInsideACommentOrAContinuedLine)
{
	// The first unchanged lines after the insertion are inside a block comment: the
	// directive goes after it, with the old number of the line it precedes.
	LineFix f = keep_line_numbers("/*\n x\n*/\nint a;\n", "/*\n added\n x\n*/\nint a;\n");
	EXPECT_EQ(f.text, "/*\n added\n x\n*/\n#line 4\nint a;\n");
	// A line continuing a macro definition takes no directive either.
	f = keep_line_numbers("#define M \\\n  1\nint a;\n",
	                      "#define M \\\n  2 + \\\n  1\nint a;\n");
	EXPECT_EQ(f.text, "#define M \\\n  2 + \\\n  1\n#line 3\nint a;\n");
}

TEST(LineDirectives, NeverInsideARawString)
{
	const char *old_text = "auto s = R\"x(\nline\n)x\";\nint a;\n";
	const char *new_text = "int b;\nauto s = R\"x(\nline\n)x\";\nint a;\n";
	LineFix f = keep_line_numbers(old_text, new_text);
	EXPECT_EQ(f.text, "int b;\n#line 1\nauto s = R\"x(\nline\n)x\";\nint a;\n");
	// Inside the raw string: deferred to the line after it.
	const char *new2 = "auto s = R\"x(\nextra\nline\n)x\";\nint a;\n";
	EXPECT_EQ(keep_line_numbers(old_text, new2).text,
	          "auto s = R\"x(\nextra\nline\n)x\";\n#line 4\nint a;\n");
}

TEST(LineDirectives, UnchangedLinesAreALongestCommonSubsequence)
{
	std::mt19937 rng(42);
	for (int round = 0; round < 300; round++) {
		std::vector<std::string> a, b;
		size_t n = rng() % 30, m = rng() % 30;
		for (size_t i = 0; i < n; i++)
			a.push_back(std::string(1, char('a' + rng() % 4)));
		for (size_t i = 0; i < m; i++)
			b.push_back(std::string(1, char('a' + rng() % 4)));
		std::vector<std::string_view> av(a.begin(), a.end()), bv(b.begin(), b.end());
		auto map = unchanged_lines(av, bv);
		ASSERT_EQ(map.size(), b.size());
		size_t matched = 0;
		long last = -1;
		for (size_t j = 0; j < map.size(); j++) {
			if (map[j] < 0)
				continue;
			ASSERT_GT(map[j], last) << "round " << round; // increasing
			ASSERT_EQ(av[size_t(map[j])], bv[j]) << "round " << round;
			last = map[j];
			matched++;
		}
		EXPECT_EQ(matched, lcs_length(av, bv)) << "round " << round;
	}
}

TEST(LineDirectives, TooLargeAChangeGivesUp)
{
	std::string a, b;
	for (int i = 0; i < 200; i++) {
		a += "a" + std::to_string(i) + "\n";
		b += "b" + std::to_string(i) + "\n";
	}
	std::vector<std::string_view> av = split_lines(a), bv = split_lines(b);
	EXPECT_TRUE(unchanged_lines(av, bv, 50).empty());
	EXPECT_FALSE(unchanged_lines(av, bv).empty());
}

// What the compiler sees: __LINE__ of the unchanged lines is the original's.
TEST(LineDirectives, TheCompilerSeesTheOriginalLineNumbers)
{
	const std::string old_text = "int f(void)\n{\n\treturn 1;\n}\nint w = __LINE__;\n"
	                             "int g(void)\n{\n\treturn __LINE__;\n}\n";
	const std::string new_text = "int f(void)\n{\n\tint x = 2;\n\n\treturn x;\n}\n"
	                             "int w = __LINE__;\nint g(void)\n{\n\treturn __LINE__;\n}\n";
	LineFix f = keep_line_numbers(old_text, new_text);
	char dir[] = "/tmp/atlas-bp-line-XXXXXX";
	ASSERT_NE(mkdtemp(dir), nullptr);
	std::string src = std::string(dir) + "/x.c", out = std::string(dir) + "/x.i";
	std::ofstream(src) << f.text;
	auto st = run_process({"gcc", "-E", "-P", "-o", out, src}, {});
	ASSERT_TRUE(st.ok());
	ASSERT_EQ(*st, 0);
	std::ifstream in(out);
	std::stringstream ss;
	ss << in.rdbuf();
	EXPECT_NE(ss.str().find("int w = 5;"), std::string::npos) << ss.str();
	EXPECT_NE(ss.str().find("return 8;"), std::string::npos) << ss.str();
	std::system((std::string("rm -rf ") + dir).c_str());
}
