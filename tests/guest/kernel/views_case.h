/* SPDX-License-Identifier: MIT */
/*
 * Helpers of the in-guest views tests: one child process per case (a TAP check each), failed
 * expectations as TAP diagnostics, creation of several views, and what the cases inspect (PFNs,
 * files).
 */
#ifndef ATLAS_TESTS_VIEWS_CASE_H
#define ATLAS_TESTS_VIEWS_CASE_H

#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atlas/mmview.h>

#include "../tap.h"

/* The page size, set by main(). */
static long page;

static inline const char *err_name(long ret)
{
	static char buf[32];

	if (ret >= 0) {
		snprintf(buf, sizeof(buf), "%ld", ret);
		return buf;
	}
	return strerrorname_np(errno) ? strerrorname_np(errno) : "?";
}

static inline bool fails_with(long ret, int err)
{
	return ret == -1 && errno == err;
}

/* In a child: report a failed expectation (as a TAP diagnostic) and remember it. */
static int child_failures;
#define EXPECT(cond, ...)                                                                          \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			child_failures++;                                                          \
			printf("#   %s:%d: ", __func__, __LINE__);                                 \
			printf(__VA_ARGS__);                                                       \
			printf("\n");                                                              \
			fflush(stdout);                                                            \
		}                                                                                  \
	} while (0)

/* When set (the program's first argument), only cases whose name contains it run. */
static const char *case_filter;

/* Runs @fn in a child process; one TAP check named @name passes if it exits 0. */
static inline void run_case(const char *name, void (*fn)(void))
{
	pid_t pid;
	int status = 0;

	if (case_filter && !strstr(name, case_filter)) {
		tap_check(1, "%s # SKIP not selected", name);
		return;
	}
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		child_failures = 0;
		fn();
		fflush(stdout);
		_exit(child_failures ? 1 : 0);
	}
	waitpid(pid, &status, 0);
	if (WIFSIGNALED(status))
		printf("#   the case's process was killed by signal %d (%s)\n", WTERMSIG(status),
		       strsignal(WTERMSIG(status)));
	tap_check(pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s", name);
}

/*
 * Creates views ids[1..n-1] (ids[0] is the base, 0) from the calling thread's view, which it
 * does not leave; a failure is a failed expectation of the calling case.
 */
static inline bool create_views(long *ids, int n)
{
	int i;

	ids[0] = 0;
	for (i = 1; i < n; i++) {
		ids[i] = mmview_create();
		EXPECT(ids[i] > 0, "CREATE of view %d of %d (got %s)", i, n - 1, err_name(ids[i]));
		if (ids[i] < 0)
			return false;
	}
	return true;
}

static inline char *map_anon(size_t pages)
{
	void *p =
	    mmap(NULL, pages * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* The PFN of @addr as the calling thread's view maps it; 0 if not present. */
static inline uint64_t pfn_of(const void *addr)
{
	uint64_t entry = 0;
	int fd = open("/proc/thread-self/pagemap", O_RDONLY);

	if (fd < 0)
		return 0;
	if (pread(fd, &entry, sizeof(entry), (uintptr_t)addr / page * sizeof(entry)) !=
	    sizeof(entry))
		entry = 0;
	close(fd);
	return (entry & (1ULL << 63)) ? entry & ((1ULL << 55) - 1) : 0;
}

/* Reads all of @path into @buf (NUL-terminated) without allocating; -1 if it cannot be read. */
static inline ssize_t read_whole(const char *path, char *buf, size_t size)
{
	ssize_t n, total = 0;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return -1;
	while ((n = read(fd, buf + total, size - 1 - total)) > 0)
		total += n;
	close(fd);
	buf[total] = '\0';
	return total;
}

/*
 * The rest of the line of field @name ("Rss:", "VmFlags:") in /proc/thread-self/smaps for the
 * VMA of the calling thread's view that contains @addr; NULL if there is none. Valid until the
 * next call.
 */
static inline const char *smaps_field(const void *addr, const char *name)
{
	static char raw[1 << 17];
	unsigned long a = (unsigned long)addr;
	char *line, *save;
	bool inside = false;

	if (read_whole("/proc/thread-self/smaps", raw, sizeof(raw)) < 0)
		return NULL;
	for (line = strtok_r(raw, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		unsigned long start, end;

		/* A VMA's first line starts with its range; field lines with a capital. */
		if (isxdigit((unsigned char)line[0]) && !isupper((unsigned char)line[0]) &&
		    sscanf(line, "%lx-%lx ", &start, &end) == 2) {
			inside = start <= a && a < end;
			continue;
		}
		if (inside && !strncmp(line, name, strlen(name)))
			return line + strlen(name);
	}
	return NULL;
}

/* How many VMAs of the calling thread's view lie in [@p, @p + @len); -1 if maps cannot be read. */
static inline int vmas_in(const char *p, size_t len)
{
	char line[512];
	int n = 0;
	FILE *maps = fopen("/proc/thread-self/maps", "r");

	if (!maps)
		return -1;
	while (fgets(line, sizeof(line), maps)) {
		unsigned long start, end;

		if (sscanf(line, "%lx-%lx", &start, &end) == 2 && start >= (uintptr_t)p &&
		    end <= (uintptr_t)p + len)
			n++;
	}
	fclose(maps);
	return n;
}

static inline int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, text, strlen(text));
	close(fd);
	return n == (ssize_t)strlen(text) ? 0 : -1;
}

#endif /* ATLAS_TESTS_VIEWS_CASE_H */
