// SPDX-License-Identifier: GPL-2.0-only
/*
 * Address-space views.
 *
 * A process normally has one mm_struct shared by all its threads. With views it has several,
 * kept in sync: the same layout and the same memory in every view, except in ranges marked
 * unshared (VM_MMVIEW_UNSHARED), whose contents and protections diverge copy-on-write per
 * view. Each thread runs in one view and moves itself with MMVIEW_MIGRATE.
 *
 * This file holds the mmview(2) system call. At this stage of the series a process has
 * exactly one view, the base (id 0): the calls that query or mark address ranges are
 * complete, and MMVIEW_CREATE fails with -EOPNOTSUPP until views can be created.
 */

#include <linux/hugetlb.h>
#include <linux/mm.h>
#include <linux/mman.h>
#include <linux/mmview.h>
#include <linux/sched/mm.h>
#include <linux/syscalls.h>

#include "vma.h"

/**
 * mmview_range_check - check that a range may change its view sharing
 * @mm: the address space, with its mmap lock held
 * @start: first address, page aligned
 * @end: end of the range, page aligned, above @start
 *
 * Every page of [@start, @end) must be mapped, and no VMA in the range may be a shared
 * mapping (its contents are one object for all views already), hugetlb (not mirrored), or
 * special (PFN/IO/mixed maps, vdso and vvar: not backed by pages views could copy).
 *
 * Return: 0, -EINVAL on a hole in the range, or -EACCES on a mapping that cannot diverge.
 */
static int mmview_range_check(struct mm_struct *mm, unsigned long start,
			      unsigned long end)
{
	VMA_ITERATOR(vmi, mm, start);
	struct vm_area_struct *vma;
	unsigned long covered = start;

	for_each_vma_range(vmi, vma, end) {
		if (vma->vm_start > covered)
			return -EINVAL;
		if ((vma->vm_flags & (VM_MAYSHARE | VM_SPECIAL)) ||
		    is_vm_hugetlb_page(vma))
			return -EACCES;
		covered = vma->vm_end;
	}
	return covered >= end ? 0 : -EINVAL;
}

/**
 * mmview_set_unshared - mark a range unshared or shared
 * @start: user address of the range, page aligned
 * @len: length in bytes; every page touching [@start, @start + @len) is marked
 * @unshared: true for MMVIEW_UNSHARE, false for MMVIEW_SHARE
 *
 * Sets or clears VM_MMVIEW_UNSHARED on the range, splitting and merging VMAs at its
 * boundaries like mprotect(). The whole range is checked before any VMA changes.
 *
 * Return: 0 or a negative errno (see mmview(2)).
 */
static int mmview_set_unshared(unsigned long start, unsigned long len,
			       bool unshared)
{
	VMA_ITERATOR(vmi, current->mm, 0);
	struct mm_struct *mm = current->mm;
	struct vm_area_struct *vma, *prev;
	unsigned long end, pos;
	int ret;

	start = untagged_addr(start);
	if (offset_in_page(start) || !len || len > TASK_SIZE)
		return -EINVAL;
	len = PAGE_ALIGN(len);
	if (start > TASK_SIZE - len)
		return -EINVAL;
	end = start + len;

	if (mmap_write_lock_killable(mm))
		return -EINTR;

	ret = mmview_range_check(mm, start, end);
	if (ret)
		goto out;

	vma_iter_set(&vmi, start);
	vma = vma_iter_load(&vmi);
	prev = vma_prev(&vmi);
	if (start > vma->vm_start)
		prev = vma;

	pos = start;
	for_each_vma_range(vmi, vma, end) {
		unsigned long seg_end = min(vma->vm_end, end);
		vm_flags_t newflags = vma->vm_flags & ~VM_MMVIEW_UNSHARED;

		if (unshared)
			newflags |= VM_MMVIEW_UNSHARED;
		if (newflags != vma->vm_flags) {
			vma = vma_modify_flags(&vmi, prev, vma, pos, seg_end,
					       newflags);
			if (IS_ERR(vma)) {
				/* Only a failed split gets here: -ENOMEM. */
				ret = PTR_ERR(vma);
				goto out;
			}
			vma_start_write(vma);
			vm_flags_reset(vma, newflags);
		}
		prev = vma;
		pos = vma_iter_end(&vmi);
	}
out:
	mmap_write_unlock(mm);
	return ret;
}

/**
 * mmview_current_id - id of the calling thread's view
 *
 * Return: the id; always MMVIEW_BASE_ID while a process has a single view.
 */
static long mmview_current_id(void)
{
	return MMVIEW_BASE_ID;
}

/**
 * mmview_delete - MMVIEW_DELETE
 * @id: the view to delete
 *
 * Return: -EPERM for the base, -EINVAL for an id that names no view.
 */
static long mmview_delete(long id)
{
	return id == MMVIEW_BASE_ID ? -EPERM : -EINVAL;
}

/**
 * mmview_migrate - MMVIEW_MIGRATE
 * @id: the view to move the calling thread into
 *
 * Migrating into the view one is in does nothing and returns its id.
 *
 * Return: the id of the view the caller left, or -EINVAL for an id that names no view.
 */
static long mmview_migrate(long id)
{
	long cur = mmview_current_id();

	return id == cur ? cur : -EINVAL;
}

/**
 * mmview_switch_base - MMVIEW_SWITCH_BASE
 *
 * Return: the id of the caller's view, which is now the base (it already was).
 */
static long mmview_switch_base(void)
{
	return mmview_current_id();
}

/**
 * mmview_create - MMVIEW_CREATE
 *
 * Return: -EOPNOTSUPP: this stage of the series cannot create views yet.
 */
static long mmview_create(void)
{
	return -EOPNOTSUPP;
}

/**
 * sys_mmview - the mmview(2) system call
 * @op: one of the MMVIEW_* operations of <uapi/linux/mmview.h>
 * @arg1: first argument of @op (a view id or an address)
 * @arg2: second argument of @op (a length)
 *
 * Return: as documented for each operation in mmview(2); -EINVAL for an unknown @op.
 */
SYSCALL_DEFINE3(mmview, long, op, unsigned long, arg1, unsigned long, arg2)
{
	switch (op) {
	case MMVIEW_CREATE:
		return mmview_create();
	case MMVIEW_DELETE:
		return mmview_delete((long)arg1);
	case MMVIEW_CURRENT:
		return mmview_current_id();
	case MMVIEW_MIGRATE:
		return mmview_migrate((long)arg1);
	case MMVIEW_UNSHARE:
		return mmview_set_unshared(arg1, arg2, true);
	case MMVIEW_SHARE:
		return mmview_set_unshared(arg1, arg2, false);
	case MMVIEW_SWITCH_BASE:
		return mmview_switch_base();
	default:
		return -EINVAL;
	}
}
