/* SPDX-License-Identifier: MIT */
/*
 * Minimal TAP (version 13) output for in-guest tests, kselftest style: a plan, one
 * "ok"/"not ok" line per check, diagnostics behind '#'. tap_finish() returns the exit status:
 * 0 only if every planned check ran and passed.
 */
#ifndef ATLAS_TESTS_TAP_H
#define ATLAS_TESTS_TAP_H

#include <stdarg.h>
#include <stdio.h>

static int tap_planned, tap_run, tap_failed;

static inline void tap_plan(int n)
{
	tap_planned = n;
	printf("TAP version 13\n1..%d\n", n);
	fflush(stdout);
}

/* Records one check; @ok decides "ok"/"not ok"; the description is printf-formatted. */
static inline int tap_check(int ok, const char *fmt, ...)
{
	va_list ap;

	tap_run++;
	if (!ok)
		tap_failed++;
	printf("%s %d - ", ok ? "ok" : "not ok", tap_run);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	return ok;
}

static inline void tap_diag(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static inline int tap_finish(void)
{
	if (tap_run != tap_planned) {
		tap_diag("planned %d checks, ran %d", tap_planned, tap_run);
		return 1;
	}
	tap_diag("%d passed, %d failed", tap_run - tap_failed, tap_failed);
	return tap_failed ? 1 : 0;
}

#endif /* ATLAS_TESTS_TAP_H */
