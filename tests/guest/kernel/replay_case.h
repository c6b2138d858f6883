// SPDX-License-Identifier: MIT
/*
 * Helpers of the in-guest replay tests (mmview_replay.c, mmview_remap_advise.c): the layout of
 * every view compared through /proc/thread-self/maps, and probes that survive a fault.
 */
#ifndef ATLAS_TESTS_REPLAY_CASE_H
#define ATLAS_TESTS_REPLAY_CASE_H

#include <setjmp.h>
#include <signal.h>

#include <atlas/mmview.h>

#include "views_case.h"

/* ---- what every case checks: one layout in every view ---- */

struct region {
	unsigned long start, end;
	char perms[8];
	char name[96];
};

#define MAX_REGIONS 512

/*
 * The layout of the calling thread's view: /proc/thread-self/maps with adjacent entries of the
 * same protection and name merged (VMA boundaries may differ between views: a view's mirror
 * ranges merge where the base's anon_vmas keep them apart). Read without allocating, so that
 * reading does not itself change the layout (malloc may grow the heap).
 */
static int layout_of_view(struct region *out)
{
	static char raw[1 << 16];
	char *line, *save;
	int count = 0;

	if (read_whole("/proc/thread-self/maps", raw, sizeof(raw)) < 0)
		return -1;
	for (line = strtok_r(raw, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		struct region r = {0};

		if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %95[^\n]", &r.start, &r.end, r.perms,
		           r.name) < 3)
			continue;
		if (count > 0 && out[count - 1].end == r.start &&
		    !strcmp(out[count - 1].perms, r.perms) &&
		    !strcmp(out[count - 1].name, r.name)) {
			out[count - 1].end = r.end;
			continue;
		}
		if (count == MAX_REGIONS)
			return -1;
		out[count++] = r;
	}
	return count;
}

/* Whether every view in @ids has the layout of the first; the caller ends in its own view. */
static bool layouts_equal(const long *ids, int n)
{
	static struct region first[MAX_REGIONS], other[MAX_REGIONS];
	long home = mmview_current();
	int count, i, j;
	bool equal = true;

	mmview_migrate(ids[0]);
	count = layout_of_view(first);
	for (i = 1; i < n && equal; i++) {
		int c;

		mmview_migrate(ids[i]);
		c = layout_of_view(other);
		equal = c == count && c > 0;
		for (j = 0; equal && j < c; j++) {
			equal = first[j].start == other[j].start && first[j].end == other[j].end &&
			        !strcmp(first[j].perms, other[j].perms) &&
			        !strcmp(first[j].name, other[j].name);
			if (!equal)
				printf("#   view %ld: %lx-%lx %s %s, view %ld: %lx-%lx %s %s\n",
				       ids[0], first[j].start, first[j].end, first[j].perms,
				       first[j].name, ids[i], other[j].start, other[j].end,
				       other[j].perms, other[j].name);
		}
		if (!equal && c != count)
			printf("#   view %ld has %d regions, view %ld %d\n", ids[0], count, ids[i],
			       c);
	}
	mmview_migrate(home);
	return equal;
}

/* Whether [@p, @p + @len) is mapped in the calling thread's view. */
static bool mapped(const void *p, size_t len)
{
	unsigned char vec[64];

	return mincore((void *)p, len, vec) == 0 || errno != ENOMEM;
}

/* Reads or writes one byte; returns false if that faults (SIGSEGV) in the caller's view. */
static sigjmp_buf probe_env;

static void probe_segv(int sig)
{
	(void)sig;
	siglongjmp(probe_env, 1);
}

static bool probe(volatile char *p, bool write)
{
	struct sigaction sa = {.sa_handler = probe_segv}, old;
	bool ok = true;

	sigaction(SIGSEGV, &sa, &old);
	if (sigsetjmp(probe_env, 1) == 0) {
		if (write)
			*p = *p;
		else
			(void)*p;
	} else {
		ok = false;
	}
	sigaction(SIGSEGV, &old, NULL);
	return ok;
}

#endif
