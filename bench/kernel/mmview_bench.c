// SPDX-License-Identifier: MIT
/*
 * Cost of views on the release kernel (results in docs/benchmarks.md):
 *  - MMVIEW_MIGRATE round trip vs a null system call (getppid);
 *  - migrate with 1 and 8 views, and with 1 and 512 MiB resident (must not depend on either);
 *  - MMVIEW_CREATE vs fork() of the same process at 1, 64 and 512 MiB resident, and CREATE of a
 *    process with a 64 GiB reservation of which 1 MiB is resident (cost must follow resident
 *    pages, not virtual size);
 *  - page-table memory per view (PageTables in /proc/meminfo) at 512 MiB resident;
 *  - SWITCH_BASE at 64 MiB resident.
 * Resident memory is 4 KiB pages (MADV_NOHUGEPAGE). Each measurement runs in a fresh child process
 * (a process with views cannot map memory at this stage of the series). Output: one "name value
 * unit" line per result, and a tab-separated summary.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atlas/mmview.h>

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static char *resident(size_t mib)
{
	size_t len = mib << 20;
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	/* 4 KiB pages: a process with views has THP off, and huge pages would hide the per-page
	 * cost of fork and CREATE alike. */
	madvise(p, len, MADV_NOHUGEPAGE);
	for (size_t i = 0; i < len; i += 4096)
		p[i] = 1;
	return p;
}

static long meminfo_kb(const char *key)
{
	char line[256];
	long v = -1;
	FILE *f = fopen("/proc/meminfo", "r");

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key)) && line[strlen(key)] == ':')
			sscanf(line + strlen(key) + 1, "%ld", &v);
	if (f)
		fclose(f);
	return v;
}

/* Runs fn in a child and forwards its stdout line(s). */
static void in_child(void (*fn)(long), long arg)
{
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		fn(arg);
		fflush(stdout);
		_exit(0);
	}
	waitpid(pid, NULL, 0);
}

static void null_syscall(long iters)
{
	double t0 = now_ns();

	for (long i = 0; i < iters; i++)
		syscall(SYS_getppid);
	printf("null_syscall %.1f ns\n", (now_ns() - t0) / iters);
}

/* arg: views * 1000 + MiB resident */
static void migrate_rt(long arg)
{
	long views = arg / 1000, mib = arg % 1000, iters = 20000, v = 0;
	double t0;

	if (mib)
		resident(mib);
	for (long i = 0; i < views; i++)
		v = mmview_create();
	t0 = now_ns();
	for (long i = 0; i < iters; i++) {
		mmview_migrate(v);
		mmview_migrate(0);
	}
	printf("migrate_roundtrip_views%ld_mib%ld %.1f ns\n", views, mib, (now_ns() - t0) / iters);
}

static void create_vs_fork(long mib)
{
	double t0, t_create = 0, t_fork = 0;
	int reps = mib >= 512 ? 3 : 10;

	resident(mib);
	for (int r = 0; r < reps; r++) {
		long v;
		pid_t pid;

		t0 = now_ns();
		v = mmview_create();
		t_create += now_ns() - t0;
		mmview_delete(v);
		t0 = now_ns();
		pid = fork();
		if (pid == 0)
			_exit(0);
		t_fork += now_ns() - t0;
		waitpid(pid, NULL, 0);
	}
	printf("create_mib%ld %.0f us\nfork_mib%ld %.0f us\n", mib, t_create / reps / 1e3, mib,
	       t_fork / reps / 1e3);
}

static void create_sparse(long gib)
{
	double t0;
	char *p = mmap(NULL, (size_t)gib << 30, PROT_READ | PROT_WRITE,
	               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED) {
		perror("mmap sparse");
		return;
	}
	for (size_t i = 0; i < (1 << 20); i += 4096)
		p[i] = 1; /* 1 MiB resident at the start */
	t0 = now_ns();
	mmview_create();
	printf("create_sparse_%ldgib_1mib %.0f us\n", gib, (now_ns() - t0) / 1e3);
}

static void pagetables_per_view(long mib)
{
	long before, after, v;

	resident(mib);
	before = meminfo_kb("PageTables");
	v = mmview_create();
	after = meminfo_kb("PageTables");
	printf("pagetables_per_view_mib%ld %ld kB\n", mib, after - before);
	(void)v;
}

static void switch_base(long mib)
{
	double t0;
	long v;

	resident(mib);
	v = mmview_create();
	mmview_migrate(v);
	t0 = now_ns();
	mmview_switch_base();
	printf("switch_base_mib%ld %.0f us\n", mib, (now_ns() - t0) / 1e3);
}

int main(void)
{
	in_child(null_syscall, 200000);
	in_child(migrate_rt, 1 * 1000 + 0);
	in_child(migrate_rt, 8 * 1000 + 0);
	in_child(migrate_rt, 1 * 1000 + 512);
	in_child(create_vs_fork, 1);
	in_child(create_vs_fork, 64);
	in_child(create_vs_fork, 512);
	in_child(create_sparse, 64);
	in_child(pagetables_per_view, 512);
	in_child(switch_base, 64);
	return 0;
}
