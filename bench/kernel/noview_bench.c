// SPDX-License-Identifier: MIT
/*
 * What the views series costs a process that never creates a view (docs/benchmarks.md):
 * fork, mmap/munmap, page faults and thread creation, run on the release kernel with the
 * series and on the same configuration without it (kernel/build.sh stock); results in
 * docs/benchmarks.md. Output: one "name value unit" line per result; each is the median of
 * 5 runs.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median5(double (*fn)(void))
{
	double v[5];

	for (int i = 0; i < 5; i++)
		v[i] = fn();
	qsort(v, 5, sizeof(v[0]), cmp);
	return v[2];
}

static char *resident; /* 16 MiB touched: fork copies its page tables */

static double bench_fork(void)
{
	const int n = 50;
	double t0 = now_ns();

	for (int i = 0; i < n; i++) {
		pid_t pid = fork();

		if (pid == 0)
			_exit(0);
		waitpid(pid, NULL, 0);
	}
	return (now_ns() - t0) / n / 1e3;
}

static double bench_mmap(void)
{
	const int n = 2000;
	double t0 = now_ns();

	for (int i = 0; i < n; i++) {
		char *p = mmap(NULL, 16 << 12, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		               -1, 0);

		for (int k = 0; k < 16; k++)
			p[k << 12] = 1;
		munmap(p, 16 << 12);
	}
	return (now_ns() - t0) / n / 1e3;
}

static double bench_fault(void)
{
	const size_t pages = 4096;
	char *p =
	    mmap(NULL, pages << 12, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	double t0;

	madvise(p, pages << 12, MADV_NOHUGEPAGE);
	t0 = now_ns();
	for (size_t i = 0; i < pages; i++)
		p[i << 12] = 1;
	t0 = (now_ns() - t0) / pages;
	munmap(p, pages << 12);
	return t0;
}

static void *nothing(void *arg)
{
	return arg;
}

static double bench_thread(void)
{
	const int n = 500;
	double t0 = now_ns();

	for (int i = 0; i < n; i++) {
		pthread_t t;

		pthread_create(&t, NULL, nothing, NULL);
		pthread_join(t, NULL);
	}
	return (now_ns() - t0) / n / 1e3;
}

int main(void)
{
	resident = mmap(NULL, 16 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	madvise(resident, 16 << 20, MADV_NOHUGEPAGE);
	memset(resident, 1, 16 << 20);
	printf("noview_fork_16mib %.1f us\n", median5(bench_fork));
	printf("noview_mmap_touch16_munmap %.2f us\n", median5(bench_mmap));
	printf("noview_anon_fault %.0f ns\n", median5(bench_fault));
	printf("noview_thread_create_join %.1f us\n", median5(bench_thread));
	return 0;
}
