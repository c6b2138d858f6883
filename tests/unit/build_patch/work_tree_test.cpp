// SPDX-License-Identifier: MIT
// copy_tree, which copies --src to the work tree and a build to and from the cache.
#include "work_tree.hpp"

#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>

namespace fs = std::filesystem;

namespace
{

fs::path temp_dir(const char *what)
{
	std::string tmpl = std::string("/tmp/atlas-bp-") + what + "-XXXXXX";
	EXPECT_NE(mkdtemp(tmpl.data()), nullptr);
	return tmpl;
}

} // namespace

// Symlinks are copied as symlinks, whatever they point at: automake --add-missing links
// config.sub, install-sh, ... to absolute paths under /usr/share. The copy once followed
// them and wrote to the path the link named, relative to the copy (a failure: "cannot copy
// .../config.sub to .../tree/../../../usr/share/misc/config.sub").
TEST(CopyTree, SymlinksAreCopiedAsSymlinks)
{
	const fs::path base = temp_dir("copytree");
	const fs::path src = base / "src", outside = base / "outside", dst = base / "dst";
	fs::create_directories(src / "sub");
	fs::create_directories(outside / "misc");
	std::ofstream(outside / "misc" / "config.sub") << "outside\n";
	std::ofstream(src / "sub" / "file.c") << "int x;\n";
	fs::create_symlink(outside / "misc" / "config.sub", src / "config.sub"); // absolute
	fs::create_symlink("sub/file.c", src / "relative.c");
	fs::create_symlink("/nonexistent/dangling", src / "dangling");

	auto n = atlas::build_patch::copy_tree(src.string() + "/", dst);
	ASSERT_TRUE(n) << n.error().message;
	EXPECT_EQ(*n, 1u); // regular files
	ASSERT_TRUE(fs::is_symlink(dst / "config.sub"));
	EXPECT_EQ(fs::read_symlink(dst / "config.sub"), outside / "misc" / "config.sub");
	ASSERT_TRUE(fs::is_symlink(dst / "relative.c"));
	EXPECT_EQ(fs::read_symlink(dst / "relative.c"), "sub/file.c");
	ASSERT_TRUE(fs::is_symlink(dst / "dangling"));
	EXPECT_TRUE(fs::is_regular_file(dst / "sub" / "file.c"));
	// Nothing was written next to the copy, where the link's path would lead.
	size_t entries = 0;
	for ([[maybe_unused]] const auto &e : fs::directory_iterator(base))
		entries++;
	EXPECT_EQ(entries, 3u);
	fs::remove_all(base);
}
