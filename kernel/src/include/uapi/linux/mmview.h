/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * Address-space views: operations of the mmview(2) system call.
 *
 * long mmview(long op, ...);
 *
 * A process may have several views of its address space: mm_structs with the same layout
 * and the same memory, except in ranges designated unshared, which diverge copy-on-write per
 * view. Each thread runs in one view and moves itself between views. See mmview(2).
 */
#ifndef _UAPI_LINUX_MMVIEW_H
#define _UAPI_LINUX_MMVIEW_H

#define MMVIEW_CREATE		0	/* ()          -> id of a new view, copy of the caller's */
#define MMVIEW_DELETE		1	/* (id)        -> 0; freed when its last thread leaves */
#define MMVIEW_CURRENT		2	/* ()          -> id of the caller's view */
#define MMVIEW_MIGRATE		3	/* (id)        -> id of the view the caller left */
#define MMVIEW_UNSHARE		4	/* (addr, len) -> 0; the range diverges per view */
#define MMVIEW_SHARE		5	/* (addr, len) -> 0; the range is shared again */
#define MMVIEW_SWITCH_BASE	6	/* ()          -> id of the caller's view, now the base */

#endif /* _UAPI_LINUX_MMVIEW_H */
