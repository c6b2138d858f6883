// SPDX-License-Identifier: MIT
/*
 * Preloaded (LD_PRELOAD) into every upstream mm selftest in guest-run.sh's second pass: before
 * main(), the process creates a view and moves its main thread into it, so the whole test runs
 * in a view other than the base, with two live views (docs/kernel.md, "Testing": the selftests
 * pass the same inside a non-base view as outside it). It says so on stderr, which guest-run.sh
 * looks for; if it cannot enter a view the test exits 97, which can never match a baseline.
 * Programs the test executes start in a view of their own the same way.
 */
#include <stdio.h>
#include <unistd.h>

#include <atlas/mmview.h>

__attribute__((constructor)) static void atlas_enter_view(void)
{
	long view = mmview_create();

	if (view <= 0 || mmview_migrate(view) != 0) {
		fprintf(stderr, "atlas-in-view: cannot enter a view (CREATE returned %ld)\n", view);
		_exit(97);
	}
	fprintf(stderr, "atlas-in-view: running in view %ld\n", view);
}
