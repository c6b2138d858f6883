// Reading back the interval logs atlas-loadgen writes with --log (format: README.md): the
// evaluation merges the runs of one mode and draws latency over time from them.
#pragma once

#include "histogram.hpp"

#include <optional>
#include <string>
#include <vector>

namespace atlas::loadgen
{

struct IntervalLog {
	struct Interval {
		double start_s = 0, end_s = 0; // of intended send times, from the run's start
		Histogram latency;
	};
	std::vector<Interval> intervals;
	Histogram total; // the "# total" line: the whole run
};

// Reads the log at `path`; std::nullopt with *error naming the file, the line and the problem.
std::optional<IntervalLog> read_interval_log(const std::string &path, std::string *error);

} // namespace atlas::loadgen
