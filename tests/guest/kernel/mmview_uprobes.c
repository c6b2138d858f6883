// SPDX-License-Identifier: MIT
/*
 * Uprobes in a process with views (docs/kernel.md, "Uprobes"): a probe
 * registered through tracefs on this program's own text. A breakpoint in mirrored text is
 * written once, into the base's page, which every view maps (same PFN); in an unshared range
 * each view gets its own. The area a probed instruction is stepped in (XOL, "[uprobes]") is at
 * one address in every view, each view with a page of its own, whichever view hits a probe
 * first, and CREATE gives a new view its own copy.
 *
 * Each case runs in a child process of its own (views_case.h) and removes its probe.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include <atlas/mmview.h>

#include "views_case.h"

#define TRACEFS "/sys/kernel/tracing"
#define EVENT_GROUP "atlas_uprobes"

/*
 * The probed function, alone on its page so that unsharing that page leaves the rest of the
 * program's text shared. Its first instruction (lea) is one that x86 uprobes cannot emulate:
 * every hit steps it out of line, in the XOL area.
 */
long probed(long x);
__asm__(".pushsection .text\n"
        ".p2align 12\n"
        ".globl probed\n"
        ".type probed, @function\n"
        "probed:\n"
        "\tlea 1(%rdi), %rax\n"
        "\tret\n"
        ".size probed, .-probed\n"
        ".p2align 12\n"
        ".popsection\n");

/* Calls probed() through a volatile pointer, so that the compiler cannot fold it. */
static long (*volatile call_probed)(long) = probed;

static uint8_t first_byte(void)
{
	return *(volatile uint8_t *)probed;
}

/* The offset of probed() in this program's file, as uprobe_events wants it. */
static bool probe_target(char *target, size_t size)
{
	char exe[256], line[512];
	unsigned long a = (unsigned long)probed;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	FILE *maps = fopen("/proc/self/maps", "r");
	bool found = false;

	if (n <= 0 || !maps)
		return false;
	exe[n] = '\0';
	while (!found && fgets(line, sizeof(line), maps)) {
		unsigned long start, end, offset;

		if (sscanf(line, "%lx-%lx %*s %lx", &start, &end, &offset) == 3 && start <= a &&
		    a < end) {
			snprintf(target, size, "%s:0x%lx", exe, a - start + offset);
			found = true;
		}
	}
	fclose(maps);
	return found;
}

static bool mount_tracefs(void)
{
	if (mount("tracefs", TRACEFS, "tracefs", 0, NULL) && errno != EBUSY) {
		printf("#   mounting tracefs on %s: %s\n", TRACEFS, strerror(errno));
		return false;
	}
	return true;
}

/* Defines and enables uprobe event @name on probed(); enabling registers it. */
static bool add_probe(const char *name)
{
	char target[320], text[400], path[256];

	if (!mount_tracefs() || !probe_target(target, sizeof(target)))
		return false;
	snprintf(text, sizeof(text), "p:%s/%s %s\n", EVENT_GROUP, name, target);
	if (write_file(TRACEFS "/uprobe_events", text)) {
		printf("#   defining the probe \"%s\": %s\n", text, strerror(errno));
		return false;
	}
	snprintf(path, sizeof(path), TRACEFS "/events/%s/%s/enable", EVENT_GROUP, name);
	if (write_file(path, "1")) {
		printf("#   enabling the probe: %s\n", strerror(errno));
		return false;
	}
	return true;
}

/* Disables event @name, which unregisters it, and removes it. */
static bool drop_probe(const char *name)
{
	char path[256], text[128];

	snprintf(path, sizeof(path), TRACEFS "/events/%s/%s/enable", EVENT_GROUP, name);
	if (write_file(path, "0"))
		return false;
	snprintf(text, sizeof(text), "-:%s/%s\n", EVENT_GROUP, name);
	return !write_file(TRACEFS "/uprobe_events", text);
}

/* Drops event @name, then checks that views @ids[0..n-1] read probed()'s first byte @orig. */
static void drop_probe_and_expect_restored(const char *name, const long *ids, int n, uint8_t orig)
{
	int v;

	EXPECT(drop_probe(name), "the probe could be removed");
	for (v = 0; v < n; v++) {
		mmview_migrate(ids[v]);
		EXPECT(first_byte() == orig, "view %ld reads the original byte %#x again (got %#x)",
		       ids[v], orig, first_byte());
		EXPECT(call_probed(1) == 2, "probed(1) in view %ld returns 2", ids[v]);
	}
	mmview_migrate(0);
}

/* How often event @name fired, from uprobe_profile; -1 if it is not listed. */
static long probe_hits(const char *name)
{
	static char raw[1 << 14];
	char *line, *save;

	if (read_whole(TRACEFS "/uprobe_profile", raw, sizeof(raw)) < 0)
		return -1;
	for (line = strtok_r(raw, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char file[256], event[128];
		long hits;

		if (sscanf(line, " %255s %127s %ld", file, event, &hits) == 3 &&
		    !strcmp(event, name))
			return hits;
	}
	return -1;
}

/* The start of the calling thread's view's XOL area ("[uprobes]"); 0 if it has none. */
static unsigned long xol_address(void)
{
	char line[512];
	unsigned long start = 0;
	FILE *maps = fopen("/proc/thread-self/maps", "r");

	if (!maps)
		return 0;
	while (fgets(line, sizeof(line), maps))
		if (strstr(line, "[uprobes]"))
			sscanf(line, "%lx", &start);
	fclose(maps);
	return start;
}

/* ---- a probe on mirrored text ---- */

/*
 * Registered while the process has three views: written once, into the base's page, which
 * every view maps; the probe fires from each view and the instruction runs correctly.
 */
static void case_probe_on_mirrored_text(void)
{
	long ids[3];
	uint8_t orig = first_byte();
	uint64_t file_pfn, base_pfn;
	int v;

	if (!create_views(ids, 3))
		return;
	file_pfn = pfn_of(probed);
	if (!add_probe("mirrored")) {
		EXPECT(false, "the probe could be set up");
		return;
	}
	base_pfn = pfn_of(probed);
	EXPECT(base_pfn && base_pfn != file_pfn,
	       "the base's text page is a new copy with the breakpoint (PFN %#llx, file's %#llx)",
	       (unsigned long long)base_pfn, (unsigned long long)file_pfn);
	for (v = 0; v < 3; v++) {
		long r;

		mmview_migrate(ids[v]);
		EXPECT(first_byte() == 0xcc, "view %ld reads the breakpoint (got %#x)", ids[v],
		       first_byte());
		EXPECT(pfn_of(probed) == base_pfn,
		       "view %ld maps the base's page (%#llx, not %#llx)", ids[v],
		       (unsigned long long)pfn_of(probed), (unsigned long long)base_pfn);
		r = call_probed(41);
		EXPECT(r == 42, "probed(41) in view %ld returns 42 (got %ld)", ids[v], r);
	}
	mmview_migrate(0);
	EXPECT(probe_hits("mirrored") == 3, "3 hits, one per view (got %ld)",
	       probe_hits("mirrored"));
	drop_probe_and_expect_restored("mirrored", ids, 3, orig);
}

/* ---- the XOL area ---- */

struct stepper {
	long view;
	long wrong;
};

static void *step_in_view(void *arg)
{
	struct stepper *s = arg;
	long i;

	mmview_migrate(s->view);
	for (i = 0; i < 1000; i++)
		if (call_probed(i) != i + 1)
			s->wrong++;
	mmview_migrate(0);
	return NULL;
}

/*
 * The first hit is in view 2: the XOL area appears at one address in every view. Then three
 * threads, one per view, step the probed instruction at the same time, each in its own view's
 * XOL page.
 */
static void case_xol_area_in_every_view(void)
{
	pthread_t threads[3];
	struct stepper steppers[3];
	unsigned long xol[3];
	uint64_t xol_pfn[3];
	long ids[3];
	int v;

	if (!create_views(ids, 3))
		return;
	if (!add_probe("xol")) {
		EXPECT(false, "the probe could be set up");
		return;
	}
	mmview_migrate(ids[2]);
	EXPECT(xol_address() == 0, "no XOL area before the first hit");
	EXPECT(call_probed(6) == 7, "probed(6) in view %ld returns 7", ids[2]);
	mmview_migrate(0);
	for (v = 0; v < 3; v++) {
		steppers[v] = (struct stepper){.view = ids[v]};
		pthread_create(&threads[v], NULL, step_in_view, &steppers[v]);
	}
	for (v = 0; v < 3; v++) {
		pthread_join(threads[v], NULL);
		EXPECT(steppers[v].wrong == 0, "view %ld: %ld of 1000 results wrong", ids[v],
		       steppers[v].wrong);
	}
	EXPECT(probe_hits("xol") == 3001, "3001 hits (got %ld)", probe_hits("xol"));
	for (v = 0; v < 3; v++) {
		mmview_migrate(ids[v]);
		xol[v] = xol_address();
		xol_pfn[v] = xol[v] ? pfn_of((void *)xol[v]) : 0;
	}
	mmview_migrate(0);
	EXPECT(xol[0] && xol[0] == xol[1] && xol[1] == xol[2],
	       "one XOL address in every view (%#lx, %#lx, %#lx)", xol[0], xol[1], xol[2]);
	EXPECT(xol_pfn[0] && xol_pfn[1] && xol_pfn[2] && xol_pfn[0] != xol_pfn[1] &&
	           xol_pfn[1] != xol_pfn[2] && xol_pfn[0] != xol_pfn[2],
	       "each view steps in a page of its own (PFNs %#llx, %#llx, %#llx)",
	       (unsigned long long)xol_pfn[0], (unsigned long long)xol_pfn[1],
	       (unsigned long long)xol_pfn[2]);
	EXPECT(drop_probe("xol"), "the probe could be removed");
}

/* A process that has stepped a probe out of line can still create views. */
static void case_create_after_a_hit(void)
{
	unsigned long xol;
	long id;

	if (!add_probe("create")) {
		EXPECT(false, "the probe could be set up");
		return;
	}
	EXPECT(call_probed(1) == 2, "probed(1) returns 2");
	xol = xol_address();
	EXPECT(xol != 0, "the hit made an XOL area");
	id = mmview_create();
	EXPECT(id > 0, "CREATE with an XOL area (got %s)", err_name(id));
	if (id > 0) {
		mmview_migrate(id);
		EXPECT(xol_address() == xol, "the new view's XOL area is at %#lx (got %#lx)", xol,
		       xol_address());
		EXPECT(call_probed(2) == 3, "probed(2) in the new view returns 3");
		mmview_migrate(0);
	}
	EXPECT(probe_hits("create") == 2, "2 hits (got %ld)", probe_hits("create"));
	EXPECT(drop_probe("create"), "the probe could be removed");
}

/* ---- a probe on unshared text ---- */

/*
 * probed()'s page is unshared (before CREATE, as UNSHARE requires) and the probe registered
 * afterwards: the breakpoint is written into each view's own copy, and removing the probe
 * restores each.
 */
static void case_probe_on_unshared_text(void)
{
	uint8_t orig = first_byte();
	uint64_t pfn[2];
	long ids[2], r;
	int v;

	r = mmview_unshare(probed, page);
	EXPECT(r == 0, "UNSHARE of probed()'s page (got %s)", err_name(r));
	if (!create_views(ids, 2))
		return;
	if (!add_probe("unshared")) {
		EXPECT(false, "the probe could be set up");
		return;
	}
	for (v = 0; v < 2; v++) {
		mmview_migrate(ids[v]);
		EXPECT(first_byte() == 0xcc, "view %ld reads the breakpoint (got %#x)", ids[v],
		       first_byte());
		pfn[v] = pfn_of(probed);
		EXPECT(call_probed(9) == 10, "probed(9) in view %ld returns 10", ids[v]);
	}
	mmview_migrate(0);
	EXPECT(pfn[0] && pfn[1] && pfn[0] != pfn[1],
	       "each view has its own copy of the page (PFNs %#llx, %#llx)",
	       (unsigned long long)pfn[0], (unsigned long long)pfn[1]);
	EXPECT(probe_hits("unshared") == 2, "2 hits, one per view (got %ld)",
	       probe_hits("unshared"));
	drop_probe_and_expect_restored("unshared", ids, 2, orig);
}

int main(void)
{
	page = sysconf(_SC_PAGESIZE);
	setvbuf(stdout, NULL, _IOLBF, 0);
	tap_plan(4);
	run_case("uprobe on mirrored text: written into the base's page, fires in every view",
	         case_probe_on_mirrored_text);
	run_case("uprobe XOL area: one address in every view, a page per view, 3 views stepping",
	         case_xol_area_in_every_view);
	run_case("uprobe XOL area: CREATE after a hit gives the new view its own",
	         case_create_after_a_hit);
	run_case("uprobe on unshared text: each view's copy gets the breakpoint",
	         case_probe_on_unshared_text);
	return tap_finish();
}
