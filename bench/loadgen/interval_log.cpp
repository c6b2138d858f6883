#include "interval_log.hpp"

#include <fmt/format.h>
#include <fstream>
#include <sstream>

namespace atlas::loadgen
{

std::optional<IntervalLog> read_interval_log(const std::string &path, std::string *error)
{
	auto fail = [&](std::size_t line_no, const std::string &what) {
		if (error)
			*error = line_no ? fmt::format("{}:{}: {}", path, line_no, what)
			                 : fmt::format("{}: {}", path, what);
		return std::nullopt;
	};
	std::ifstream in(path);
	if (!in)
		return fail(0, "cannot open it");
	IntervalLog log;
	bool have_total = false;
	std::string line;
	for (std::size_t line_no = 1; std::getline(in, line); line_no++) {
		if (line.empty())
			continue;
		std::string why;
		if (line.rfind("# total ", 0) == 0) {
			auto h = Histogram::parse(std::string_view(line).substr(8), &why);
			if (!h)
				return fail(line_no, "bad total histogram: " + why);
			log.total = std::move(*h);
			have_total = true;
			continue;
		}
		if (line[0] == '#')
			continue;
		std::istringstream fields(line);
		IntervalLog::Interval interval;
		if (!(fields >> interval.start_s >> interval.end_s))
			return fail(line_no, "expected '<start s> <end s> H ...'");
		const auto at = line.find(" H ");
		if (at == std::string::npos)
			return fail(line_no, "no histogram on the line");
		auto h = Histogram::parse(std::string_view(line).substr(at + 1), &why);
		if (!h)
			return fail(line_no, "bad histogram: " + why);
		interval.latency = std::move(*h);
		log.intervals.push_back(std::move(interval));
	}
	if (!have_total)
		return fail(0, "no '# total' line: the run did not finish writing its log");
	return log;
}

} // namespace atlas::loadgen
