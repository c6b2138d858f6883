// SPDX-License-Identifier: MIT
/*
 * mmview(2) ABI on the views kernel: every operation's result and errno for a process with a
 * single view, and MMVIEW_UNSHARE/SHARE's effect on VMAs as /proc/self/smaps shows it
 * (VmFlags "vu" = VM_MMVIEW_UNSHARED). See docs/mmview.2 and docs/kernel.md, "Refusals".
 */
#define _GNU_SOURCE
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

static long page;

/* Result of a call as "ok" or the errno's name, for readable TAP lines. */
static const char *outcome(long ret)
{
	static char buf[32];

	if (ret >= 0) {
		snprintf(buf, sizeof(buf), "%ld", ret);
		return buf;
	}
	return strerrorname_np(errno) ? strerrorname_np(errno) : "?";
}

static bool fails_with(long ret, int err)
{
	return ret == -1 && errno == err;
}

struct vma_info {
	unsigned long start, end;
	bool unshared; /* VmFlags has "vu" */
	bool found;
};

/* The VMA containing @addr in /proc/@pid/smaps ("self" for @pid 0). */
static struct vma_info vma_at(const void *addr, pid_t pid)
{
	struct vma_info info = {0};
	char path[64], line[512];
	unsigned long a = (unsigned long)addr, s, e;
	bool in_target = false;
	FILE *f;

	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/smaps", pid);
	else
		snprintf(path, sizeof(path), "/proc/self/smaps");
	f = fopen(path, "r");
	if (!f)
		return info;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx ", &s, &e) == 2 &&
		    strchr(line, '-') < strchr(line, ' ')) {
			in_target = s <= a && a < e;
			if (in_target) {
				info.start = s;
				info.end = e;
				info.found = true;
			}
		} else if (in_target && !strncmp(line, "VmFlags:", 8)) {
			info.unshared = strstr(line, " vu") != NULL;
		}
	}
	fclose(f);
	return info;
}

static char *map_pages(int n, int prot, int flags)
{
	char *p = mmap(NULL, n * page, prot, flags | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static void test_ids_and_errnos(void)
{
	long r;

	r = mmview_current();
	tap_check(r == 0, "CURRENT of a process without views is the base, 0 (got %s)", outcome(r));
	r = syscall(__NR_mmview, 7L);
	tap_check(fails_with(r, EINVAL), "unknown op 7 fails EINVAL (got %s)", outcome(r));
	r = syscall(__NR_mmview, -1L);
	tap_check(fails_with(r, EINVAL), "unknown op -1 fails EINVAL (got %s)", outcome(r));
	r = mmview_delete(0);
	tap_check(fails_with(r, EPERM), "DELETE of the base fails EPERM (got %s)", outcome(r));
	r = mmview_delete(1);
	tap_check(fails_with(r, EINVAL),
	          "DELETE of a view that does not exist fails EINVAL (got %s)", outcome(r));
	r = mmview_delete(-5);
	tap_check(fails_with(r, EINVAL), "DELETE of id -5 fails EINVAL (got %s)", outcome(r));
	r = mmview_migrate(0);
	tap_check(r == 0, "MIGRATE into the view one is in returns its id, 0 (got %s)", outcome(r));
	r = mmview_migrate(1);
	tap_check(fails_with(r, EINVAL),
	          "MIGRATE to a view that does not exist fails EINVAL (got %s)", outcome(r));
	r = mmview_switch_base();
	tap_check(r == 0, "SWITCH_BASE from the base returns 0 (got %s)", outcome(r));
	r = mmview_current();
	tap_check(r == 0, "the base is still 0 afterwards (got %s)", outcome(r));
	/* CREATE and everything with several views: mmview_views.c. */
}

/* Arguments an operation does not use must be 0 (mmview(2)): nothing was done when refused. */
static void test_unused_arguments(void)
{
	static const struct {
		long op, arg1, arg2;
		const char *what;
	} calls[] = {
	    {MMVIEW_CREATE, 1, 0, "CREATE with arg1 1"},
	    {MMVIEW_CREATE, 0, 4096, "CREATE with arg2 4096"},
	    {MMVIEW_CURRENT, 0, 1, "CURRENT with arg2 1"},
	    {MMVIEW_SWITCH_BASE, -1, 0, "SWITCH_BASE with arg1 -1"},
	    {MMVIEW_DELETE, 0, 1, "DELETE 0 with arg2 1 (EPERM without it)"},
	    {MMVIEW_MIGRATE, 0, 1, "MIGRATE 0 with arg2 1"},
	};
	long r;

	for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]); i++) {
		r = syscall(__NR_mmview, calls[i].op, calls[i].arg1, calls[i].arg2);
		tap_check(fails_with(r, EINVAL), "%s fails EINVAL (got %s)", calls[i].what,
		          outcome(r));
	}
	r = mmview_current();
	tap_check(r == 0, "no view was created: CURRENT is still the base, 0 (got %s)", outcome(r));
	r = mmview_migrate(1);
	tap_check(fails_with(r, EINVAL), "and view 1 does not exist (MIGRATE: %s)", outcome(r));
}

static void test_unshare_splits_and_share_merges(void)
{
	char *p = map_pages(4, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	struct vma_info before, mid, left, right, after;
	long r;

	if (!p) {
		tap_check(false, "mmap of 4 pages");
		return;
	}
	before = vma_at(p, 0);
	r = mmview_unshare(p + page, page);
	mid = vma_at(p + page, 0);
	left = vma_at(p, 0);
	right = vma_at(p + 2 * page, 0);
	tap_check(
	    r == 0 && mid.unshared && mid.start == (unsigned long)(p + page) &&
	        mid.end == (unsigned long)(p + 2 * page),
	    "UNSHARE of the 2nd of 4 pages marks exactly that page (got %s, vma %lx-%lx vu=%d)",
	    outcome(r), mid.start, mid.end, mid.unshared);
	tap_check(!left.unshared && !right.unshared && left.end == mid.start &&
	              right.start == mid.end,
	          "its neighbours stay shared and are split off");

	r = mmview_share(p + page, page);
	after = vma_at(p, 0);
	tap_check(r == 0 && !after.unshared && after.start == before.start &&
	              after.end == before.end,
	          "SHARE merges the range back into one shared VMA (got %s, vma %lx-%lx)",
	          outcome(r), after.start, after.end);

	r = mmview_unshare(p + 2 * page, 1);
	mid = vma_at(p + 2 * page, 0);
	tap_check(r == 0 && mid.unshared && mid.end - mid.start == (unsigned long)page,
	          "UNSHARE of 1 byte marks the whole page touching it");
	r = mmview_unshare(p, 4 * page);
	mid = vma_at(p, 0);
	tap_check(r == 0 && mid.unshared && mid.end - mid.start == 4 * (unsigned long)page,
	          "UNSHARE over a partly unshared range marks all of it, one VMA");
	r = mmview_unshare(p, 4 * page);
	tap_check(r == 0, "UNSHARE of an unshared range again succeeds");
	r = mmview_share(p, 4 * page);
	tap_check(r == 0 && !vma_at(p, 0).unshared, "SHARE of all 4 pages clears the flag");
	munmap(p, 4 * page);
}

static void test_unshare_errors(void)
{
	char *p = map_pages(3, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	char *shared = map_pages(1, PROT_READ | PROT_WRITE, MAP_SHARED);
	long r;

	if (!p || !shared) {
		tap_check(false, "mmap of the test ranges");
		return;
	}
	r = mmview_unshare(p + 1, page);
	tap_check(fails_with(r, EINVAL), "UNSHARE at an unaligned address fails EINVAL (got %s)",
	          outcome(r));
	r = mmview_unshare(p, 0);
	tap_check(fails_with(r, EINVAL), "UNSHARE of length 0 fails EINVAL (got %s)", outcome(r));
	r = mmview_unshare(p, (size_t)-page);
	tap_check(fails_with(r, EINVAL), "UNSHARE whose end overflows fails EINVAL (got %s)",
	          outcome(r));
	r = mmview_unshare((void *)(0x800000000000UL), page);
	tap_check(fails_with(r, EINVAL), "UNSHARE beyond user space fails EINVAL (got %s)",
	          outcome(r));

	munmap(p + page, page);
	r = mmview_unshare(p, 3 * page);
	tap_check(fails_with(r, EINVAL) && !vma_at(p, 0).unshared,
	          "UNSHARE over a hole fails EINVAL and changes nothing before it (got %s)",
	          outcome(r));
	r = mmview_share(p + page, page);
	tap_check(fails_with(r, EINVAL), "SHARE of an unmapped page fails EINVAL (got %s)",
	          outcome(r));

	r = mmview_unshare(shared, page);
	tap_check(fails_with(r, EACCES), "UNSHARE of MAP_SHARED memory fails EACCES (got %s)",
	          outcome(r));
	r = mmview_share(shared, page);
	tap_check(fails_with(r, EACCES), "SHARE of MAP_SHARED memory fails EACCES (got %s)",
	          outcome(r));
	munmap(p, 3 * page);
	munmap(shared, page);
}

static void test_unshare_refuses_special_and_hugetlb(void)
{
	char line[256], *vdso = NULL;
	FILE *f = fopen("/proc/self/maps", "r");
	void *huge;
	long r;

	while (f && fgets(line, sizeof(line), f))
		if (strstr(line, "[vdso]"))
			vdso = (char *)strtoul(line, NULL, 16);
	if (f)
		fclose(f);
	r = vdso ? mmview_unshare(vdso, page) : 0;
	tap_check(vdso && fails_with(r, EACCES), "UNSHARE of the vdso fails EACCES (got %s)",
	          outcome(r));

	f = fopen("/proc/sys/vm/nr_hugepages", "w");
	if (f) {
		fputs("2", f);
		fclose(f);
	}
	huge = mmap(NULL, 2UL << 20, PROT_READ | PROT_WRITE,
	            MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
	r = huge != MAP_FAILED ? mmview_unshare(huge, 2UL << 20) : 0;
	tap_check(huge != MAP_FAILED && fails_with(r, EACCES),
	          "UNSHARE of a hugetlb mapping fails EACCES (mmap %s, got %s)",
	          huge == MAP_FAILED ? strerror(errno) : "ok", outcome(r));
	if (huge != MAP_FAILED)
		munmap(huge, 2UL << 20);
}

static int patched_function(int x)
{
	return x * 3 + 1;
}

static void test_unshare_own_text_and_files(void)
{
	unsigned long text = (unsigned long)&patched_function & ~(unsigned long)(page - 1);
	int (*volatile fn)(int) = patched_function;
	char path[] = "/tmp/mmview_abi.XXXXXX";
	int fd = mkstemp(path);
	char *priv, *shro;
	long r;

	r = mmview_unshare((void *)text, page);
	tap_check(r == 0 && vma_at((void *)text, 0).unshared && fn(4) == 13,
	          "UNSHARE of the program's own text works and the code still runs (got %s)",
	          outcome(r));

	if (fd < 0 || ftruncate(fd, page)) {
		tap_check(false, "temporary file");
		return;
	}
	priv = mmap(NULL, page, PROT_READ, MAP_PRIVATE, fd, 0);
	shro = mmap(NULL, page, PROT_READ, MAP_SHARED, fd, 0);
	r = mmview_unshare(priv, page);
	tap_check(priv != MAP_FAILED && r == 0,
	          "UNSHARE of a MAP_PRIVATE file mapping works (got %s)", outcome(r));
	r = mmview_unshare(shro, page);
	tap_check(shro != MAP_FAILED && fails_with(r, EACCES),
	          "UNSHARE of a read-only MAP_SHARED file mapping fails EACCES (got %s)",
	          outcome(r));
	close(fd);
	unlink(path);
}

static void test_fork_inherits_flag(void)
{
	char *p = map_pages(1, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	int status = -1;
	pid_t pid;

	if (!p || mmview_unshare(p, page)) {
		tap_check(false, "unshare a page before fork");
		return;
	}
	pid = fork();
	if (pid == 0)
		_exit(vma_at(p, 0).unshared && mmview_current() == 0 ? 0 : 1);
	waitpid(pid, &status, 0);
	tap_check(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	          "a forked child is in its base view and keeps the unshared range");
	munmap(p, page);
}

int main(void)
{
	page = sysconf(_SC_PAGESIZE);
	tap_plan(39);
	test_ids_and_errnos();
	test_unused_arguments();
	test_unshare_splits_and_share_merges();
	test_unshare_errors();
	test_unshare_refuses_special_and_hugetlb();
	test_unshare_own_text_and_files();
	test_fork_inherits_flag();
	return tap_finish();
}
