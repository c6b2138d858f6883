// Reading back atlas-loadgen's interval logs (bench/loadgen/interval_log.hpp): what the
// evaluation merges and plots must be exactly what the runs recorded.
#include "interval_log.hpp"

#include <cstdio>
#include <fstream>
#include <gtest/gtest.h>
#include <unistd.h>

using atlas::loadgen::Histogram;
using atlas::loadgen::read_interval_log;

namespace
{

class IntervalLogTest : public ::testing::Test
{
protected:
	void SetUp() override
	{
		char tmpl[] = "/tmp/atlas-interval-log-XXXXXX";
		const int fd = mkstemp(tmpl);
		ASSERT_GE(fd, 0);
		close(fd);
		path = tmpl;
	}
	void TearDown() override
	{
		std::remove(path.c_str());
	}
	void write(const std::string &text)
	{
		std::ofstream(path) << text;
	}
	std::string path;
};

TEST_F(IntervalLogTest, ReadsBackWhatWasWritten)
{
	Histogram a, b, total;
	for (std::uint64_t v = 1000; v < 2'000'000; v += 997)
		a.record(v);
	b.record(5'000'000'000ULL, 3); // a 5 s stall, three requests
	total.merge(a);
	total.merge(b);
	write("# atlas-loadgen interval log: header\n0.000 1.000 " + a.serialize() +
	      "\n1.000 2.000 " + b.serialize() + "\n# total " + total.serialize() + "\n");
	std::string error;
	auto log = read_interval_log(path, &error);
	ASSERT_TRUE(log) << error;
	ASSERT_EQ(log->intervals.size(), 2u);
	EXPECT_EQ(log->intervals[0].latency, a);
	EXPECT_DOUBLE_EQ(log->intervals[1].start_s, 1.0);
	EXPECT_DOUBLE_EQ(log->intervals[1].end_s, 2.0);
	EXPECT_EQ(log->intervals[1].latency, b);
	EXPECT_EQ(log->total, total);
	EXPECT_EQ(log->total.max(), b.max());
}

TEST_F(IntervalLogTest, NamesTheFileAndLineOfAMalformedInterval)
{
	Histogram h;
	h.record(42);
	write("0.000 1.000 " + h.serialize() + "\n1.000 2.000 H 1 2 x\n# total " + h.serialize() +
	      "\n");
	std::string error;
	EXPECT_FALSE(read_interval_log(path, &error));
	EXPECT_NE(error.find(path + ":2: bad histogram"), std::string::npos) << error;
}

TEST_F(IntervalLogTest, AnUnfinishedLogIsRefused)
{
	Histogram h;
	h.record(42);
	write("0.000 1.000 " + h.serialize() + "\n");
	std::string error;
	EXPECT_FALSE(read_interval_log(path, &error));
	EXPECT_NE(error.find("no '# total' line"), std::string::npos) << error;
	EXPECT_FALSE(read_interval_log(path + ".missing", &error));
	EXPECT_NE(error.find("cannot open"), std::string::npos) << error;
}

} // namespace
