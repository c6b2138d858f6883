/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Address-space views: kernel-internal interface (mm/mmview.c).
 *
 * The hooks below are the only places where the rest of the kernel meets
 * views; each is a no-op for a process that never created one.
 */
#ifndef _LINUX_MMVIEW_H
#define _LINUX_MMVIEW_H

#include <linux/mm.h>
#include <uapi/linux/mmview.h>

/* The id of a process's original address space, until MMVIEW_SWITCH_BASE. */
#define MMVIEW_BASE_ID	0

/* mm->mmview_flags */
#define MMVIEW_MM_MIRRORS	0	/* shared private ranges mirror the base */
#define MMVIEW_MM_LINKED	1	/* on the group's list of views */
#define MMVIEW_MM_KEPT_TABLES	2	/* munmap() left page tables for exit_mmap() */

/* mmview_mprotect_scope() */
#define MMVIEW_ALL_VIEWS	0	/* a shared range: change every view */
#define MMVIEW_OWN_VIEW		1	/* an unshared range: change the caller's view */

struct mmu_gather;
struct mmu_notifier;

/* A layout change, replayed by mmview_replay() in a view that is current->mm. */
typedef int (*mmview_replay_fn)(void *arg);

/**
 * mmview_replay_result - what a replay callback returns
 * @got: the result of the change in the view it was replayed in
 * @expect: its result in the caller's view
 *
 * A replay gives every view the caller's result, failures included: a change that failed
 * part way in the caller's view (over a hole, say) must fail the same way in every view, or
 * the layouts would differ.
 *
 * Return: 0 when @got is @expect; otherwise @got, or -EINVAL if only the replay succeeded.
 */
static inline int mmview_replay_result(int got, int expect)
{
	if (got == expect)
		return 0;
	return got ?: -EINVAL;
}

/* Advice on [start, end) of one mm, as madvise() gives it (mmview_advise_owners()). */
typedef int (*mmview_advise_fn)(struct mm_struct *mm, unsigned long start,
				unsigned long end, int behavior);

/* Reaps one mm of a dying process, as the OOM reaper does (mmview_oom_reap()). */
typedef bool (*mmview_reap_fn)(struct mm_struct *mm);

#ifdef CONFIG_MMVIEW

/**
 * mmview_mm_init - reset the view fields of a new mm
 * @mm: the mm being initialised; dup_mm() copied its parent's fields
 */
static inline void mmview_mm_init(struct mm_struct *mm)
{
	mm->mmview_lock = NULL;
	mm->mmview_group = NULL;
	mm->mmview_id = MMVIEW_BASE_ID;
	mm->mmview_flags = 0;
	INIT_LIST_HEAD(&mm->mmview_node);
}

/**
 * mmview_vma_mirrors - whether a VMA's present PTEs are mirrors of the base
 * @vma: a VMA of any mm
 *
 * True for the shared private ranges (anonymous, private file, stack, heap)
 * of a view that is not the base: their pages belong to the base, and the
 * view's PTEs are non-owning copies (pte_special, no rmap, no reference).
 *
 * VM_IO is not tested: a process with views maps no I/O memory (CREATE and
 * mmap() refuse it), and mlock_vma_pages_range() sets VM_IO on a VMA for a
 * moment, while its mirrors must still be known as such.
 *
 * Return: true if @vma's present PTEs are mirrors.
 */
static inline bool mmview_vma_mirrors(const struct vm_area_struct *vma)
{
	return unlikely(test_bit(MMVIEW_MM_MIRRORS, &vma->vm_mm->mmview_flags)) &&
	       !(vma->vm_flags & (VM_MMVIEW_UNSHARED | VM_MAYSHARE |
				  VM_DONTEXPAND | VM_PFNMAP | VM_MIXEDMAP |
				  VM_HUGETLB));
}

vm_fault_t mmview_fault(struct vm_area_struct *vma, unsigned long address,
			unsigned int flags);
struct vm_area_struct *mmview_gup_vma(struct vm_area_struct *vma,
				      unsigned long address,
				      unsigned int gup_flags);
struct mm_struct *mmview_futex_mm(struct mm_struct *mm);
int mmview_copy_mm(unsigned long clone_flags, struct mm_struct *oldmm);
int mmview_fork_prepare(struct mm_struct *view);
struct vm_area_struct *mmview_fork_source(struct vm_area_struct *vma);
void mmview_fork_flush(struct mm_struct *view);
void mmview_sync_pkeys(struct mm_struct *mm);
bool __mmview_same_process(struct mm_struct *mm, struct mm_struct *other);
void mmview_membarrier_sync(struct mm_struct *mm);
bool mmview_next_owner(struct mm_struct *mm);
void mmview_set_mm_flags(struct mm_struct *mm, unsigned long mask,
			 unsigned long bits);
struct page *mmview_mirror_page(struct vm_area_struct *vma, pte_t pte);
void mmview_populate_mirrors(struct vm_area_struct *vma, unsigned long start,
			     unsigned long end);
void mmview_populate_range(struct mm_struct *mm, unsigned long start,
			   unsigned long end);
bool mmview_oom_reap(struct mm_struct *mm, mmview_reap_fn reap);
bool mmview_refuses_notifier(struct mm_struct *mm,
			     struct mmu_notifier *subscription);

/**
 * mmview_refuses_set_mm - whether prctl(PR_SET_MM) must fail with -EBUSY
 * @mm: the caller's mm; every option checks again under its mmap lock, which CREATE
 *	takes for writing
 *
 * The fields it sets (code, data, brk, stack, arguments, environment, auxv, exe_file) are
 * the process's: each view holds a copy made at CREATE, and changing one copy would make
 * the views disagree.
 *
 * Return: true while @mm has views.
 */
static inline bool mmview_refuses_set_mm(struct mm_struct *mm)
{
	return mm_has_views(mm);
}

/**
 * mmview_same_process - whether @other is @mm or another view of @mm's group
 * @mm: the caller's mm
 * @other: another CPU's current mm, compared and never dereferenced
 *
 * Return: true if a thread running on @other belongs to the caller's process.
 */
static inline bool mmview_same_process(struct mm_struct *mm,
				       struct mm_struct *other)
{
	if (other == mm)
		return true;
	return other && mm_has_views(mm) && __mmview_same_process(mm, other);
}

void mmview_task_exit(struct mm_struct *mm);
void mmview_mm_exit(struct mm_struct *mm);
void mmview_mm_free(struct mm_struct *mm);
struct mm_struct *mm_alloc_view(struct mm_struct *oldmm);

bool __mmview_replays(struct mm_struct *mm);
int mmview_replay(mmview_replay_fn fn, void *arg);
int mmview_replay_check(struct mm_struct *mm);
unsigned long mmview_replay_mmap(struct file *file, unsigned long addr,
				 unsigned long len, vm_flags_t vm_flags,
				 unsigned long pgoff);
int mmview_munmap(struct vma_iterator *vmi, struct mm_struct *mm,
		  unsigned long start, unsigned long end, struct list_head *uf,
		  bool unlock);
int mmview_replay_stack(struct vm_area_struct *vma, unsigned long address);
int mmview_mprotect_scope(struct mm_struct *mm, unsigned long start,
			  unsigned long end);
int mmview_advise_owners(struct mm_struct *mm, unsigned long start,
			 unsigned long end, int behavior, mmview_advise_fn fn);
int mmview_mremap_prepare(struct mm_struct *mm, unsigned long addr,
			  unsigned long old_len, unsigned long vma_len);
bool mmview_replay_defer(struct mm_struct *mm);
void mmview_replay_resume(struct mm_struct *mm);
bool __mmview_keeps_page_tables(struct mm_struct *mm);
void mmview_free_kept_tables(struct mmu_gather *tlb, struct mm_struct *mm);

/**
 * mmview_replays - whether a layout change of @mm must be replayed on its other views
 * @mm: the caller's view (current->mm), with the mmap lock held
 *
 * Return: false for a process without views, with a single live view, and inside a
 * replay; true otherwise.
 */
static inline bool mmview_replays(struct mm_struct *mm)
{
	return mm_has_views(mm) && __mmview_replays(mm);
}

/**
 * mmview_keeps_page_tables - whether free_pgtables() must leave @mm's page tables in place
 * @mm: any mm
 *
 * Return: true for a view that mirrors the base or has kept its tables before.
 */
static inline bool mmview_keeps_page_tables(struct mm_struct *mm)
{
	return mm_has_views(mm) && __mmview_keeps_page_tables(mm);
}

#else /* !CONFIG_MMVIEW */

static inline void mmview_mm_init(struct mm_struct *mm) {}

static inline bool mmview_vma_mirrors(const struct vm_area_struct *vma)
{
	return false;
}

static inline vm_fault_t mmview_fault(struct vm_area_struct *vma,
				      unsigned long address, unsigned int flags)
{
	return VM_FAULT_SIGBUS;
}

static inline struct vm_area_struct *
mmview_gup_vma(struct vm_area_struct *vma, unsigned long address,
	       unsigned int gup_flags)
{
	return vma;
}

static inline struct mm_struct *mmview_futex_mm(struct mm_struct *mm)
{
	return mm;
}

static inline int mmview_fork_prepare(struct mm_struct *view)
{
	return 0;
}

static inline struct vm_area_struct *
mmview_fork_source(struct vm_area_struct *vma)
{
	return vma;
}

static inline void mmview_fork_flush(struct mm_struct *view) {}

static inline void mmview_sync_pkeys(struct mm_struct *mm) {}

static inline bool mmview_same_process(struct mm_struct *mm,
				       struct mm_struct *other)
{
	return other == mm;
}

static inline void mmview_membarrier_sync(struct mm_struct *mm) {}

static inline bool mmview_next_owner(struct mm_struct *mm)
{
	return false;
}

static inline void mmview_set_mm_flags(struct mm_struct *mm,
				       unsigned long mask, unsigned long bits)
{
	set_mask_bits(&mm->flags, mask, bits);
}

static inline struct page *mmview_mirror_page(struct vm_area_struct *vma,
					      pte_t pte)
{
	return NULL;
}

static inline bool mmview_refuses_set_mm(struct mm_struct *mm)
{
	return false;
}

static inline void mmview_populate_mirrors(struct vm_area_struct *vma,
					   unsigned long start,
					   unsigned long end) {}

static inline bool mmview_oom_reap(struct mm_struct *mm, mmview_reap_fn reap)
{
	return reap(mm);
}

static inline bool mmview_refuses_notifier(struct mm_struct *mm,
					   struct mmu_notifier *subscription)
{
	return false;
}

static inline void mmview_populate_range(struct mm_struct *mm,
					 unsigned long start,
					 unsigned long end) {}

static inline int mmview_copy_mm(unsigned long clone_flags,
				 struct mm_struct *oldmm)
{
	return 0;
}

static inline void mmview_task_exit(struct mm_struct *mm) {}

static inline void mmview_mm_exit(struct mm_struct *mm) {}

static inline void mmview_mm_free(struct mm_struct *mm) {}

static inline bool mmview_replays(struct mm_struct *mm)
{
	return false;
}

static inline unsigned long mmview_replay_mmap(struct file *file,
					       unsigned long addr,
					       unsigned long len,
					       vm_flags_t vm_flags,
					       unsigned long pgoff)
{
	return addr;
}

static inline int mmview_munmap(struct vma_iterator *vmi,
				struct mm_struct *mm, unsigned long start,
				unsigned long end, struct list_head *uf,
				bool unlock)
{
	return -EINVAL;
}

static inline int mmview_replay_stack(struct vm_area_struct *vma,
				      unsigned long address)
{
	return 0;
}

static inline int mmview_replay(mmview_replay_fn fn, void *arg)
{
	return 0;
}

static inline int mmview_replay_check(struct mm_struct *mm)
{
	return 0;
}

static inline int mmview_mprotect_scope(struct mm_struct *mm,
					unsigned long start, unsigned long end)
{
	return MMVIEW_ALL_VIEWS;
}

static inline int mmview_advise_owners(struct mm_struct *mm,
				       unsigned long start, unsigned long end,
				       int behavior, mmview_advise_fn fn)
{
	return fn(mm, start, end, behavior);
}

static inline int mmview_mremap_prepare(struct mm_struct *mm,
					unsigned long addr,
					unsigned long old_len,
					unsigned long vma_len)
{
	return 0;
}

static inline bool mmview_replay_defer(struct mm_struct *mm)
{
	return false;
}

static inline void mmview_replay_resume(struct mm_struct *mm) {}

static inline bool mmview_keeps_page_tables(struct mm_struct *mm)
{
	return false;
}

static inline void mmview_free_kept_tables(struct mmu_gather *tlb,
					   struct mm_struct *mm) {}

#endif /* CONFIG_MMVIEW */

#endif /* _LINUX_MMVIEW_H */
