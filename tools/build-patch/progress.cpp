// SPDX-License-Identifier: MIT
#include "progress.hpp"

#include <fmt/format.h>

namespace atlas::build_patch
{

void Progress::line(const std::string &text) const
{
	if (!quiet_)
		fmt::print(stderr, "atlas build-patch: {}\n", text);
}

void Progress::begin(const std::string &step, const std::string &text)
{
	step_ = step;
	start_ = std::chrono::steady_clock::now();
	line(text);
}

double Progress::end(const std::string &detail)
{
	double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
	timings_.emplace_back(step_, s);
	line(fmt::format("  {}{:.2f} s", detail.empty() ? "" : detail + ", ", s));
	return s;
}

} // namespace atlas::build_patch
