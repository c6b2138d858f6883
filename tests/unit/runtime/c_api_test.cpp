// The C API: init/shutdown, errors through atlas_last_error(), a C11 client.
#include "c_api_user.h"
#include "helpers.hpp"

#include <atlas/atlas.h>
#include <atlas/error.hpp>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <gtest/gtest.h>
#include <set>
#include <string>

namespace
{

class CApiTest : public ::testing::Test
{
protected:
	void TearDown() override
	{
		(void)atlas_shutdown();
	}
};

TEST_F(CApiTest, CallsBeforeInitFailWithAMessage)
{
	EXPECT_EQ(atlas_thread_register("x"), -1);
	EXPECT_NE(std::string(atlas_last_error()).find("atlas_init"), std::string::npos);
	EXPECT_EQ(atlas_status_json(), nullptr);
	EXPECT_EQ(atlas_follow_base(), -1);
	EXPECT_NE(std::string(atlas_last_error()).find("atlas_init"), std::string::npos);
	atlas_quiescence_point(); // harmless without a runtime
}

TEST_F(CApiTest, InitTwiceIsAnError)
{
	struct atlas_options options;
	atlas_options_init(&options);
	options.allow_unknown_threads = 1;
	ASSERT_EQ(atlas_init(&options), 0) << atlas_last_error();
	EXPECT_EQ(atlas_init(&options), -1);
	EXPECT_NE(std::string(atlas_last_error()).find("already initialised"), std::string::npos);
}

TEST_F(CApiTest, CClientAppliesAndRevertsInGlobalMode)
{
	struct atlas_options options;
	atlas_options_init(&options);
	// The C API runtime uses the real kernel ops: on a stock kernel, global mode. Threads of
	// the test process (sanitizers, gtest) are not registered, so allow them here; the
	// refusal itself is covered by the C++ tests.
	options.allow_unknown_threads = 1;
	int lines = 0;
	options.event_fn = [](void *ctx, const char *line, size_t length) {
		(void)line;
		if (length > 0)
			(*static_cast<int *>(ctx))++;
	};
	options.event_context = &lines;
	ASSERT_EQ(atlas_init(&options), 0) << atlas_last_error();
	char failure[256] = "";
	EXPECT_EQ(c_api_scenario(failure, sizeof(failure)), 0) << failure;
	char *status = atlas_status_json();
	ASSERT_NE(status, nullptr);
	auto json = nlohmann::json::parse(status);
	atlas_free(status);
	EXPECT_TRUE(json.contains("threads"));
	EXPECT_TRUE(json["applied"].empty());
	EXPECT_GT(lines, 3);
}

// struct atlas_options carries its size (atlas.h): options never initialised are refused with
// what to do, a caller compiled against a newer, larger struct is accepted while the fields this
// library does not know are zero, and refused (naming the byte) once it sets one.
TEST_F(CApiTest, OptionsSizeIsChecked)
{
	struct atlas_options unset;
	std::memset(&unset, 0, sizeof(unset));
	EXPECT_EQ(atlas_init(&unset), -1);
	EXPECT_NE(std::string(atlas_last_error()).find("call atlas_options_init()"),
	          std::string::npos)
	    << atlas_last_error();
	unset.size = ATLAS_OPTIONS_SIZE_VER0 - 1;
	EXPECT_EQ(atlas_init(&unset), -1);

	struct newer_options {
		struct atlas_options known;
		uint64_t added_later;
	} newer;
	std::memset(&newer, 0, sizeof(newer));
	atlas_options_init(&newer.known);
	newer.known.size = sizeof(newer);
	newer.known.allow_unknown_threads = 1;
	newer.added_later = 7;
	EXPECT_EQ(atlas_init(&newer.known), -1);
	EXPECT_NE(std::string(atlas_last_error()).find("does not know"), std::string::npos)
	    << atlas_last_error();
	newer.added_later = 0;
	ASSERT_EQ(atlas_init(&newer.known), 0) << atlas_last_error();
	ASSERT_EQ(atlas_shutdown(), 0);

	// The first version's struct, as a caller built against it fills it.
	struct atlas_options first;
	atlas_options_init(&first);
	EXPECT_EQ(first.size, sizeof(first));
	first.size = ATLAS_OPTIONS_SIZE_VER0;
	first.allow_unknown_threads = 1;
	ASSERT_EQ(atlas_init(&first), 0) << atlas_last_error();
}

TEST_F(CApiTest, ApplyValidatesItsArguments)
{
	ASSERT_EQ(atlas_init(nullptr), 0);
	struct atlas_change change = {};
	EXPECT_EQ(atlas_apply(&change, ATLAS_MODE_GLOBAL, 100, nullptr), -1);
	EXPECT_NE(std::string(atlas_last_error()).find("identity"), std::string::npos);
	EXPECT_EQ(atlas_wait(10, nullptr), -1);
	EXPECT_NE(std::string(atlas_last_error()).find("no pending"), std::string::npos);
}

// Each failure says its kind through atlas_last_error_code(), as atlas.h documents it; a
// success leaves the last error as it was.
TEST_F(CApiTest, FailedCallsSetTheirErrorCode)
{
	EXPECT_EQ(atlas_thread_register("x"), -1);
	EXPECT_EQ(atlas_last_error_code(), ATLAS_ERR_BAD_STATE) << atlas_last_error();
	EXPECT_EQ(atlas_last_error_errno(), 0);
	struct atlas_options options;
	atlas_options_init(&options);
	options.size = 8;
	EXPECT_EQ(atlas_init(&options), -1);
	EXPECT_EQ(atlas_last_error_code(), ATLAS_ERR_INVALID_ARGUMENT) << atlas_last_error();
	atlas_options_init(&options);
	options.allow_unknown_threads = 1;
	ASSERT_EQ(atlas_init(&options), 0) << atlas_last_error();
	EXPECT_EQ(atlas_last_error_code(), ATLAS_ERR_INVALID_ARGUMENT);
	EXPECT_EQ(atlas_init(&options), -1);
	EXPECT_EQ(atlas_last_error_code(), ATLAS_ERR_BAD_STATE) << atlas_last_error();
	EXPECT_EQ(atlas_thread_exempt(-1), -1);
	EXPECT_EQ(atlas_last_error_code(), ATLAS_ERR_INVALID_ARGUMENT) << atlas_last_error();
	struct atlas_change change = {};
	EXPECT_EQ(atlas_apply(&change, ATLAS_MODE_GLOBAL, 100, nullptr), -1);
	EXPECT_EQ(atlas_last_error_code(), ATLAS_ERR_INVALID_ARGUMENT) << atlas_last_error();
	// A refused transition: nothing to revert.
	struct atlas_report report;
	EXPECT_EQ(atlas_revert("never-applied", ATLAS_MODE_GLOBAL, 100, &report), -1);
	EXPECT_EQ(report.outcome, ATLAS_REFUSED);
	EXPECT_EQ(atlas_last_error_code(), ATLAS_ERR_REFUSED) << atlas_last_error();
	EXPECT_STREQ(atlas_last_error(), report.message);
	// A change whose callback fails.
	change.identity = "c-api-test-failing";
	change.apply = [](void *, char *error, size_t size) {
		std::snprintf(error, size, "no such thing");
		return -1;
	};
	EXPECT_EQ(atlas_apply(&change, ATLAS_MODE_GLOBAL, 1000, &report), -1);
	EXPECT_EQ(report.outcome, ATLAS_FAILED);
	EXPECT_EQ(atlas_last_error_code(), ATLAS_ERR_CHANGE_FAILED) << atlas_last_error();
	EXPECT_NE(std::string(atlas_last_error()).find("no such thing"), std::string::npos);
}

// Every atlas::Errc is an enum atlas_error value (the same number, from 1 to errc_last without
// gaps) with a name and a description of its own; other values are "unknown error".
TEST(ErrorCodes, EveryErrcHasADistinctCValueAndMessage)
{
	std::set<std::string> names, descriptions;
	const int last = static_cast<int>(atlas::errc_last);
	for (int code = 1; code <= last; code++) {
		const auto errc = static_cast<atlas::Errc>(code);
		const std::string name = atlas::to_string(errc);
		EXPECT_NE(name, "?") << code;
		EXPECT_TRUE(names.insert(name).second) << name;
		const std::string text = atlas_error_string(code);
		EXPECT_EQ(text, atlas::describe(errc));
		EXPECT_NE(text, "unknown error") << name;
		EXPECT_TRUE(descriptions.insert(text).second) << name << ": " << text;
	}
	EXPECT_EQ(names.size(), static_cast<size_t>(last));
	EXPECT_STREQ(atlas_error_string(ATLAS_OK), "no error");
	EXPECT_STREQ(atlas_error_string(last + 1), "unknown error");
	EXPECT_STREQ(atlas_error_string(-1), "unknown error");
	EXPECT_STREQ(atlas::to_string(static_cast<atlas::Errc>(last + 1)), "?");
	// The first and last of the C enum, spelled out: renumbering breaks this.
	EXPECT_EQ(ATLAS_ERR_INTERNAL, static_cast<int>(atlas::Errc::internal));
	EXPECT_EQ(ATLAS_ERR_NEEDS_GOT_SLOT, last);
}

} // namespace
