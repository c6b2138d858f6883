// SPDX-License-Identifier: MIT
// The result of atlas build-patch for people (stderr, after the progress lines) and for
// programs (--json: one object on stdout).
#pragma once

#include "builder.hpp"

#include <nlohmann/json.hpp>

namespace atlas::build_patch
{

nlohmann::ordered_json report_json(const BuildReport &report);
void print_report(const BuildReport &report);

// `--print-flags`: the compile flags (one line, for CFLAGS), or as JSON with the link flags
// and the reasons.
void print_flags(bool as_json);

} // namespace atlas::build_patch
