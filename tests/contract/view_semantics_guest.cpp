// SPDX-License-Identifier: MIT
/*
 * The contract of address-space views (view_semantics.hpp) in the guest on the views kernel:
 * every case on the kernel (atlas::kernel_view_ops()) and on the simulation
 * (lib/internal/atlas/simulated_views.hpp), each in a child process of its own. TAP: one check
 * per case and back end, the failed expectations as diagnostics, and a diagnostic for each case
 * where the two disagree. Passes only when both pass every case: the kernel is the truth, a case
 * that fails on the simulation alone means the model drifted.
 *
 * Usage: view_semantics [PATTERN] (only the cases whose name contains PATTERN).
 */
#include "view_semantics.hpp"

#include <cstdio>
#include <cstring>
#include <sstream>
#include <vector>

#include "tap.h"

namespace
{

void diag_lines(const char *backend, const std::string &log)
{
	std::istringstream in(log);
	for (std::string line; std::getline(in, line);)
		tap_diag("  %s: %s", backend, line.c_str());
}

} // namespace

int main(int argc, char **argv)
{
	using namespace atlas_contract;
	const char *pattern = argc > 1 ? argv[1] : "";

	const ViewResult here = make_kernel_backend()->ops().current();
	if (!here.ok()) {
		printf("Bail out! this kernel has no views: MMVIEW_CURRENT failed %s\n",
		       errno_name(here.error).c_str());
		return 1;
	}
	std::vector<const Case *> selected;
	for (const Case &c : cases())
		if (strstr(c.name, pattern))
			selected.push_back(&c);
	tap_plan(static_cast<int>(2 * selected.size()));
	int disagreements = 0;
	for (const Case *c : selected) {
		const Outcome kernel = run_case(c->run, make_kernel_backend);
		tap_check(kernel.passed, "kernel: %s", c->name);
		diag_lines("kernel", kernel.log);
		const Outcome sim = run_case(c->run, make_simulation_backend);
		tap_check(sim.passed, "simulation: %s", c->name);
		diag_lines("simulation", sim.log);
		if (kernel.passed != sim.passed) {
			disagreements++;
			tap_diag("DISAGREEMENT on %s: the kernel %s, the simulation %s", c->name,
			         kernel.passed ? "passes" : "fails",
			         sim.passed ? "passes" : "fails");
		}
	}
	tap_diag("%zu cases, %d where the kernel and the simulation disagree", selected.size(),
	         disagreements);
	return tap_finish();
}
