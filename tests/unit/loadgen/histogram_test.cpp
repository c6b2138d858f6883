// The load generator's latency histogram: bucket arithmetic, quantile accuracy against exact
// sorted quantiles, merging, clamping, and the one-line text form with its error checks.
#include "histogram.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <gtest/gtest.h>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

using atlas::loadgen::Histogram;

namespace
{

constexpr std::uint64_t u64_max = std::numeric_limits<std::uint64_t>::max();

std::uint64_t pow10(int digits)
{
	std::uint64_t p = 1;
	for (int i = 0; i < digits; ++i)
		p *= 10;
	return p;
}

// Log-uniform between 1 us and 10 s (in ns): heavy-tailed, like real latencies, so that both
// the exact low buckets and the wide high ones are exercised.
std::vector<std::uint64_t> log_uniform(std::mt19937_64 &rng, std::size_t n)
{
	std::uniform_real_distribution<double> exponent(std::log(1e3), std::log(1e10));
	std::vector<std::uint64_t> values(n);
	for (auto &v : values)
		v = static_cast<std::uint64_t>(std::exp(exponent(rng)));
	return values;
}

// Checks the bucket of `v`: it contains v, and its bounds map back to it.
void expect_bucket_holds(const Histogram &h, std::uint64_t v)
{
	const std::size_t i = h.index_of(v);
	const std::uint64_t lo = h.lowest_equivalent(i);
	const std::uint64_t hi = h.highest_equivalent(i);
	EXPECT_LE(lo, v) << "value " << v << " index " << i;
	EXPECT_GE(hi, v) << "value " << v << " index " << i;
	EXPECT_EQ(h.index_of(lo), i) << "value " << v;
	EXPECT_EQ(h.index_of(hi), i) << "value " << v;
}

TEST(HistogramBuckets, SmallValuesRoundTripAndAreMonotonic)
{
	const Histogram h;
	std::size_t previous = 0;
	for (std::uint64_t v = 0; v <= 5000; ++v) {
		expect_bucket_holds(h, v);
		const std::size_t i = h.index_of(v);
		EXPECT_GE(i, previous) << "value " << v;
		// With 3 digits, values up to 2047 are counted exactly.
		if (v < 2048) {
			EXPECT_EQ(i, v);
			EXPECT_EQ(h.lowest_equivalent(i), v);
			EXPECT_EQ(h.highest_equivalent(i), v);
		}
		previous = i;
	}
	// The first shared bucket starts right after the exact ones and is 2 wide.
	EXPECT_EQ(h.index_of(2048), 2048u);
	EXPECT_EQ(h.index_of(2049), 2048u);
	EXPECT_EQ(h.index_of(2050), 2049u);
}

TEST(HistogramBuckets, RandomValuesRoundTripAndAreMonotonic)
{
	std::mt19937_64 rng(42);
	for (int digits = 1; digits <= 5; ++digits) {
		const Histogram h(3'600'000'000'000ULL, digits);
		std::uniform_int_distribution<std::uint64_t> any(0, h.highest());
		std::vector<std::uint64_t> values(20000);
		for (std::size_t k = 0; k < values.size(); ++k)
			values[k] = k % 2 ? any(rng) : any(rng) >> (any(rng) % 40);
		std::sort(values.begin(), values.end());
		std::size_t previous = 0;
		for (const std::uint64_t v : values) {
			expect_bucket_holds(h, v);
			const std::size_t i = h.index_of(v);
			EXPECT_LT(i, h.bucket_count());
			EXPECT_GE(i, previous) << "value " << v;
			previous = i;
		}
	}
}

TEST(HistogramBuckets, BucketsTileTheRangeWithBoundedRelativeWidth)
{
	for (int digits = 1; digits <= 5; ++digits) {
		const Histogram h(3'600'000'000'000ULL, digits);
		const std::uint64_t scale = pow10(digits);
		ASSERT_EQ(h.index_of(h.highest()), h.bucket_count() - 1);
		ASSERT_GE(h.highest_equivalent(h.bucket_count() - 1), h.highest());
		ASSERT_EQ(h.lowest_equivalent(0), 0u);
		for (std::size_t i = 0; i < h.bucket_count(); ++i) {
			const std::uint64_t lo = h.lowest_equivalent(i);
			const std::uint64_t hi = h.highest_equivalent(i);
			ASSERT_LE(lo, hi) << "digits " << digits << " index " << i;
			if (i > 0) {
				ASSERT_EQ(lo, h.highest_equivalent(i - 1) + 1)
				    << "digits " << digits << " index " << i;
			}
			const std::uint64_t width = hi - lo + 1;
			// A one-value bucket is exact; any wider one must stay below 10^-digits of
			// its lowest value.
			if (width > 1) {
				ASSERT_LT(width * scale, lo)
				    << "digits " << digits << " index " << i;
			}
		}
	}
}

TEST(HistogramBuckets, FullSixtyFourBitRange)
{
	for (int digits : {1, 3}) {
		Histogram h(u64_max, digits);
		const std::size_t last = h.bucket_count() - 1;
		EXPECT_EQ(h.index_of(u64_max), last);
		EXPECT_EQ(h.highest_equivalent(last), u64_max);
		EXPECT_LT(h.lowest_equivalent(last), u64_max);
		// No value maps beyond the last bucket: such indices saturate.
		EXPECT_EQ(h.lowest_equivalent(last + 1), u64_max);
		expect_bucket_holds(h, u64_max);
		expect_bucket_holds(h, u64_max / 3);
		h.record(u64_max);
		h.record(1);
		EXPECT_EQ(h.max(), u64_max);
		EXPECT_EQ(h.quantile(1.0), u64_max);
		EXPECT_EQ(h.count_at_or_above(u64_max), 1u);
		EXPECT_EQ(h.clamped(), 0u);
	}
}

TEST(HistogramBuckets, RejectsDigitsOutOfRange)
{
	EXPECT_THROW(Histogram(1000, 0), std::invalid_argument);
	EXPECT_THROW(Histogram(1000, 6), std::invalid_argument);
	EXPECT_NO_THROW(Histogram(1000, 1));
	EXPECT_NO_THROW(Histogram(1000, 5));
}

TEST(HistogramBuckets, DefaultFitsTheMemoryBound)
{
	const Histogram h;
	EXPECT_EQ(h.highest(), 3'600'000'000'000ULL);
	EXPECT_EQ(h.digits(), 3);
	EXPECT_LT(h.bucket_count() * sizeof(std::uint64_t), 300u * 1024u);
}

TEST(HistogramStats, QuantilesMatchExactSortedQuantiles)
{
	std::mt19937_64 rng(7);
	const std::size_t n = 100000;
	std::vector<std::uint64_t> values = log_uniform(rng, n);
	Histogram h;
	double exact_sum = 0;
	for (const std::uint64_t v : values) {
		h.record(v);
		exact_sum += static_cast<double>(v);
	}
	std::sort(values.begin(), values.end());
	ASSERT_EQ(h.count(), n);
	EXPECT_EQ(h.min(), values.front());
	EXPECT_EQ(h.max(), values.back());

	const struct {
		double q;
		std::size_t rank; // ceil(q * n), written out so that no rounding is involved
	} cases[] = {{0.5, 50000},   {0.9, 90000},    {0.99, 99000},
	             {0.999, 99900}, {0.9999, 99990}, {1.0, 100000}};
	for (const auto &c : cases) {
		const std::uint64_t exact = values[c.rank - 1];
		const std::uint64_t got = h.quantile(c.q);
		// The rank-th value's bucket is found exactly, then reported by its top end.
		EXPECT_EQ(got, std::min(h.highest_equivalent(h.index_of(exact)), h.max()))
		    << "q " << c.q;
		EXPECT_GE(got, exact) << "q " << c.q;
		EXPECT_LT(static_cast<double>(got - exact) / static_cast<double>(exact), 1e-3)
		    << "q " << c.q;
	}
	EXPECT_EQ(h.quantile(1.0), h.max());

	const double exact_mean = exact_sum / static_cast<double>(n);
	EXPECT_NEAR(h.mean(), exact_mean, exact_mean * 1e-3);
}

TEST(HistogramStats, QuantilesOfSmallExactSets)
{
	Histogram h;
	for (std::uint64_t v = 1; v <= 100; ++v)
		h.record(v);
	EXPECT_EQ(h.quantile(0.01), 1u);
	EXPECT_EQ(h.quantile(0.5), 50u);
	EXPECT_EQ(h.quantile(0.505), 51u);
	// 0.07 * 100 is 7.000000000000001 in binary; the caller means the 7th value, not the 8th.
	EXPECT_EQ(h.quantile(0.07), 7u);
	EXPECT_EQ(h.quantile(0.99), 99u);
	EXPECT_EQ(h.quantile(0.999), 100u);
	EXPECT_EQ(h.quantile(1.0), 100u);
	// Out-of-range q: the smallest and the largest rank.
	EXPECT_EQ(h.quantile(0.0), 1u);
	EXPECT_EQ(h.quantile(2.0), 100u);
	EXPECT_DOUBLE_EQ(h.mean(), 50.5);
}

TEST(HistogramStats, QuantileNeverAboveMax)
{
	Histogram h;
	h.record(1'000'000, 3);
	ASSERT_GT(h.highest_equivalent(h.index_of(1'000'000)), 1'000'000u);
	EXPECT_EQ(h.quantile(0.5), 1'000'000u);
	EXPECT_EQ(h.quantile(1.0), 1'000'000u);
	EXPECT_EQ(h.count(), 3u);
	// The midpoint is kept within [min, max], so one repeated value is its own mean.
	EXPECT_DOUBLE_EQ(h.mean(), 1'000'000.0);
}

TEST(HistogramStats, EmptyReportsZeros)
{
	const Histogram h;
	EXPECT_EQ(h.count(), 0u);
	EXPECT_EQ(h.clamped(), 0u);
	EXPECT_EQ(h.min(), 0u);
	EXPECT_EQ(h.max(), 0u);
	EXPECT_EQ(h.mean(), 0.0);
	EXPECT_EQ(h.quantile(0.5), 0u);
	EXPECT_EQ(h.quantile(1.0), 0u);
	EXPECT_EQ(h.count_at_or_above(0), 0u);
}

TEST(HistogramStats, RecordWithZeroCountChangesNothing)
{
	Histogram h;
	h.record(12345, 0);
	EXPECT_EQ(h, Histogram());
}

TEST(HistogramStats, ClampsAboveHighest)
{
	Histogram h(1'000'000, 3);
	h.record(5);
	h.record(2'000'000);
	h.record(1'000'000);
	h.record(u64_max, 4);
	EXPECT_EQ(h.count(), 7u);
	EXPECT_EQ(h.clamped(), 5u);
	EXPECT_EQ(h.max(), 1'000'000u);
	EXPECT_EQ(h.min(), 5u);
	EXPECT_EQ(h.quantile(1.0), 1'000'000u);
	EXPECT_EQ(h.quantile(0.5), 1'000'000u);
	EXPECT_EQ(h.count_at_or_above(1'000'000), 6u);
}

TEST(HistogramStats, CountAtOrAbove)
{
	Histogram h;
	for (std::uint64_t v = 100; v < 110; ++v)
		h.record(v);
	h.record(1'000'000);
	h.record(1'000'001);
	h.record(5'000'000'000ULL);
	EXPECT_EQ(h.count_at_or_above(0), 13u);
	EXPECT_EQ(h.count_at_or_above(100), 13u);
	EXPECT_EQ(h.count_at_or_above(105), 8u); // exact buckets: 105..109 and the three large
	EXPECT_EQ(h.count_at_or_above(110), 3u);
	// 1'000'000 and 1'000'001 share a bucket, which is counted whole.
	ASSERT_EQ(h.index_of(1'000'000), h.index_of(1'000'001));
	EXPECT_EQ(h.count_at_or_above(1'000'001), 3u);
	const std::uint64_t past = h.highest_equivalent(h.index_of(1'000'001)) + 1;
	EXPECT_EQ(h.count_at_or_above(past), 1u);
	EXPECT_EQ(h.count_at_or_above(5'000'000'000ULL), 1u);
	EXPECT_EQ(h.count_at_or_above(6'000'000'000ULL), 0u);
	// Beyond the last bucket nothing is counted.
	EXPECT_EQ(h.count_at_or_above(u64_max), 0u);
}

TEST(HistogramMerge, EqualsOneHistogramOfEverything)
{
	std::mt19937_64 rng(3);
	const std::vector<std::uint64_t> a = log_uniform(rng, 50000);
	const std::vector<std::uint64_t> b = log_uniform(rng, 30000);
	Histogram ha, hb, all;
	for (const std::uint64_t v : a) {
		ha.record(v);
		all.record(v);
	}
	for (const std::uint64_t v : b) {
		hb.record(v);
		all.record(v);
	}
	hb.record(u64_max); // clamped counts merge too
	all.record(u64_max);

	ASSERT_TRUE(ha.merge(hb));
	EXPECT_EQ(ha.serialize(), all.serialize());
	EXPECT_EQ(ha, all);
	EXPECT_EQ(ha.clamped(), 1u);
	for (double q : {0.5, 0.9, 0.99, 0.999, 0.9999, 1.0})
		EXPECT_EQ(ha.quantile(q), all.quantile(q)) << "q " << q;
	EXPECT_EQ(ha.min(), all.min());
	EXPECT_EQ(ha.max(), all.max());

	// Into an empty histogram: a copy; from an empty one: no change.
	Histogram empty;
	ASSERT_TRUE(empty.merge(all));
	EXPECT_EQ(empty, all);
	ASSERT_TRUE(all.merge(Histogram()));
	EXPECT_EQ(empty, all);
}

TEST(HistogramMerge, MergingIntoItselfDoubles)
{
	Histogram h;
	h.record(10);
	h.record(3'000'000);
	Histogram twice;
	twice.record(10, 2);
	twice.record(3'000'000, 2);
	ASSERT_TRUE(h.merge(h));
	EXPECT_EQ(h, twice);
}

TEST(HistogramMerge, RefusesADifferentConfiguration)
{
	Histogram h(1'000'000, 3);
	h.record(17);
	const std::string before = h.serialize();
	Histogram other_highest(2'000'000, 3);
	other_highest.record(5);
	Histogram other_digits(1'000'000, 2);
	other_digits.record(5);
	EXPECT_FALSE(h.merge(other_highest));
	EXPECT_FALSE(h.merge(other_digits));
	EXPECT_EQ(h.serialize(), before);
}

TEST(HistogramMerge, ResetEmptiesCompletely)
{
	Histogram h;
	h.record(1);
	h.record(u64_max);
	h.reset();
	EXPECT_EQ(h, Histogram());
	EXPECT_EQ(h.serialize(), Histogram().serialize());
	h.record(7);
	EXPECT_EQ(h.min(), 7u); // min was reset too, not left at 1
}

TEST(HistogramText, KnownLine)
{
	Histogram h(1000, 2);
	h.record(3);
	h.record(3);
	h.record(7);
	EXPECT_EQ(h.serialize(), "H 1000 2 3 3 7 0 3:2 4:1");
	EXPECT_EQ(Histogram(1000, 2).serialize(), "H 1000 2 0 0 0 0");
	h.record(5000);
	// 1000 lies in bucket 506 (k = 2, sub = 250); 7 to 506 is a delta of 499.
	EXPECT_EQ(h.serialize(), "H 1000 2 4 3 1000 1 3:2 4:1 499:1");
}

TEST(HistogramText, RoundTrips)
{
	std::mt19937_64 rng(11);
	std::vector<Histogram> cases;
	cases.emplace_back();
	cases.emplace_back(1000, 2);
	Histogram random;
	for (const std::uint64_t v : log_uniform(rng, 20000))
		random.record(v);
	random.record(0, 3);
	random.record(u64_max, 2);
	cases.push_back(std::move(random));
	Histogram wide(u64_max, 5);
	wide.record(0);
	wide.record(u64_max);
	wide.record(123456789);
	cases.push_back(std::move(wide));

	for (const Histogram &h : cases) {
		const std::string line = h.serialize();
		std::string error;
		const std::optional<Histogram> back = Histogram::parse(line, &error);
		ASSERT_TRUE(back.has_value()) << error << " in: " << line.substr(0, 80);
		EXPECT_EQ(*back, h);
		EXPECT_EQ(back->serialize(), line);
		// A trailing newline, as read from a log, is accepted.
		EXPECT_TRUE(Histogram::parse(line + "\n").has_value());
	}
}

TEST(HistogramText, RejectsMalformedLines)
{
	const struct {
		const char *line;
		const char *complaint;
	} cases[] = {
	    {"", "tag"},
	    {"X 1000 2 0 0 0 0", "tag"},
	    {"H1000 2 0 0 0 0", "tag"},
	    {"H 1000 2 3 3", "truncated"},
	    {"H 1000 2 3 3 7 0 3:2", "count does not match"},
	    {"H 1000 2 3 3 7 0 3:2 4:2", "count does not match"},
	    {"H abc 2 0 0 0 0", "highest is not a number"},
	    {"H 1000 2.5 0 0 0 0", "digits is not a number"},
	    {"H 1000 9 0 0 0 0", "digits outside"},
	    {"H 1000 2 3 -3 7 0 3:2 4:1", "not a number"},
	    {"H 1000 2 3 3 7 0 3:2 4:", "pair"},
	    {"H 1000 2 3 3 7 0 3:2 x:1", "pair"},
	    {"H 1000 2 3 3 7 0 3:2 4:1x", "pair"},
	    {"H 1000 2 3 3 7 0 3:2 4", "pair"},
	    {"H 1000 2 3 3 7 0 3:2 100000:1", "index beyond the last bucket"},
	    {"H 1000 2 1 3 3 0 507:1", "index beyond the last bucket"},
	    {"H 1000 2 3 3 7 0 3:2 0:1", "not increasing"},
	    {"H 1000 2 3 3 7 0 3:0 4:3", "zero count"},
	    {"H 1000 2 3 4 7 0 3:2 4:1", "min or max outside"},
	    {"H 1000 2 3 3 8 0 3:2 4:1", "min or max outside"},
	    {"H 1000 2 3 7 3 0 3:2 4:1", "min above max"},
	    {"H 1000 2 0 1 0 0", "empty histogram"},
	    {"H 1000 2 3 3 7 1 3:2 4:1", "clamped"},
	    {"H 1000 2 18446744073709551615 1 2 0 1:18446744073709551615 1:1", "overflow"},
	};
	for (const auto &c : cases) {
		std::string error;
		EXPECT_FALSE(Histogram::parse(c.line, &error).has_value()) << c.line;
		EXPECT_NE(error.find(c.complaint), std::string::npos)
		    << c.line << " gave: " << error;
		EXPECT_EQ(error.rfind("histogram line: ", 0), 0u) << c.line << " gave: " << error;
		// Without an error string the answer is the same.
		EXPECT_FALSE(Histogram::parse(c.line).has_value()) << c.line;
	}
}

} // namespace
