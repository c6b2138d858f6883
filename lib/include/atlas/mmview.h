/* SPDX-License-Identifier: MIT */
/*
 * atlas/mmview.h - user-space interface to address-space views (syscall mmview).
 *
 * One header for everything in user space that talks to the kernel feature: the in-guest
 * kernel tests and libatlas both include it. The ABI is that of the original ATLAS kernel's
 * newest release (docs/kernel.md, "Status"; the man page docs/mmview.2): one multiplexed syscall,
 * number 1000 on x86-64, `long mmview(long op, ...)`.
 *
 * Every wrapper follows the libc convention of syscall(2): it returns the kernel's
 * non-negative result, or -1 with errno set. Arguments an operation does not use are passed as
 * 0: the project's kernel refuses anything else with EINVAL (syscall(2) with fewer arguments
 * would pass whatever the registers hold). On a kernel without views every call fails with
 * errno ENOSYS; probe with mmview_current() once.
 *
 * Valid C (C99 and later) and C++.
 */
#ifndef ATLAS_MMVIEW_H
#define ATLAS_MMVIEW_H

#include <stddef.h>
#include <sys/syscall.h>
#include <unistd.h>

#if !defined(__x86_64__)
#error "atlas/mmview.h: address-space views are only defined for x86-64 so far"
#endif

/* The syscall number. A kernel with the series also defines it in <asm/unistd_64.h>. */
#ifndef __NR_mmview
#define __NR_mmview 1000
#endif

/*
 * Operations. The kernel's uapi header <linux/mmview.h> defines the same macros with the same
 * values; identical redefinitions are legal C, and a mismatch fails to compile, which a test
 * relies on to keep the two in step.
 */
#define MMVIEW_CREATE 0      /* () -> id (> 0) of a new view, a copy of the caller's view */
#define MMVIEW_DELETE 1      /* (id) -> 0; freed when its last thread leaves */
#define MMVIEW_CURRENT 2     /* () -> id of the caller's view */
#define MMVIEW_MIGRATE 3     /* (id) -> id of the caller's previous view */
#define MMVIEW_UNSHARE 4     /* (addr, len) -> 0; range diverges copy-on-write per view */
#define MMVIEW_SHARE 5       /* (addr, len) -> 0; range is shared again */
#define MMVIEW_SWITCH_BASE 6 /* () -> id of the caller's view, now the base */

/* The base view's id until the first MMVIEW_SWITCH_BASE. */
#define MMVIEW_BASE_ID 0

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Create a view that is a copy of the caller's current view; the caller stays where it is.
 * Errors: ENOMEM; ENOSPC (live-view limit); EOPNOTSUPP (the process uses something views
 * cannot keep in sync).
 */
static inline long mmview_create(void)
{
	return syscall(__NR_mmview, (long)MMVIEW_CREATE, 0L, 0L);
}

/*
 * Delete view @id; it is freed when its last thread leaves.
 * Errors: EPERM (@id is the base); EINVAL (no such view, or already deleted).
 */
static inline long mmview_delete(long id)
{
	return syscall(__NR_mmview, (long)MMVIEW_DELETE, id, 0L);
}

/* The id of the caller's view. Fails only with ENOSYS (kernel without views). */
static inline long mmview_current(void)
{
	return syscall(__NR_mmview, (long)MMVIEW_CURRENT, 0L, 0L);
}

/*
 * Move the calling thread into view @id; returns the id of the view it left. Migrating to the
 * view one is in does nothing and returns its id. Errors: EINVAL (no such view, or deleted).
 */
static inline long mmview_migrate(long id)
{
	return syscall(__NR_mmview, (long)MMVIEW_MIGRATE, id, 0L);
}

/*
 * Make every page touching [@addr, @addr + @len) unshared: it diverges copy-on-write per view.
 * Only while the process has a single view. Errors: EPERM (more than one view); EINVAL
 * (unaligned @addr, @len 0, range not fully mapped or outside user space); EACCES (range holds
 * a MAP_SHARED, hugetlb or special mapping).
 */
static inline long mmview_unshare(void *addr, size_t len)
{
	return syscall(__NR_mmview, (long)MMVIEW_UNSHARE, addr, len);
}

/* Make [@addr, @addr + @len) shared again. Errors as mmview_unshare(). */
static inline long mmview_share(void *addr, size_t len)
{
	return syscall(__NR_mmview, (long)MMVIEW_SHARE, addr, len);
}

/*
 * Make the caller's view the base (the owner of shared private memory); returns its id.
 * Errors: ENOMEM; EINVAL (the caller's view is deleted).
 */
static inline long mmview_switch_base(void)
{
	return syscall(__NR_mmview, (long)MMVIEW_SWITCH_BASE, 0L, 0L);
}

#ifdef __cplusplus
}
#endif

#endif /* ATLAS_MMVIEW_H */
