/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Address-space views: kernel-internal interface (mm/mmview.c).
 */
#ifndef _LINUX_MMVIEW_H
#define _LINUX_MMVIEW_H

#include <uapi/linux/mmview.h>

/* The id of a process's original address space, until MMVIEW_SWITCH_BASE. */
#define MMVIEW_BASE_ID	0

#endif /* _LINUX_MMVIEW_H */
