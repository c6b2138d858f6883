// SPDX-License-Identifier: MIT
/*
 * Views under stress (docs/kernel.md, "Testing"): 8 worker threads over at least 4 views migrate
 * at random and hammer shared memory with atomic increments while a controller thread creates
 * and deletes views, switches the base, forks from the base or a view, and runs compaction, all
 * under zram swap pressure (the process's memory cgroup is smaller than its working set, so the
 * base keeps swapping pages out and views keep re-mirroring them). At the end every counter must
 * equal the increments the workers made (no lost update, ever), every private slot must hold
 * its owner's last value, and the PFN checker must find every view mapping the base's frames.
 *
 * 2 layout threads also migrate at random and keep changing the layout, running the changes
 * whose bits are set in MASK (1 mmap, 2 munmap, 4 mprotect, 8 MADV_DONTNEED, 0x10 mremap, 0x20
 * a thread that comes and goes; default 0x3f, all of them; 0: no layout threads), and check
 * their own regions' contents after every change from whatever view they are in.
 *
 * Usage: mmview_stress SECONDS [MASK] (make check: 300; the long tier: 3600).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atlas/mmview.h>

#include "views_case.h"

#define WORKERS 8
#define LAYOUT_THREADS 2
#define MIN_VIEWS 4
#define PAGES 8192 /* 32 MiB of shared counters */
#define REGIONS 16 /* per layout thread */

static char *mem;
static _Atomic long views[MIN_VIEWS + 1]; /* live view ids the workers may migrate to */
static _Atomic bool stop;
static long increments[WORKERS];
static _Atomic long migrations, forks, switches, creations, compactions;
static _Atomic long layout_changes, layout_errors;
static unsigned long layout_ops; /* bit k: the layout threads run change k; 0: no layout threads */

static unsigned long rnd(unsigned long *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Word 0 of each page: a counter every worker increments; word 1 + w: worker w's own slot. */
static void *worker(void *arg)
{
	long w = (long)arg, n = 0;
	unsigned long seed = 0x9e3779b97f4a7c15UL * (w + 1);

	while (!atomic_load(&stop)) {
		long v = atomic_load(&views[rnd(&seed) % (MIN_VIEWS + 1)]);

		if (v >= 0 && mmview_migrate(v) >= 0)
			atomic_fetch_add(&migrations, 1);
		for (int i = 0; i < 64; i++) {
			long *p = (long *)(mem + (rnd(&seed) % PAGES) * page);

			atomic_fetch_add((_Atomic long *)p, 1);
			p[1 + w] = ++n;
			increments[w]++;
			if (p[1 + w] != n) {
				printf("# worker %ld: private slot read back %ld, wrote %ld\n", w,
				       p[1 + w], n);
				exit(3);
			}
		}
	}
	mmview_migrate(0);
	return NULL;
}

/* ---- layout threads ---- */

struct region {
	char *p;
	size_t pages;
	char tag; /* page i holds tag + i in its first byte, 0 after MADV_DONTNEED */
};

static bool region_holds(const struct region *r)
{
	for (size_t i = 0; i < r->pages; i++)
		if (r->p[i * page] != (char)(r->tag + i))
			return false;
	return true;
}

static void region_fill(struct region *r, char tag)
{
	r->tag = tag;
	for (size_t i = 0; i < r->pages; i++)
		r->p[i * page] = (char)(tag + i);
}

static void layout_error(long t, const char *what, const struct region *r)
{
	printf("# layout thread %ld: %s (region %p, %zu pages): %s\n", t, what, (void *)r->p,
	       r->pages, strerror(errno));
	atomic_fetch_add(&layout_errors, 1);
}

static void *short_thread(void *arg)
{
	return arg;
}

/*
 * Changes the layout from whatever view it is in, and checks its regions' contents from
 * whatever view it is in next. Any difference between views' layouts or memory shows up as a
 * fault (the test dies) or a wrong byte (counted).
 */
static void *layout_thread(void *arg)
{
	long t = (long)arg;
	unsigned long seed = 0x2545f4914f6cdd1dUL * (t + 1);
	struct region regions[REGIONS] = {0};

	while (!atomic_load(&stop)) {
		long v = atomic_load(&views[rnd(&seed) % (MIN_VIEWS + 1)]);
		struct region *r = &regions[rnd(&seed) % REGIONS];
		char tag = (char)('A' + rnd(&seed) % 26);

		if (v >= 0 && mmview_migrate(v) >= 0)
			atomic_fetch_add(&migrations, 1);
		if (r->p && !region_holds(r)) {
			layout_error(t, "contents differ", r);
			continue;
		}
		unsigned long op = rnd(&seed) % 6;

		if (!(layout_ops & (1UL << op)))
			continue;
		switch (op) {
		case 0: /* map (or replace) a region */
			if (r->p)
				munmap(r->p, r->pages * page);
			r->pages = 1 + rnd(&seed) % 16;
			r->p = mmap(NULL, r->pages * page, PROT_READ | PROT_WRITE,
			            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (r->p == MAP_FAILED) {
				r->p = NULL;
				layout_error(t, "mmap", r);
				break;
			}
			region_fill(r, tag);
			break;
		case 1: /* unmap it */
			if (r->p && munmap(r->p, r->pages * page))
				layout_error(t, "munmap", r);
			r->p = NULL;
			break;
		case 2: /* read-only for a moment: reads work, then writable again */
			if (!r->p)
				break;
			if (mprotect(r->p, r->pages * page, PROT_READ) || !region_holds(r) ||
			    mprotect(r->p, r->pages * page, PROT_READ | PROT_WRITE))
				layout_error(t, "mprotect", r);
			break;
		case 3: /* discard: zeroes in whatever view reads next, then refill */
			if (!r->p)
				break;
			if (madvise(r->p, r->pages * page, MADV_DONTNEED)) {
				layout_error(t, "madvise", r);
				break;
			}
			if (r->p[0] != 0 || r->p[(r->pages - 1) * page] != 0)
				layout_error(t, "MADV_DONTNEED left data", r);
			region_fill(r, tag);
			break;
		case 4: { /* resize, moving if needed; the old contents follow */
			size_t pages = 1 + rnd(&seed) % 24, keep;
			char *q;

			if (!r->p)
				break;
			q = mremap(r->p, r->pages * page, pages * page, MREMAP_MAYMOVE);
			if (q == MAP_FAILED) {
				layout_error(t, "mremap", r);
				break;
			}
			keep = pages < r->pages ? pages : r->pages;
			r->p = q;
			r->pages = keep;
			if (!region_holds(r))
				layout_error(t, "contents lost by mremap", r);
			r->pages = pages;
			region_fill(r, tag);
			break;
		}
		case 5: { /* a thread comes and goes (its stack is mapped and unmapped) */
			pthread_t th;

			if (pthread_create(&th, NULL, short_thread, NULL) == 0)
				pthread_join(th, NULL);
			break;
		}
		}
		atomic_fetch_add(&layout_changes, 1);
	}
	mmview_migrate(0);
	return NULL;
}

static void swap_pressure(void)
{
	char path[64];

	/* zram swap, and a memory cgroup smaller than the working set. */
	if (write_file("/sys/block/zram0/disksize", "256M") == 0)
		(void)!system("mkswap /dev/zram0 >/dev/null 2>&1 && swapon /dev/zram0");
	mkdir("/sys/fs/cgroup", 0755);
	mount("none", "/sys/fs/cgroup", "cgroup2", 0, NULL);
	write_file("/sys/fs/cgroup/cgroup.subtree_control", "+memory");
	mkdir("/sys/fs/cgroup/stress", 0755);
	write_file("/sys/fs/cgroup/stress/memory.max", "24M");
	snprintf(path, sizeof(path), "%d", getpid());
	write_file("/sys/fs/cgroup/stress/cgroup.procs", path);
}

int main(int argc, char **argv)
{
	long seconds = argc > 1 ? atol(argv[1]) : 300, total = 0, bad = 0, pfn_bad = 0;
	int layout_threads;
	pthread_t th[WORKERS], layout[LAYOUT_THREADS];
	unsigned long seed = 12345;
	time_t end;
	int i;

	page = sysconf(_SC_PAGESIZE);
	setvbuf(stdout, NULL, _IOLBF, 0);
	layout_ops = argc > 2 ? strtoul(argv[2], NULL, 0) : 0x3f;
	layout_threads = layout_ops ? LAYOUT_THREADS : 0;
	tap_plan(6);
	mem = mmap(NULL, (size_t)PAGES * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
	           -1, 0);
	memset(mem, 0, (size_t)PAGES * page);
	swap_pressure();
	for (i = 0; i <= MIN_VIEWS; i++)
		views[i] = 0;
	/* 256 KiB stacks are plenty for the workers (and keep the base's working set small). */
	pthread_attr_t attr;

	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 << 10);
	for (i = 0; i < WORKERS; i++)
		pthread_create(&th[i], &attr, worker, (void *)(long)i);
	for (i = 0; i < layout_threads; i++)
		pthread_create(&layout[i], NULL, layout_thread, (void *)(long)i);
	for (i = 1; i <= MIN_VIEWS; i++) {
		views[i] = mmview_create();
		atomic_fetch_add(&creations, 1);
	}

	/* The controller: the main thread, in the base unless switching. */
	end = time(NULL) + seconds;
	while (time(NULL) < end) {
		int slot = 1 + rnd(&seed) % MIN_VIEWS;
		long old, v;

		switch (rnd(&seed) % 4) {
		case 0: /* replace a view: create, publish, delete the old one */
			v = mmview_create();
			if (v < 0)
				break;
			atomic_fetch_add(&creations, 1);
			old = atomic_exchange(&views[slot], v);
			if (old > 0 && old != atomic_load(&views[0]))
				mmview_delete(old);
			break;
		case 1: { /* fork from the base or a view: the child checks its snapshot is stable
			   */
			long from = atomic_load(&views[rnd(&seed) % 2 ? 0 : slot]);
			pid_t pid;

			if (from <= 0 || mmview_migrate(from) < 0)
				mmview_migrate(atomic_load(&views[0]));
			pid = fork();
			if (pid == 0) {
				long before = *(long *)mem, again;

				usleep(1000);
				again = *(long *)mem;
				_exit(before == again ? 0 : 1);
			}
			if (pid > 0) {
				int status;

				waitpid(pid, &status, 0);
				if (!WIFEXITED(status) || WEXITSTATUS(status)) {
					printf("# forked child saw its memory change\n");
					bad++;
				}
				atomic_fetch_add(&forks, 1);
			}
			mmview_migrate(atomic_load(&views[0]));
			break;
		}
		case 2: /* make another view the base; the old base becomes a plain view */
			v = atomic_load(&views[slot]);
			if (v > 0 && mmview_migrate(v) >= 0 && mmview_switch_base() == v) {
				old = atomic_exchange(&views[0], v);
				atomic_store(&views[slot], old);
				atomic_fetch_add(&switches, 1);
			}
			mmview_migrate(atomic_load(&views[0]));
			break;
		case 3:
			write_file("/proc/sys/vm/compact_memory", "1");
			atomic_fetch_add(&compactions, 1);
			break;
		}
		usleep(5000);
	}
	atomic_store(&stop, true);
	for (i = 0; i < WORKERS; i++)
		pthread_join(th[i], NULL);
	for (i = 0; i < layout_threads; i++)
		pthread_join(layout[i], NULL);
	mmview_migrate(atomic_load(&views[0]));

	for (i = 0; i < WORKERS; i++)
		total += increments[i];
	{
		long sum = 0;

		for (i = 0; i < PAGES; i++)
			sum += *(long *)(mem + (size_t)i * page);
		tap_check(sum == total, "no lost update: counters sum to %ld, workers made %ld",
		          sum, total);
	}
	tap_check(
	    migrations > 1000 && creations > MIN_VIEWS,
	    "%ld migrations, %ld views created, %ld base switches, %ld forks, %ld compactions "
	    "in %ld s",
	    (long)migrations, (long)creations, (long)switches, (long)forks, (long)compactions,
	    seconds);
	tap_check(bad == 0, "forked children never saw a later write");
	tap_check(
	    layout_errors == 0 && (!layout_threads || layout_changes > 1000),
	    "%d layout threads (changes 0x%lx): %ld layout changes from random views, %ld wrong",
	    layout_threads, layout_ops, (long)layout_changes, (long)layout_errors);
	for (i = 0; i < PAGES; i += 7) {
		uint64_t base_pfn = pfn_of(mem + (size_t)i * page);

		for (int k = 1; k <= MIN_VIEWS; k++) {
			uint64_t p;

			if (mmview_migrate(views[k]) < 0)
				continue;
			p = pfn_of(mem + (size_t)i * page);
			pfn_bad += p && base_pfn && p != base_pfn;
			mmview_migrate(atomic_load(&views[0]));
		}
	}
	tap_check(pfn_bad == 0, "PFN checker: %ld mirrors map another frame than the base",
	          pfn_bad);
	{
		long swapped = -1;
		FILE *f = fopen("/sys/fs/cgroup/stress/memory.swap.current", "r");

		if (f) {
			if (fscanf(f, "%ld", &swapped) != 1)
				swapped = -1;
			fclose(f);
		}
		tap_check(swapped > 0,
		          "the workload ran under swap pressure: %ld kB of it in zram swap",
		          swapped / 1024);
	}
	return tap_finish();
}
