// SPDX-License-Identifier: GPL-2.0
/*
 * Address-space views (mmview(2), Documentation/mm/mmview.rst): the operations and their
 * errors, one memory in every view, unshared ranges, layout changes made in a view, fork
 * from a view, MMVIEW_SWITCH_BASE, and a refusal. Each test runs in a process of its own
 * (the harness forks), which starts with a single view.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/mmview.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../kselftest_harness.h"

#define PAGES 16

#ifndef __NR_mmview
#define __NR_mmview -1	/* no views on this architecture: every call fails */
#endif

static long mmview(long op, unsigned long arg1, unsigned long arg2)
{
	return syscall(__NR_mmview, op, arg1, arg2);
}

/* Each test's process starts with a single view; on a kernel without views all skip. */
FIXTURE(views) {
};

FIXTURE_SETUP(views)
{
	/* MMVIEW_CURRENT does not fail on a kernel with views. */
	if (mmview(MMVIEW_CURRENT, 0, 0) < 0)
		SKIP(return, "the kernel has no views (CONFIG_MMVIEW)");
}

FIXTURE_TEARDOWN(views)
{
}

static char *map_pages(void)
{
	char *p = mmap(NULL, PAGES * getpagesize(), PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* PAGES pages, the first byte of page i holding i. */
static char *map_numbered(void)
{
	char *p = map_pages();
	int i;

	for (i = 0; p && i < PAGES; i++)
		p[i * getpagesize()] = i;
	return p;
}

/* Create a view and move the calling thread into it: its id, or -1. */
static long enter_new_view(void)
{
	long v = mmview(MMVIEW_CREATE, 0, 0);

	return v > 0 && mmview(MMVIEW_MIGRATE, v, 0) == 0 ? v : -1;
}

TEST_F(views, operations_and_errors)
{
	long v;

	EXPECT_EQ(0, mmview(MMVIEW_CURRENT, 0, 0));
	EXPECT_EQ(-1, mmview(7, 0, 0));
	EXPECT_EQ(EINVAL, errno);
	/* Arguments an operation does not use must be 0. */
	EXPECT_EQ(-1, mmview(MMVIEW_CREATE, 1, 0));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, mmview(MMVIEW_MIGRATE, 0, 1));
	EXPECT_EQ(EINVAL, errno);

	v = mmview(MMVIEW_CREATE, 0, 0);
	ASSERT_GT(v, 0);
	EXPECT_EQ(0, mmview(MMVIEW_CURRENT, 0, 0));	/* the caller stays */
	EXPECT_EQ(0, mmview(MMVIEW_MIGRATE, v, 0));	/* returns the view left */
	EXPECT_EQ(v, mmview(MMVIEW_CURRENT, 0, 0));
	EXPECT_EQ(v, mmview(MMVIEW_MIGRATE, 0, 0));
	EXPECT_EQ(-1, mmview(MMVIEW_DELETE, 0, 0));	/* the base */
	EXPECT_EQ(EPERM, errno);
	EXPECT_EQ(0, mmview(MMVIEW_DELETE, v, 0));
	EXPECT_EQ(-1, mmview(MMVIEW_MIGRATE, v, 0));	/* deleted */
	EXPECT_EQ(EINVAL, errno);
	EXPECT_LT(v, mmview(MMVIEW_CREATE, 0, 0));	/* ids are not reused */
}

TEST_F(views, shared_memory_is_one_memory)
{
	int page = getpagesize(), i;
	char *p = map_numbered();
	long v;

	ASSERT_NE(NULL, p);
	v = enter_new_view();
	ASSERT_GT(v, 0);
	for (i = 0; i < PAGES; i++) {
		EXPECT_EQ(i, p[i * page]);
		p[i * page] = i + 1;
	}
	ASSERT_EQ(v, mmview(MMVIEW_MIGRATE, 0, 0));
	for (i = 0; i < PAGES; i++)
		EXPECT_EQ(i + 1, p[i * page]);
}

TEST_F(views, unshared_memory_diverges)
{
	int page = getpagesize();
	char *p = map_pages();
	long v;

	ASSERT_NE(NULL, p);
	ASSERT_EQ(0, mmview(MMVIEW_UNSHARE, (unsigned long)p, page));
	p[0] = 'b';
	v = mmview(MMVIEW_CREATE, 0, 0);
	ASSERT_GT(v, 0);
	/* With two views, sharing can no longer change. */
	EXPECT_EQ(-1, mmview(MMVIEW_SHARE, (unsigned long)p, page));
	EXPECT_EQ(EPERM, errno);
	ASSERT_EQ(0, mmview(MMVIEW_MIGRATE, v, 0));
	EXPECT_EQ('b', p[0]);
	p[0] = 'v';
	p[page] = 's';				/* the next page is shared */
	ASSERT_EQ(v, mmview(MMVIEW_MIGRATE, 0, 0));
	EXPECT_EQ('b', p[0]);
	EXPECT_EQ('s', p[page]);
}

TEST_F(views, layout_changes_reach_every_view)
{
	int page = getpagesize();
	char *p;
	long v;

	v = enter_new_view();
	ASSERT_GT(v, 0);
	p = map_pages();			/* mapped from the view */
	ASSERT_NE(NULL, p);
	p[0] = 'x';
	ASSERT_EQ(v, mmview(MMVIEW_MIGRATE, 0, 0));
	EXPECT_EQ('x', p[0]);
	ASSERT_EQ(0, munmap(p, PAGES * page));	/* unmapped from the base */
	ASSERT_EQ(0, mmview(MMVIEW_MIGRATE, v, 0));
	/* The range is free in the view too. */
	EXPECT_EQ(p, mmap(p, PAGES * page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS |
			  MAP_FIXED_NOREPLACE, -1, 0));
}

TEST_F(views, fork_from_a_view)
{
	int page = getpagesize(), status;
	char *p = map_pages();
	pid_t pid;
	long v;

	ASSERT_NE(NULL, p);
	p[0] = 'a';
	v = enter_new_view();
	ASSERT_GT(v, 0);
	p[page] = 'b';
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0)	/* one view, a copy of the forking view */
		_exit(p[0] == 'a' && p[page] == 'b' &&
		      mmview(MMVIEW_CURRENT, 0, 0) == 0 ? 0 : 1);
	p[0] = 'c';	/* after the fork: not the child's */
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

TEST_F(views, switch_base)
{
	int page = getpagesize(), i;
	char *p = map_numbered();
	long v;

	ASSERT_NE(NULL, p);
	v = enter_new_view();
	ASSERT_GT(v, 0);
	EXPECT_EQ(v, mmview(MMVIEW_SWITCH_BASE, 0, 0));
	/* The old base is a view like any other now: it can go. */
	EXPECT_EQ(0, mmview(MMVIEW_DELETE, 0, 0));
	for (i = 0; i < PAGES; i++)
		EXPECT_EQ(i, p[i * page]);
	/* Back to one live view: sharing can change again. */
	EXPECT_EQ(0, mmview(MMVIEW_UNSHARE, (unsigned long)p, page));
}

TEST_F(views, hugetlb_is_refused)
{
	void *p = mmap(NULL, 2UL << 20, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);

	if (p == MAP_FAILED)
		SKIP(return, "no huge page to map");
	EXPECT_EQ(-1, mmview(MMVIEW_CREATE, 0, 0));
	EXPECT_EQ(EOPNOTSUPP, errno);
}

TEST_HARNESS_MAIN
