// Latency histogram for the load generator: log-linear buckets with bounded relative error,
// fixed memory once built, cheap to record into and exact to merge and to write as one line.
#ifndef ATLAS_LOADGEN_HISTOGRAM_HPP
#define ATLAS_LOADGEN_HISTOGRAM_HPP

#include <bit>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace atlas::loadgen
{

// Values below sub_count are counted exactly (one counter each). Above that, every power-of-two
// range [2^e, 2^(e+1)) is split into `half` equal buckets, so a bucket is never wider than
// 1/half of its lowest value, and half >= 10^digits bounds the relative error.
//
// Not thread-safe: each thread records into its own histogram and the owner merges them after
// the threads are done. record() never allocates, so it is safe on the measurement path.
class Histogram
{
public:
	// Values in [0, highest] are recorded with relative error below 10^-digits (digits 1..5);
	// larger values are clamped to `highest` and counted in clamped(). Throws
	// std::invalid_argument for digits outside 1..5.
	explicit Histogram(std::uint64_t highest = 3'600'000'000'000ULL /* 1 h in ns */,
	                   int digits = 3);

	void record(std::uint64_t value, std::uint64_t count = 1) noexcept
	{
		if (count == 0)
			return;
		if (value > highest_) {
			value = highest_;
			clamped_ += count;
		}
		counts_[index_of(value)] += count;
		count_ += count;
		if (value < min_)
			min_ = value;
		if (value > max_)
			max_ = value;
	}

	// Adds every count of `other`; false (nothing changed) if its configuration differs.
	bool merge(const Histogram &other) noexcept;
	void reset() noexcept;

	std::uint64_t count() const noexcept
	{
		return count_;
	}
	std::uint64_t clamped() const noexcept
	{
		return clamped_;
	}
	// Exact smallest and largest values recorded (after clamping); 0 when empty.
	std::uint64_t min() const noexcept
	{
		return count_ == 0 ? 0 : min_;
	}
	std::uint64_t max() const noexcept
	{
		return count_ == 0 ? 0 : max_;
	}
	// From bucket midpoints (kept within [min(), max()]); 0 when empty.
	double mean() const noexcept;
	// The smallest recorded-equivalent value v such that at least q (0 < q <= 1) of the
	// recorded values are <= v, reported as the highest value equivalent to v's bucket but
	// never above max(); 0 when empty. q <= 0 (or NaN) acts as the smallest rank, q > 1 as 1.
	std::uint64_t quantile(double q) const noexcept;
	// Number of recorded values >= value (bucket-granular: counts the whole bucket that holds
	// `value`); 0 when `value` lies beyond the last bucket.
	std::uint64_t count_at_or_above(std::uint64_t value) const noexcept;

	std::uint64_t highest() const noexcept
	{
		return highest_;
	}
	int digits() const noexcept
	{
		return digits_;
	}

	// Bucket arithmetic, exposed for tests and the log format. It depends only on digits(), so
	// index_of() accepts any value, even one beyond the last counter.
	std::size_t index_of(std::uint64_t value) const noexcept
	{
		if (value < sub_count_)
			return static_cast<std::size_t>(value);
		// Shift so that the top sub_bits bits remain: sub lands in [half, sub_count).
		const unsigned k = static_cast<unsigned>(std::bit_width(value)) - sub_bits_;
		return (static_cast<std::size_t>(k) << (sub_bits_ - 1)) +
		       static_cast<std::size_t>(value >> k);
	}
	// Bounds of the values counted by `index`; an index no 64-bit value maps to gives
	// UINT64_MAX.
	std::uint64_t lowest_equivalent(std::size_t index) const noexcept;
	std::uint64_t highest_equivalent(std::size_t index) const noexcept;
	std::size_t bucket_count() const noexcept
	{
		return counts_.size();
	}

	// One line: "H <highest> <digits> <count> <min> <max> <clamped> <i>:<n> <i>:<n> ...",
	// listing only non-zero counters, each <i> the delta from the previous listed index (the
	// first one absolute). parse() reads it back exactly; on malformed input it returns
	// std::nullopt and sets *error (when given) to a message naming the problem.
	std::string serialize() const;
	static std::optional<Histogram> parse(std::string_view line, std::string *error = nullptr);

	bool operator==(const Histogram &) const = default;

private:
	std::uint64_t highest_;
	int digits_;
	unsigned sub_bits_;       // smallest b with 2^b >= 2 * 10^digits
	std::uint64_t sub_count_; // 2^sub_bits: values below it have a counter each
	std::uint64_t count_ = 0;
	std::uint64_t clamped_ = 0;
	// min_ starts at the largest value so that record() needs no "empty" test.
	std::uint64_t min_ = std::numeric_limits<std::uint64_t>::max();
	std::uint64_t max_ = 0;
	std::vector<std::uint64_t> counts_;
};

} // namespace atlas::loadgen

#endif
