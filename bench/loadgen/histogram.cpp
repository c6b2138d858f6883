// Latency histogram for the load generator: construction, statistics and the one-line text form
// that the load generator's logs carry.
#include "histogram.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <stdexcept>

namespace atlas::loadgen
{

namespace
{

constexpr std::uint64_t no_value = std::numeric_limits<std::uint64_t>::max();

// Smallest b with 2^b >= 2 * 10^digits: the factor 2 makes half = 2^(b-1) >= 10^digits, which is
// what bounds a bucket's width relative to its lowest value.
unsigned sub_bits_for(int digits)
{
	std::uint64_t target = 2;
	for (int i = 0; i < digits; ++i)
		target *= 10;
	return static_cast<unsigned>(std::bit_width(target - 1));
}

std::nullopt_t fail(std::string *error, const char *what)
{
	if (error)
		*error = std::string("histogram line: ") + what;
	return std::nullopt;
}

template <typename T>
bool parse_number(std::string_view token, T &out)
{
	const char *end = token.data() + token.size();
	const auto [ptr, ec] = std::from_chars(token.data(), end, out);
	return !token.empty() && ec == std::errc() && ptr == end;
}

void append_number(std::string &out, std::uint64_t value)
{
	char buf[24];
	const auto [ptr, ec] = std::to_chars(buf, buf + sizeof buf, value);
	(void)ec; // 24 bytes always hold a 64-bit decimal
	out.append(buf, ptr);
}

// Splits on runs of blanks; a trailing newline (with or without '\r') is tolerated.
std::vector<std::string_view> split(std::string_view line)
{
	std::vector<std::string_view> tokens;
	std::size_t i = 0;
	const auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
	while (i < line.size()) {
		while (i < line.size() && blank(line[i]))
			++i;
		const std::size_t start = i;
		while (i < line.size() && !blank(line[i]))
			++i;
		if (i > start)
			tokens.push_back(line.substr(start, i - start));
	}
	return tokens;
}

} // namespace

Histogram::Histogram(std::uint64_t highest, int digits)
    : highest_(highest), digits_(digits), sub_bits_(0), sub_count_(0)
{
	if (digits < 1 || digits > 5)
		throw std::invalid_argument("histogram: digits must be within 1..5");
	sub_bits_ = sub_bits_for(digits);
	sub_count_ = std::uint64_t(1) << sub_bits_;
	counts_.assign(index_of(highest) + 1, 0);
}

bool Histogram::merge(const Histogram &other) noexcept
{
	if (other.highest_ != highest_ || other.digits_ != digits_)
		return false;
	if (other.count_ == 0)
		return true;
	// Same configuration means same bucket layout, so counters add index by index (this also
	// holds for merging a histogram into itself).
	for (std::size_t i = 0; i < counts_.size(); ++i)
		counts_[i] += other.counts_[i];
	count_ += other.count_;
	clamped_ += other.clamped_;
	min_ = std::min(min_, other.min_);
	max_ = std::max(max_, other.max_);
	return true;
}

void Histogram::reset() noexcept
{
	std::fill(counts_.begin(), counts_.end(), 0);
	count_ = 0;
	clamped_ = 0;
	min_ = no_value;
	max_ = 0;
}

std::uint64_t Histogram::lowest_equivalent(std::size_t index) const noexcept
{
	if (index < sub_count_)
		return index;
	const std::uint64_t half = sub_count_ / 2;
	const std::uint64_t k = (index >> (sub_bits_ - 1)) - 1;
	// The largest shift any 64-bit value produces in index_of(); beyond it the shift would
	// overflow, so such indices saturate.
	if (k > 64 - sub_bits_)
		return no_value;
	const std::uint64_t sub = half + (index & (half - 1));
	return sub << k;
}

std::uint64_t Histogram::highest_equivalent(std::size_t index) const noexcept
{
	if (index < sub_count_)
		return index;
	const std::uint64_t k = (index >> (sub_bits_ - 1)) - 1;
	if (k > 64 - sub_bits_)
		return no_value;
	// Written as lowest + (width - 1) so that the very last bucket ends at UINT64_MAX without
	// overflowing.
	return lowest_equivalent(index) + ((std::uint64_t(1) << k) - 1);
}

double Histogram::mean() const noexcept
{
	if (count_ == 0)
		return 0;
	double sum = 0;
	for (std::size_t i = 0; i < counts_.size(); ++i) {
		if (counts_[i] == 0)
			continue;
		const std::uint64_t lo = lowest_equivalent(i);
		const std::uint64_t mid = lo + (highest_equivalent(i) - lo) / 2;
		// The extreme buckets are only partly used: keeping the midpoint within the exact
		// min and max makes a histogram of one repeated value report that value.
		sum += static_cast<double>(counts_[i]) *
		       static_cast<double>(std::clamp(mid, min_, max_));
	}
	return sum / static_cast<double>(count_);
}

std::uint64_t Histogram::quantile(double q) const noexcept
{
	if (count_ == 0)
		return 0;
	std::uint64_t rank; // 1-based rank of the value asked for
	if (!(q > 0)) {
		rank = 1;
	} else if (q >= 1) {
		rank = count_;
	} else {
		double t = q * static_cast<double>(count_);
		// A decimal q such as 0.999 is not exact in binary, so q * count can land a hair
		// above the whole number the caller meant; ceil() would then skip one rank.
		const double whole = std::nearbyint(t);
		if (std::fabs(t - whole) <= t * 8 * std::numeric_limits<double>::epsilon())
			t = whole;
		const double up = std::ceil(t);
		rank = up >= static_cast<double>(count_)
		           ? count_
		           : std::max<std::uint64_t>(1, static_cast<std::uint64_t>(up));
	}
	std::uint64_t seen = 0;
	for (std::size_t i = 0; i < counts_.size(); ++i) {
		seen += counts_[i];
		if (seen >= rank)
			return std::min(highest_equivalent(i), max_);
	}
	return max_; // unreachable while the counters sum to count_
}

std::uint64_t Histogram::count_at_or_above(std::uint64_t value) const noexcept
{
	std::uint64_t n = 0;
	for (std::size_t i = index_of(value); i < counts_.size(); ++i)
		n += counts_[i];
	return n;
}

std::string Histogram::serialize() const
{
	std::string out = "H";
	const std::uint64_t header[] = {
	    highest_, static_cast<std::uint64_t>(digits_), count_, min(), max(), clamped_};
	for (const std::uint64_t v : header) {
		out += ' ';
		append_number(out, v);
	}
	std::size_t previous = 0;
	for (std::size_t i = 0; i < counts_.size(); ++i) {
		if (counts_[i] == 0)
			continue;
		out += ' ';
		append_number(out, i - previous);
		out += ':';
		append_number(out, counts_[i]);
		previous = i;
	}
	return out;
}

std::optional<Histogram> Histogram::parse(std::string_view line, std::string *error)
{
	const std::vector<std::string_view> tokens = split(line);
	if (tokens.empty() || tokens[0] != "H")
		return fail(error, "expected the tag 'H'");
	if (tokens.size() < 7)
		return fail(error,
		            "truncated header (want highest, digits, count, min, max, clamped)");
	struct {
		std::uint64_t highest, count, min, max, clamped;
		int digits;
	} in;
	if (!parse_number(tokens[1], in.highest))
		return fail(error, "highest is not a number");
	if (!parse_number(tokens[2], in.digits))
		return fail(error, "digits is not a number");
	if (in.digits < 1 || in.digits > 5)
		return fail(error, "digits outside 1..5");
	if (!parse_number(tokens[3], in.count) || !parse_number(tokens[4], in.min) ||
	    !parse_number(tokens[5], in.max) || !parse_number(tokens[6], in.clamped))
		return fail(error, "count, min, max or clamped is not a number");

	Histogram h(in.highest, in.digits);
	std::uint64_t sum = 0;
	std::size_t index = 0, first = 0;
	for (std::size_t t = 7; t < tokens.size(); ++t) {
		const std::string_view pair = tokens[t];
		const std::size_t colon = pair.find(':');
		std::uint64_t delta, n;
		if (colon == std::string_view::npos ||
		    !parse_number(pair.substr(0, colon), delta) ||
		    !parse_number(pair.substr(colon + 1), n))
			return fail(error, "pair is not <index delta>:<count> in decimal");
		// Counters are listed once each in increasing order; only the first delta may be 0.
		if (t > 7 && delta == 0)
			return fail(error, "index not increasing");
		if (delta >= h.counts_.size() - index)
			return fail(error, "index beyond the last bucket");
		index += static_cast<std::size_t>(delta);
		if (t == 7)
			first = index;
		if (n == 0)
			return fail(error, "zero count in a pair");
		if (n > no_value - sum)
			return fail(error, "counts overflow");
		sum += n;
		h.counts_[index] = n;
	}
	if (sum != in.count)
		return fail(error, "count does not match the sum of the pairs");
	if (in.count == 0) {
		if (in.min != 0 || in.max != 0 || in.clamped != 0)
			return fail(error, "empty histogram with non-zero min, max or clamped");
		return h;
	}
	if (in.min > in.max || in.max > in.highest)
		return fail(error, "min above max or max above highest");
	// The exact min and max must fall in the first and last non-empty buckets, or quantiles
	// and the mean would be computed from inconsistent data.
	if (h.index_of(in.min) != first || h.index_of(in.max) != index)
		return fail(error, "min or max outside the first or last non-empty bucket");
	// Clamped values were recorded as highest, so they all sit in the last non-empty bucket.
	if (in.clamped > 0 && (in.max != in.highest || in.clamped > h.counts_[index]))
		return fail(error, "clamped count inconsistent with highest and the last bucket");
	h.count_ = in.count;
	h.min_ = in.min;
	h.max_ = in.max;
	h.clamped_ = in.clamped;
	return h;
}

} // namespace atlas::loadgen
