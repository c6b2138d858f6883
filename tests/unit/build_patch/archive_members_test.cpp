// SPDX-License-Identifier: MIT
// archive_members (tools/build-patch): the member names of archives ar(1) writes, regular and
// thin, with short names and GNU long names; what the builder uses to tell which objects a
// link takes from a static library.
#include "../preload/spawn.hpp"
#include "archive_members.hpp"

#include <cstdlib>
#include <gtest/gtest.h>
#include <string>
#include <vector>

namespace
{

class ArchiveMembers : public ::testing::Test
{
protected:
	void SetUp() override
	{
		std::string tmpl = "/tmp/atlas-bp-ar-XXXXXX";
		ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
		dir_ = tmpl;
		std::string out;
		ASSERT_EQ(
		    atlas_test::run_command(
		        "cd " + dir_ +
		            " && echo 'int a(void){return 1;}' > a.c && cp a.c "
		            "a_member_with_a_long_name.c && mkdir sub && cp a.c sub/b.c && "
		            "gcc -c a.c a_member_with_a_long_name.c && gcc -c -o sub/b.o "
		            "sub/b.c && ar rc lib.a a.o a_member_with_a_long_name.o sub/b.o && "
		            "ar rcT thin.a a.o sub/b.o",
		        &out),
		    0)
		    << out;
	}
	void TearDown() override
	{
		std::system(("rm -rf " + dir_).c_str());
	}
	std::string dir_;
};

} // namespace

TEST_F(ArchiveMembers, RegularArchiveShortAndLongNames)
{
	auto m = atlas::build_patch::archive_members(dir_ + "/lib.a");
	ASSERT_TRUE(m) << m.error().message;
	EXPECT_EQ(*m, (std::vector<std::string>{"a.o", "a_member_with_a_long_name.o", "b.o"}));
}

TEST_F(ArchiveMembers, ThinArchiveNamesPaths)
{
	auto m = atlas::build_patch::archive_members(dir_ + "/thin.a");
	ASSERT_TRUE(m) << m.error().message;
	EXPECT_EQ(*m, (std::vector<std::string>{"a.o", "sub/b.o"}));
}

TEST_F(ArchiveMembers, NotAnArchiveIsAnError)
{
	auto m = atlas::build_patch::archive_members(dir_ + "/a.c");
	ASSERT_FALSE(m);
	EXPECT_NE(m.error().message.find("is not an ar archive"), std::string::npos);
}
