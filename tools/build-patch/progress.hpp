// SPDX-License-Identifier: MIT
// Progress lines on stderr ("atlas build-patch: building the original tree: make -j2 ...")
// and the timings the report keeps.
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

namespace atlas::build_patch
{

class Progress
{
public:
	explicit Progress(bool quiet) : quiet_(quiet) {}

	void line(const std::string &text) const;

	// Starts timing a step and says so; end() prints how long it took and records it.
	void begin(const std::string &step, const std::string &text);
	double end(const std::string &detail = {});

	const std::vector<std::pair<std::string, double>> &timings() const noexcept
	{
		return timings_;
	}

private:
	bool quiet_;
	std::string step_;
	std::chrono::steady_clock::time_point start_;
	std::vector<std::pair<std::string, double>> timings_;
};

} // namespace atlas::build_patch
