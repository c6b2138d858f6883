// SPDX-License-Identifier: GPL-2.0-only
/*
 * Address-space views.
 *
 * A process normally has one mm_struct shared by all its threads. With views it has several,
 * kept in sync: the same layout and the same memory in every view, except in ranges marked
 * unshared (VM_MMVIEW_UNSHARED), whose contents and protections diverge copy-on-write per
 * view. Each thread runs in one view and moves itself with MMVIEW_MIGRATE.
 *
 * The views of a process form a group (struct mmview_group). All of them share one mmap lock,
 * the first view's, so every VMA operation is serialised process-wide as before.
 *
 * Shared private memory (anonymous, heap, stacks, private file mappings) belongs to the base
 * view. Other views hold *mirrors* of the base's PTEs: pte_special entries that own no page
 * and are not in rmap, installed by mmview_fault() from the base PTE and cleared, through an
 * MMU notifier on the base, whenever the base changes or drops one. This is the secondary-MMU
 * contract KVM's shadow page tables rely on, so reclaim, migration, compaction, COW and fork
 * need no view-specific code. Unshared ranges are ordinary per-view memory, copied with fork
 * semantics when a view is created.
 *
 * Layout changes are replayed: an operation runs in the caller's view, then, under the same
 * write lock, once in every other view with the calling thread switched into it (see
 * mmview_replay()).
 *
 * Lock ordering (outermost first):
 *
 * group mmap lock (the first view's __mmap_lock; never taken twice: a queued writer
 *		    would deadlock the second reader)
 *   mapping->i_mmap_rwsem, anon_vma->rwsem	(mm_take_all_locks() in SWITCH_BASE)
 *     base PTE table lock
 *       view PTE table lock	(spin_lock_nested(SINGLE_DEPTH_NESTING); the view's page
 *				 tables are allocated before the base's lock is taken)
 *   xa_lock of group->views	(a lookup and mmget_not_zero() only)
 *   mmview_srcu read side
 *     the first view's arg_lock	(process-wide mm->flags bits; nothing nests inside;
 *				 CREATE takes it under the mmap lock without mmview_srcu)
 *     rcu_read_lock
 *       task_lock	(mmview_next_owner())
 *
 * The MMU notifier on the base is called under whatever its caller holds (rmap locks, the
 * base's PTE table lock for the young callbacks); it takes view PTE table locks only, inside
 * mmview_srcu. MMVIEW_MIGRATE takes task_lock and then disables interrupts, without the
 * mmap lock. A view is never mmput() with the mmap lock held: its exit_mmap() takes it.
 */

#include <linux/hugetlb.h>
#include <linux/mm.h>
#include <linux/mman.h>
#include <linux/mmu_context.h>
#include <linux/mmu_notifier.h>
#include <linux/mmview.h>
#include <linux/rmap.h>
#include <linux/mempolicy.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/sched/task.h>
#include <linux/security.h>
#include <linux/srcu.h>
#include <linux/swapops.h>
#include <linux/syscalls.h>
#include <linux/sysctl.h>
#include <linux/userfaultfd_k.h>
#include <linux/xarray.h>
#include <asm/tlb.h>
#include <asm/tlbflush.h>

#include "internal.h"
#include "vma.h"

/* mmview_group::flags */
#define MMVIEW_GROUP_DEAD	0	/* its process ended: views are being dropped */
#define MMVIEW_GROUP_BASE_GONE	1	/* the base's last user left: no more mirrors */

struct mmview_group;

/**
 * struct mmview_notifier - the MMU notifier on a group's base
 * @mn: the notifier, registered on the base
 * @group: its group
 *
 * Allocated apart from the group: MMVIEW_SWITCH_BASE registers a new one on the new base
 * before it unregisters the old one.
 */
struct mmview_notifier {
	struct mmu_notifier mn;
	struct mmview_group *group;
};

/**
 * struct mmview_group - the views of one process
 * @lock_mm: the first view; its mmap lock serves every view. Each other view holds an
 *	mm_count reference on it, so the lock outlives them all; the group is freed with it.
 * @base: the view that owns shared private memory. The group holds an mm_users reference
 *	on it until the group ends.
 * @signal: the process; the group ends when its last thread exits or execs.
 * @views: id -> view, for every view not yet deleted (base included). Changed under the
 *	write lock; looked up under xa_lock with mmget_not_zero().
 * @members: every view not yet torn down, linked by mm->mmview_node; changed under the write
 *	lock, walked under the write lock or mmview_srcu.
 * @next_id: the next view id; ids are never reused.
 * @nr_live: views created and not yet torn down (deleted but occupied ones count).
 * @invalidating: base invalidations in flight. A mirror is installed only while it is zero,
 *	under the view's PTL (see mmview_mirror_pmd()); it stays raised once the base is gone.
 * @invalidated: where faults that found @invalidating raised sleep until it drops to zero.
 * @flags: MMVIEW_GROUP_*.
 * @replaying: set, under the write lock, while mmview_replay() runs an operation in the other
 *	views: the hooks it passes through must not replay it again.
 * @notifier: the MMU notifier on @base that clears the mirrors.
 */
struct mmview_group {
	struct mm_struct *lock_mm;
	struct mm_struct *base;
	struct signal_struct *signal;
	struct xarray views;
	struct list_head members;
	unsigned long next_id;
	unsigned int nr_live;
	atomic_t invalidating;
	wait_queue_head_t invalidated;
	unsigned long flags;
	bool replaying;
	struct mmview_notifier *notifier;
};

/* Bits of mm->flags that are the process's, the same in every view (mmview_set_mm_flags()). */
#define MMVIEW_PROCESS_FLAGS	(MMF_DUMPABLE_MASK | MMF_DUMP_FILTER_MASK | \
				 BIT(MMF_HAS_MDWE) | BIT(MMF_HAS_MDWE_NO_INHERIT))

/* Walkers of a group's members outside its mmap lock (the MMU notifier) hold this. */
DEFINE_STATIC_SRCU(mmview_srcu);

static unsigned int sysctl_mmview_max_views = 1024;

static struct ctl_table mmview_sysctls[] = {
	{
		.procname	= "mmview_max_views",
		.data		= &sysctl_mmview_max_views,
		.maxlen		= sizeof(sysctl_mmview_max_views),
		.mode		= 0644,
		.proc_handler	= proc_douintvec_minmax,
		.extra1		= SYSCTL_ONE,
	},
};

static int __init mmview_sysctl_init(void)
{
	register_sysctl_init("vm", mmview_sysctls);
	return 0;
}
subsys_initcall(mmview_sysctl_init);

static inline bool mmview_is_base(struct mm_struct *mm)
{
	return !mm_has_views(mm) || mm->mmview_group->base == mm;
}

/*
 * The group's mmap lock and futex keys.
 */

/**
 * mmview_lock_seqcount_begin - begin the VMA lock sequence of every view
 * @mm: the view whose mmap write lock was taken, i.e. the group's
 *
 * Per-VMA readers and writers of each view compare against that view's own sequence, so
 * the group's write lock makes every sequence odd. A view that has already left the group
 * (it is being torn down) still counts its own.
 */
void mmview_lock_seqcount_begin(struct mm_struct *mm)
{
	struct mm_struct *view;

	list_for_each_entry(view, &mm->mmview_group->members, mmview_node)
		do_raw_write_seqcount_begin(&view->mm_lock_seq);
	if (!test_bit(MMVIEW_MM_LINKED, &mm->mmview_flags))
		do_raw_write_seqcount_begin(&mm->mm_lock_seq);
}

/**
 * mmview_lock_seqcount_end - end the VMA lock sequence of every view
 * @mm: the view whose mmap write lock is released or downgraded
 */
void mmview_lock_seqcount_end(struct mm_struct *mm)
{
	struct mm_struct *view;

	list_for_each_entry(view, &mm->mmview_group->members, mmview_node)
		do_raw_write_seqcount_end(&view->mm_lock_seq);
	if (!test_bit(MMVIEW_MM_LINKED, &mm->mmview_flags))
		do_raw_write_seqcount_end(&mm->mm_lock_seq);
}

/**
 * mmview_futex_mm - the mm that keys a process's private futexes
 * @mm: the caller's view
 *
 * Threads in different views must meet on one futex, so futex keys use the group's first
 * view, which lives as long as any view (struct mmview_group).
 *
 * Return: the mm to key futexes on.
 */
struct mm_struct *mmview_futex_mm(struct mm_struct *mm)
{
	return mm_has_views(mm) ? mm->mmview_group->lock_mm : mm;
}

/*
 * Replays.
 */

/**
 * __mmview_replays - whether a layout change of @mm must be replayed on other views
 * @mm: the caller's view, in a group, with the group's mmap lock held (reading suffices:
 *	what this reads changes under the write lock; madvise() asks under the read lock)
 *
 * Return: true if another view is live and no replay is running already.
 */
bool __mmview_replays(struct mm_struct *mm)
{
	struct mmview_group *group = mm->mmview_group;

	mmap_assert_locked(mm);
	return group->nr_live > 1 && !group->replaying;
}

/**
 * mmview_enter - switch the calling thread's mm, as MMVIEW_MIGRATE does
 * @from: its current view
 * @to: the view it moves into; the caller keeps it alive
 *
 * Used for migration and, under the write lock, for replays: VMA code takes current->mm for
 * accounting (map_count, locked_vm, vm_stat_account) and special mappings check it, so a
 * replay runs with the view it changes as current->mm. The rseq concurrency id follows the
 * thread, as across exec.
 */
static void mmview_enter(struct mm_struct *from, struct mm_struct *to)
{
	sched_mm_cid_before_execve(current);
	task_lock(current);
	local_irq_disable();
	current->mm = to;
	current->active_mm = to;
	membarrier_update_current_mm(to);
	switch_mm_irqs_off(from, to, current);
	local_irq_enable();
	task_unlock(current);
	sched_mm_cid_after_execve(current);
}

/*
 * A replay failed after the caller's view had changed: the views' layouts now differ, which
 * the process must never observe. Only an allocation failure (or a bug) gets here; the
 * process is killed, as the OOM killer would.
 */
static void mmview_replay_failed(struct mm_struct *view, int err)
{
	pr_warn_ratelimited("mmview: %s[%d]: replaying a layout change in view %ld failed (%d); killing the process\n",
			    current->comm, task_tgid_nr(current), view->mmview_id,
			    err);
	do_send_sig_info(SIGKILL, SEND_SIG_PRIV, current, PIDTYPE_TGID);
}

/**
 * mmview_replay - run a layout change in every other live view of the caller's group
 * @fn: the change; it runs with current->mm set to the view it changes and returns 0 or a
 *	negative errno. It must not drop the mmap lock.
 * @arg: its argument
 *
 * The caller has made the change in its own view, with the group's mmap write lock held
 * throughout: no fault, and no other layout change, runs in any view until every view is
 * done. Views whose last user is leaving (they are about to be torn down) are skipped.
 *
 * Return: 0, or @fn's error, after which the process is being killed.
 */
int mmview_replay(mmview_replay_fn fn, void *arg)
{
	struct mm_struct *mm = current->mm, *view;
	struct mmview_group *group = mm->mmview_group;
	int ret = 0;

	mmap_assert_write_locked(mm);
	group->replaying = true;
	list_for_each_entry(view, &group->members, mmview_node) {
		if (view == mm || !atomic_read(&view->mm_users))
			continue;
		mmview_enter(mm, view);
		ret = fn(arg);
		mmview_enter(view, mm);
		if (ret) {
			mmview_replay_failed(view, ret);
			break;
		}
	}
	group->replaying = false;
	return ret;
}

/**
 * mmview_replay_check - what could make a replay fail where the caller's change succeeded
 * @mm: the caller's view, with the group's mmap write lock held
 *
 * VMA boundaries may differ between views (merging depends on anon_vmas, which a view's
 * mirror ranges do not have), so their map counts may too. One layout change adds at most two
 * VMAs (a split at each end); check that every view has room before any view changes.
 *
 * Return: 0, or -ENOMEM.
 */
int mmview_replay_check(struct mm_struct *mm)
{
	struct mm_struct *view;

	mmap_assert_write_locked(mm);
	list_for_each_entry(view, &mm->mmview_group->members, mmview_node)
		if (view->map_count + 2 > sysctl_max_map_count)
			return -ENOMEM;
	return 0;
}

struct mmview_mmap_args {
	struct file *file;
	unsigned long addr;
	unsigned long len;
	vm_flags_t vm_flags;
	unsigned long pgoff;
};

static int mmview_mmap_one(void *arg)
{
	struct mmview_mmap_args *a = arg;
	unsigned long addr;

	addr = mmap_region(a->file, a->addr, a->len, a->vm_flags, a->pgoff, NULL);
	if (IS_ERR_VALUE(addr))
		return (int)addr;
	return addr == a->addr ? 0 : -EINVAL;
}

/* Mappings whose frames views cannot share: device memory, drivers' own pages. */
static bool mmview_mmap_refused(struct vm_area_struct *vma)
{
	if (vma->vm_flags & (VM_IO | VM_PFNMAP | VM_MIXEDMAP))
		return true;
	return vma->vm_file && !vma_is_anonymous(vma) &&
	       !S_ISREG(file_inode(vma->vm_file)->i_mode);
}

/**
 * mmview_replay_mmap - replay do_mmap() on the other views
 * @file: the file do_mmap() mapped, or NULL
 * @addr: where the caller's view mapped it
 * @len: the length, page aligned
 * @vm_flags: the flags do_mmap() passed to mmap_region()
 * @pgoff: the offset do_mmap() passed to mmap_region()
 *
 * Runs mmap_region() at @addr in every other view: the layouts are the same, so the range is
 * free (or replaced, for MAP_FIXED) alike everywhere. Anonymous shared memory (and MAP_SHARED
 * of /dev/zero) got a shmem object in the caller's view; the other views map that object, so
 * all views see one memory. Device mappings are refused: the range is unmapped again in every
 * view, as a failed MAP_FIXED leaves it. Populating (MAP_POPULATE, mlock) is left to the
 * caller, in its own view: the other views mirror the base.
 *
 * Return: @addr, or a negative errno.
 */
unsigned long mmview_replay_mmap(struct file *file, unsigned long addr,
				 unsigned long len, vm_flags_t vm_flags,
				 unsigned long pgoff)
{
	struct mm_struct *mm = current->mm;
	struct vm_area_struct *vma = vma_lookup(mm, addr);
	struct mmview_mmap_args args = {
		.file = file,
		.addr = addr,
		.len = len,
		.vm_flags = vm_flags,
		.pgoff = pgoff,
	};
	int ret;

	if (WARN_ON_ONCE(!vma))
		return -EINVAL;
	if (mmview_mmap_refused(vma)) {
		VMA_ITERATOR(vmi, mm, addr);

		do_vmi_munmap(&vmi, mm, addr, len, NULL, false);
		return -EOPNOTSUPP;
	}
	if (vm_flags & VM_SHARED)
		args.file = vma->vm_file;
	ret = mmview_replay(mmview_mmap_one, &args);
	return ret ? ret : addr;
}

struct mmview_range {
	unsigned long start;
	unsigned long end;
};

static int mmview_munmap_one(void *arg)
{
	VMA_ITERATOR(vmi, current->mm, 0);
	struct mmview_range *r = arg;
	struct vm_area_struct *vma;

	vma_iter_set(&vmi, r->start);
	vma = vma_find(&vmi, r->end);
	if (!vma)
		return 0;
	return do_vmi_align_munmap(&vmi, vma, current->mm, r->start, r->end,
				   NULL, false);
}

/**
 * mmview_munmap - do_vmi_munmap() in every view
 * @vmi: the caller's iterator, at @start
 * @mm: the caller's view, current->mm, with the group's mmap write lock held
 * @start: start address, page aligned
 * @end: end address, page aligned
 * @uf: userfaultfd unmap list of the caller, or NULL
 * @unlock: release the mmap lock on success, as do_vmi_munmap() does
 *
 * do_vmi_munmap() downgrades the lock to read before it zaps, when asked to unlock; faults
 * would then run while other views still map the range. Every view is unmapped under the write
 * lock instead, the caller's first (its layout is the reference), and the lock is released at
 * the end.
 *
 * Return: 0 or a negative errno; with @unlock, the lock is released only on success.
 */
int mmview_munmap(struct vma_iterator *vmi, struct mm_struct *mm,
		  unsigned long start, unsigned long end, struct list_head *uf,
		  bool unlock)
{
	struct mmview_range range = { .start = start, .end = end };
	struct vm_area_struct *vma;
	int ret;

	mmap_assert_write_locked(mm);
	if (WARN_ON_ONCE(mm != current->mm))
		return -EINVAL;
	ret = mmview_replay_check(mm);
	if (ret)
		return ret;
	vma = vma_find(vmi, end);
	if (vma) {
		ret = do_vmi_align_munmap(vmi, vma, mm, start, end, uf, false);
		if (ret)
			return ret;
	}
	ret = mmview_replay(mmview_munmap_one, &range);
	if (!ret && unlock)
		mmap_write_unlock(mm);
	return ret;
}

struct mmview_stack_args {
	unsigned long end;
	unsigned long address;
};

static int mmview_stack_one(void *arg)
{
	struct mmview_stack_args *a = arg;
	struct vm_area_struct *vma = vma_lookup(current->mm, a->end - 1);

	if (!vma || !(vma->vm_flags & VM_GROWSDOWN))
		return -EFAULT;
	return expand_downwards(vma, a->address);
}

/**
 * mmview_replay_stack - grow the stack VMA in every other view as in the caller's
 * @vma: the caller's stack VMA, just grown down to @address
 * @address: the new start, page aligned
 *
 * Return: 0, or a negative errno (the process is then being killed).
 */
int mmview_replay_stack(struct vm_area_struct *vma, unsigned long address)
{
	struct mmview_stack_args args = {
		.end = vma->vm_end,
		.address = address,
	};

	return mmview_replay(mmview_stack_one, &args);
}

/**
 * mmview_mprotect_scope - which views an mprotect() of [@start, @end) changes
 * @mm: the caller's view, with the group's mmap write lock held
 * @start: start address
 * @end: end address
 *
 * Shared ranges keep the same protection in every view; unshared ranges diverge per view.
 *
 * Return: MMVIEW_ALL_VIEWS, MMVIEW_OWN_VIEW, or -EACCES for a range mixing both.
 */
int mmview_mprotect_scope(struct mm_struct *mm, unsigned long start,
			  unsigned long end)
{
	VMA_ITERATOR(vmi, mm, start);
	struct vm_area_struct *vma;
	int shared = 0, unshared = 0;

	mmap_assert_write_locked(mm);
	for_each_vma_range(vmi, vma, end) {
		if (vma->vm_flags & VM_MMVIEW_UNSHARED)
			unshared = 1;
		else
			shared = 1;
	}
	if (shared && unshared)
		return -EACCES;
	return unshared ? MMVIEW_OWN_VIEW : MMVIEW_ALL_VIEWS;
}

/**
 * mmview_advise_owners - give content advice to the mm that owns each part of a range
 * @mm: the view the advice was given in, with the mmap lock held (read suffices)
 * @start: start address, page aligned
 * @end: end address, page aligned
 * @behavior: the MADV_* advice; it must not change VMAs
 * @fn: applies @behavior to [start, end) of one mm, as madvise() would
 *
 * The pages of a view's shared private ranges belong to the base: advice that discards,
 * ages or reclaims them (MADV_DONTNEED, _FREE, _COLD, _PAGEOUT, _WILLNEED) is given to the
 * base, whose MMU notifier then clears the mirrors of every view. Everything else (unshared
 * ranges, shared mappings, the base's own ranges) is advised in @mm. @mm need not be
 * current->mm (process_madvise()).
 *
 * @fn may drop and retake the mmap lock (MADV_REMOVE, MADV_WILLNEED on files, as
 * madvise_walk_vmas() allows): the layout, and even which view is the base, may then have
 * changed. So the range is cut into runs one at a time, each found afresh after the last
 * was advised, and nothing found before a call to @fn is used after it.
 *
 * Return: 0, @fn's first error, or -ENOMEM if part of the range is unmapped (the mapped
 * parts are advised all the same, as madvise() does).
 */
int mmview_advise_owners(struct mm_struct *mm, unsigned long start,
			 unsigned long end, int behavior, mmview_advise_fn fn)
{
	unsigned long addr = start;
	bool hole = false;
	int err;

	mmap_assert_locked(mm);
	while (addr < end) {
		VMA_ITERATOR(vmi, mm, addr);
		struct mm_struct *base = mm->mmview_group->base, *owner = NULL;
		unsigned long run_start = addr, run_end = addr;
		struct vm_area_struct *vma;

		if (mm == base)
			return fn(mm, addr, end, behavior) ?: (hole ? -ENOMEM : 0);
		/* The next run of consecutive mapped pages with one owner. */
		for_each_vma_range(vmi, vma, end) {
			struct mm_struct *vma_owner = mmview_vma_mirrors(vma) ? base : mm;

			if (owner && (vma_owner != owner || vma->vm_start != run_end))
				break;
			/*
			 * mseal() decides on the caller's VMA: its protection key checks
			 * see the caller's mm, to which the base's VMAs are foreign.
			 * Like madvise_walk_vmas(), what came before is still advised:
			 * the run ends here, and the next one starts with this VMA.
			 */
			if (vma_owner == base && !can_modify_vma_madv(vma, behavior)) {
				if (!owner)
					return -EPERM;
				break;
			}
			if (!owner) {
				owner = vma_owner;
				run_start = max(vma->vm_start, addr);
			}
			run_end = min(vma->vm_end, end);
		}
		if (!owner)
			return -ENOMEM;	/* nothing mapped in [addr, end) */
		/* A hole anywhere in the range, as madvise_walk_vmas() reports it. */
		if (run_start != addr)
			hole = true;
		err = fn(owner, run_start, run_end, behavior);
		if (err)
			return err;
		addr = run_end;
	}
	return hole ? -ENOMEM : 0;
}

/*
 * Page tables a view keeps until it exits.
 */

/**
 * __mmview_keeps_page_tables - whether free_pgtables() must leave @mm's page tables in place
 * @mm: a view
 *
 * The MMU notifier walks the page tables of views that mirror the base without the mmap lock
 * (from reclaim, for instance). Such a view therefore never frees page tables while it is in
 * the group; they are reused when the range is mapped again. Once it has kept some, it keeps
 * all until exit_mmap() (even as the base after MMVIEW_SWITCH_BASE): freeing an upper-level
 * table over a range with no VMA would orphan the tables kept below it. exit_mmap() frees
 * them all through mmview_free_kept_tables(), after every VMA left rmap.
 *
 * Return: true if free_pgtables() must leave the tables in place.
 */
bool __mmview_keeps_page_tables(struct mm_struct *mm)
{
	if (test_bit(MMVIEW_MM_KEPT_TABLES, &mm->mmview_flags))
		return true;
	if (!test_bit(MMVIEW_MM_MIRRORS, &mm->mmview_flags) ||
	    !test_bit(MMVIEW_MM_LINKED, &mm->mmview_flags))
		return false;
	set_bit(MMVIEW_MM_KEPT_TABLES, &mm->mmview_flags);
	return true;
}

/**
 * mmview_free_kept_tables - free every page table a view kept
 * @tlb: exit_mmap()'s gather, after free_pgtables(); NULL if it has none (no VMA left)
 * @mm: the mm being torn down
 */
void mmview_free_kept_tables(struct mmu_gather *tlb, struct mm_struct *mm)
{
	struct mmu_gather own;

	if (!test_bit(MMVIEW_MM_KEPT_TABLES, &mm->mmview_flags))
		return;
	if (!tlb) {
		tlb = &own;
		tlb_gather_mmu_fullmm(tlb, mm);
	}
	free_pgd_range(tlb, FIRST_USER_ADDRESS, mm->task_size,
		       FIRST_USER_ADDRESS, USER_PGTABLES_CEILING);
	if (tlb == &own)
		tlb_finish_mmu(tlb);
}

/*
 * Mirrors.
 */

enum mmview_walk_op {
	MMVIEW_ZAP,		/* clear every mirror, handing dirty bits to the folio */
	MMVIEW_CLEAR_YOUNG,	/* clear accessed bits, report whether any was set */
	MMVIEW_TEST_YOUNG,	/* report whether any accessed bit is set */
};

/**
 * mmview_walk_ptes - apply @op to the mirrors under one PMD of a view
 * @view: a non-base view
 * @pmd: its PMD covering [@addr, @end)
 * @addr: start address
 * @end: end address, within the PMD
 * @op: what to do
 * @flush: set when a present entry was cleared
 *
 * Only special PTEs are touched: in a view's shared private ranges every present entry is a
 * mirror; elsewhere a special entry is a zero page or a special mapping's, which refaults.
 *
 * Return: true if @op found an accessed entry.
 */
static bool mmview_walk_ptes(struct mm_struct *view, pmd_t *pmd,
			     unsigned long addr, unsigned long end,
			     enum mmview_walk_op op, bool *flush)
{
	spinlock_t *ptl;	/* the view's PTE table lock */
	pte_t *start_pte, *pte;
	bool young = false;

	/*
	 * Reclaim asks for accessed bits with the base's PTL held: a view's PTL
	 * nests inside the base's, as in mmview_mirror_pmd(). The view's page
	 * tables cannot go away meanwhile (see mmview_walk_view()).
	 */
	start_pte = pte_offset_map_nolock(view, pmd, addr, &ptl);
	if (!start_pte)
		return false;
	spin_lock_nested(ptl, SINGLE_DEPTH_NESTING);
	for (pte = start_pte; addr < end; pte++, addr += PAGE_SIZE) {
		pte_t entry = ptep_get(pte);
		unsigned long pfn;

		if (!pte_present(entry) || !pte_special(entry))
			continue;
		if (op == MMVIEW_TEST_YOUNG) {
			young |= pte_young(entry);
			continue;
		}
		if (op == MMVIEW_CLEAR_YOUNG) {
			young |= ptep_test_and_clear_young(NULL, addr, pte);
			continue;
		}
		entry = ptep_get_and_clear(view, addr, pte);
		*flush = true;
		pfn = pte_pfn(entry);
		if (pte_dirty(entry) && pfn_valid(pfn) && !is_zero_pfn(pfn))
			folio_mark_dirty(page_folio(pfn_to_page(pfn)));
	}
	pte_unmap_unlock(start_pte, ptl);
	return young;
}

/**
 * mmview_walk_view - apply @op to the mirrors of one view in [@start, @end)
 * @view: a non-base view
 * @start: start address
 * @end: end address
 * @op: what to do
 * @may_sleep: the caller may sleep: reschedule between page tables
 *
 * Runs without the mmap lock (from reclaim, for instance): the view's page tables stay
 * allocated because a view leaves the group's member list, and waits for mmview_srcu,
 * before it frees them. Empty entries are skipped at every level, so the walk costs what
 * is mapped; a view keeps every page table it ever had, which over a large address space
 * (the whole of it at release) is still many tables, hence @may_sleep.
 *
 * Return: true if @op found an accessed entry.
 */
static bool mmview_walk_view(struct mm_struct *view, unsigned long start,
			     unsigned long end, enum mmview_walk_op op,
			     bool may_sleep)
{
	unsigned long addr, next_pgd, next_p4d, next_pud, next_pmd;
	bool young = false, flush = false;

	for (addr = start; addr < end; addr = next_pgd) {
		pgd_t *pgd = pgd_offset(view, addr);

		next_pgd = pgd_addr_end(addr, end);
		if (pgd_none(READ_ONCE(*pgd)) || pgd_bad(READ_ONCE(*pgd)))
			continue;
		for (; addr < next_pgd; addr = next_p4d) {
			p4d_t *p4d = p4d_offset(pgd, addr);

			next_p4d = p4d_addr_end(addr, next_pgd);
			if (p4d_none(READ_ONCE(*p4d)) || p4d_bad(READ_ONCE(*p4d)))
				continue;
			for (; addr < next_p4d; addr = next_pud) {
				pud_t *pud = pud_offset(p4d, addr);

				next_pud = pud_addr_end(addr, next_p4d);
				if (pud_none(READ_ONCE(*pud)) || pud_bad(READ_ONCE(*pud)))
					continue;
				for (; addr < next_pud; addr = next_pmd) {
					pmd_t *pmd = pmd_offset(pud, addr);

					next_pmd = pmd_addr_end(addr, next_pud);
					if (pmd_none(pmdp_get_lockless(pmd)))
						continue;
					young |= mmview_walk_ptes(view, pmd, addr,
								  next_pmd, op,
								  &flush);
				}
				if (may_sleep)
					cond_resched();
			}
		}
	}
	if (flush)
		flush_tlb_mm_range(view, start, end, PAGE_SHIFT, false);
	return young;
}

/**
 * mmview_walk_mirrors - apply @op to the mirrors of every view of a group
 * @group: the group
 * @start: start address
 * @end: end address
 * @op: what to do
 * @may_sleep: the caller may sleep (mmview_walk_view())
 *
 * Return: true if @op found an accessed entry.
 */
static bool mmview_walk_mirrors(struct mmview_group *group, unsigned long start,
				unsigned long end, enum mmview_walk_op op,
				bool may_sleep)
{
	struct mm_struct *view;
	bool young = false;
	int idx;

	idx = srcu_read_lock(&mmview_srcu);
	list_for_each_entry_srcu(view, &group->members, mmview_node,
				 srcu_read_lock_held(&mmview_srcu)) {
		if (test_bit(MMVIEW_MM_MIRRORS, &view->mmview_flags))
			young |= mmview_walk_view(view, start, end, op,
						  may_sleep);
	}
	srcu_read_unlock(&mmview_srcu, idx);
	return young;
}

static struct mmview_group *mmview_notifier_group(struct mmu_notifier *mn)
{
	return container_of(mn, struct mmview_notifier, mn)->group;
}

static int mmview_invalidate_range_start(struct mmu_notifier *mn,
					 const struct mmu_notifier_range *range)
{
	struct mmview_group *group = mmview_notifier_group(mn);

	atomic_inc(&group->invalidating);
	/*
	 * Raised before any view PTL is taken; pairs with the read under the
	 * view PTL in mmview_mirror_pmd().
	 */
	smp_mb__after_atomic();
	mmview_walk_mirrors(group, range->start, range->end, MMVIEW_ZAP,
			    mmu_notifier_range_blockable(range));
	return 0;
}

static void mmview_invalidate_range_end(struct mmu_notifier *mn,
					const struct mmu_notifier_range *range)
{
	struct mmview_group *group = mmview_notifier_group(mn);

	/*
	 * The base PTE changes are visible before a new mirror may copy them
	 * (atomic_dec_and_test() is fully ordered); wq_has_sleeper() pairs with
	 * the barrier in prepare_to_wait() of a fault that saw the count raised.
	 */
	if (atomic_dec_and_test(&group->invalidating) &&
	    wq_has_sleeper(&group->invalidated))
		wake_up_all(&group->invalidated);
}

static int mmview_clear_flush_young(struct mmu_notifier *mn, struct mm_struct *mm,
				    unsigned long start, unsigned long end)
{
	struct mmview_group *group = mmview_notifier_group(mn);

	return mmview_walk_mirrors(group, start, end, MMVIEW_CLEAR_YOUNG, false);
}

static int mmview_test_young(struct mmu_notifier *mn, struct mm_struct *mm,
			     unsigned long address)
{
	struct mmview_group *group = mmview_notifier_group(mn);

	return mmview_walk_mirrors(group, address, address + PAGE_SIZE,
				   MMVIEW_TEST_YOUNG, false);
}

/*
 * The base's last user left: no view may mirror it any more. (Also called when
 * MMVIEW_SWITCH_BASE unregisters the old base's notifier: nothing to do then.)
 */
static void mmview_release(struct mmu_notifier *mn, struct mm_struct *mm)
{
	struct mmview_group *group = mmview_notifier_group(mn);

	if (mm != group->base)
		return;

	set_bit(MMVIEW_GROUP_BASE_GONE, &group->flags);
	atomic_inc(&group->invalidating);	/* never dropped */
	/* As in mmview_invalidate_range_start(). */
	smp_mb__after_atomic();
	mmview_walk_mirrors(group, 0, TASK_SIZE_MAX, MMVIEW_ZAP, true);
	wake_up_all(&group->invalidated);	/* their faults now fail */
}

static const struct mmu_notifier_ops mmview_notifier_ops = {
	.release		= mmview_release,
	.invalidate_range_start	= mmview_invalidate_range_start,
	.invalidate_range_end	= mmview_invalidate_range_end,
	.clear_flush_young	= mmview_clear_flush_young,
	.clear_young		= mmview_clear_flush_young,
	.test_young		= mmview_test_young,
};

/**
 * mmview_refuses_notifier - whether an MMU notifier must not be registered on @mm
 * @mm: the mm, with its mmap lock held for writing
 * @subscription: the notifier, or NULL for the interval tree that
 *	mmu_interval_notifier_insert() sets up
 *
 * A secondary MMU (KVM, VFIO, RDMA, HMM) follows the PTEs of one mm: registered on a view,
 * it would map pages the base owns and never hear of their invalidation. A process with
 * views has one secondary MMU, its views; CREATE refuses a process that has another.
 *
 * Return: true if the registration must fail with -EBUSY.
 */
bool mmview_refuses_notifier(struct mm_struct *mm,
			     struct mmu_notifier *subscription)
{
	mmap_assert_write_locked(mm);

	return mm_has_views(mm) &&
	       (!subscription || subscription->ops != &mmview_notifier_ops);
}

/**
 * mmview_notifier_register - make @mm's PTE changes clear the group's mirrors
 * @group: the group
 * @mm: the base, or the view about to become it, with the mmap write lock held
 *
 * Return: 0 or a negative errno; on success @group->notifier is @mm's.
 */
static int mmview_notifier_register(struct mmview_group *group,
				    struct mm_struct *mm)
{
	struct mmview_notifier *n = kzalloc(sizeof(*n), GFP_KERNEL_ACCOUNT);
	int ret;

	mmap_assert_write_locked(mm);
	if (!n)
		return -ENOMEM;
	n->mn.ops = &mmview_notifier_ops;
	n->group = group;
	ret = __mmu_notifier_register(&n->mn, mm);
	if (ret) {
		kfree(n);
		return ret;
	}
	group->notifier = n;
	return 0;
}

/**
 * mmview_notifier_unregister - stop clearing mirrors on @mm's PTE changes
 * @n: a notifier of the group, no longer @group->notifier
 * @mm: the mm @n is registered on
 */
static void mmview_notifier_unregister(struct mmview_notifier *n,
				       struct mm_struct *mm)
{
	mmu_notifier_unregister(&n->mn, mm);
	kfree(n);
}

/**
 * mmview_mirror_pmd - install mirrors of the base's PTEs under one PMD
 * @group: the group
 * @view: a non-base view, with the group's mmap lock held
 * @base_vma: the base's VMA covering [@addr, @end)
 * @addr: start address
 * @end: end address, within one PMD
 * @fault: true for a fault at @addr (the range is that page), whose base PTE must satisfy
 *	the access; false when filling a new view: every present PTE is mirrored
 * @fault_flags: the fault's FAULT_FLAG_*
 *
 * The base PTL is taken before the view's. A mirror is installed only while no base
 * invalidation is in flight: the notifier raises @group->invalidating before it takes any
 * view PTL, so either this sees the count raised or the notifier sees the mirror and
 * clears it.
 *
 * Return: 0 when done; -ENOENT when the base has no PTE that satisfies the fault (fault
 * it in the base first); -EBUSY when an invalidation of the base is in flight; -EAGAIN when
 * a huge PMD was split or a page table changed under the walk; -EFAULT when the base is
 * gone; -ENOMEM.
 */
static int mmview_mirror_pmd(struct mmview_group *group, struct mm_struct *view,
			     struct vm_area_struct *base_vma, unsigned long addr,
			     unsigned long end, bool fault,
			     unsigned int fault_flags)
{
	struct mm_struct *base = base_vma->vm_mm;
	pmd_t *bpmd, *vpmd, bpmdval;
	pte_t *bpte, *vpte;
	spinlock_t *bptl, *vptl;
	pgd_t *pgd;
	p4d_t *p4d;
	pud_t *pud;
	int ret = 0;

	mmap_assert_locked(view);
	bpmd = mm_find_pmd(base, addr);
	if (!bpmd)
		return -ENOENT;
	bpmdval = pmdp_get_lockless(bpmd);
	if (!pmd_present(bpmdval) && !is_swap_pmd(bpmdval))
		return -ENOENT;
	if (pmd_trans_huge(bpmdval) || pmd_devmap(bpmdval) ||
	    is_swap_pmd(bpmdval)) {
		/* Views mirror 4 KiB entries; THP is off once a process has views. */
		if (!fault)
			return 0;
		split_huge_pmd(base_vma, bpmd, addr);
		return -EAGAIN;
	}

	pgd = pgd_offset(view, addr);
	p4d = p4d_alloc(view, pgd, addr);
	if (!p4d)
		return -ENOMEM;
	pud = pud_alloc(view, p4d, addr);
	if (!pud)
		return -ENOMEM;
	vpmd = pmd_alloc(view, pud, addr);
	if (!vpmd || pte_alloc(view, vpmd))
		return -ENOMEM;

	bpte = pte_offset_map_lock(base, bpmd, addr, &bptl);
	if (!bpte)
		return fault ? -EAGAIN : 0;
	vpte = pte_offset_map_nolock(view, vpmd, addr, &vptl);
	if (!vpte) {
		pte_unmap_unlock(bpte, bptl);
		return -EAGAIN;
	}
	spin_lock_nested(vptl, SINGLE_DEPTH_NESTING);

	if (atomic_read(&group->invalidating)) {
		ret = test_bit(MMVIEW_GROUP_BASE_GONE, &group->flags) ? -EFAULT : -EBUSY;
		goto unlock;
	}
	for (; addr < end; addr += PAGE_SIZE, bpte++, vpte++) {
		pte_t entry = ptep_get(bpte), cur;

		if (!pte_present(entry) || pte_protnone(entry) ||
		    ((fault_flags & FAULT_FLAG_WRITE) && !pte_write(entry))) {
			if (fault)
				ret = -ENOENT;
			continue;
		}
		entry = pte_mkspecial(pte_mkclean(entry));
		cur = ptep_get(vpte);
		if (pte_present(cur)) {
			if (pte_same(cur, entry))
				continue;
			if (pte_pfn(cur) != pte_pfn(entry)) {
				/* Cannot happen: the notifier clears stale mirrors. */
				WARN_ON_ONCE(1);
				ptep_get_and_clear(view, addr, vpte);
				flush_tlb_mm_range(view, addr, addr + PAGE_SIZE,
						   PAGE_SHIFT, false);
			}
		}
		set_pte_at(view, addr, vpte, entry);
	}
unlock:
	spin_unlock(vptl);
	pte_unmap(vpte);
	pte_unmap_unlock(bpte, bptl);
	return ret;
}

/* No invalidation of the base in flight, or no base any more. */
static bool mmview_invalidations_over(struct mmview_group *group)
{
	return !atomic_read(&group->invalidating) ||
	       test_bit(MMVIEW_GROUP_BASE_GONE, &group->flags);
}

/*
 * The base's invalidation of the faulting page is in flight: sleep until every invalidation
 * has ended rather than spin, because the task running it may need this CPU to finish (an
 * invalidation may sleep between its start and its end, and a kernel-mode access to user
 * memory, such as rseq's, refaults without a scheduling point). As folio_lock_or_retry()
 * does, the mmap lock is dropped for the sleep when the fault allows it.
 *
 * Return: VM_FAULT_RETRY with the lock dropped, or 0 with it held (retry the mirror).
 */
static vm_fault_t mmview_fault_wait(struct mmview_group *group,
				    struct mm_struct *view, unsigned int flags)
{
	bool drop = (flags & FAULT_FLAG_ALLOW_RETRY) &&
		    !(flags & FAULT_FLAG_RETRY_NOWAIT);

	if (drop)
		mmap_read_unlock(view);
	/*
	 * Threads keep the group alive: the caller's view holds the group's
	 * lock_mm. A gone base leaves the count raised and wakes everyone.
	 */
	if (drop && (flags & FAULT_FLAG_KILLABLE))
		wait_event_killable(group->invalidated,
				    mmview_invalidations_over(group));
	else
		wait_event(group->invalidated, mmview_invalidations_over(group));
	return drop ? VM_FAULT_RETRY : 0;
}

/**
 * mmview_fault - handle a fault on a view's shared private range
 * @vma: the view's VMA (mmview_vma_mirrors() is true), with the mmap lock held
 * @address: the faulting address
 * @flags: FAULT_FLAG_*
 *
 * Mirrors the base's PTE when it satisfies the access; otherwise faults the page in the
 * base first, inside the caller's memcg and accounting bracket, and retries. Views never
 * allocate, copy or swap a page of a shared private range. While the base invalidates, the
 * fault sleeps (mmview_fault_wait()). When the base fault drops the mmap lock
 * (VM_FAULT_RETRY or VM_FAULT_COMPLETED) its result is returned as is: the lock is the
 * view's too.
 *
 * Return: VM_FAULT_* as handle_mm_fault().
 */
vm_fault_t mmview_fault(struct vm_area_struct *vma, unsigned long address,
			unsigned int flags)
{
	struct mm_struct *view = vma->vm_mm;
	struct mmview_group *group = view->mmview_group;
	struct mm_struct *base = group->base;
	struct vm_area_struct *base_vma;
	vm_fault_t ret;
	int tries;

	mmap_assert_locked(view);
	address &= PAGE_MASK;
	base_vma = vma_lookup(base, address);
	/* Shared ranges have one layout and one protection in every view. */
	if (WARN_ON_ONCE(!base_vma ||
			 ((base_vma->vm_flags ^ vma->vm_flags) & VM_ACCESS_FLAGS)))
		return VM_FAULT_SIGSEGV;
	for (tries = 0; tries < 3; tries++) {
		switch (mmview_mirror_pmd(group, view, base_vma, address,
					  address + PAGE_SIZE, true, flags)) {
		case 0:
			return 0;
		case -ENOMEM:
			return VM_FAULT_OOM;
		case -EFAULT:
			return VM_FAULT_SIGBUS;
		case -EBUSY:
			ret = mmview_fault_wait(group, view, flags);
			if (ret)
				return ret;
			continue;
		case -EAGAIN:
			continue;
		}
		/* -ENOENT: fault the page in the base first. */
		if (!mmget_not_zero(base))
			return VM_FAULT_SIGBUS;
		ret = __handle_mm_fault(base_vma, address, flags);
		mmput_async(base);
		if (ret & (VM_FAULT_ERROR | VM_FAULT_RETRY | VM_FAULT_COMPLETED))
			return ret;
	}
	/*
	 * The base kept changing: let the access refault, after a scheduling point
	 * (see mmview_fault_wait()).
	 */
	cond_resched();
	return 0;
}

/**
 * mmview_gup_vma - the VMA get_user_pages() must walk for a view's VMA
 * @vma: the caller's VMA at @address, with the mmap lock held
 * @address: the address being pinned or read
 * @gup_flags: FOLL_*
 *
 * A view's mirrors own no page, so GUP (O_DIRECT, futexes, process_vm_*, ptrace, core
 * dumps) walks and faults the base's VMA at the same address instead, and a pin marks the
 * base, which is what fork copies from.
 *
 * Return: @vma, or the base's VMA when @vma mirrors the base.
 */
struct vm_area_struct *mmview_gup_vma(struct vm_area_struct *vma,
				      unsigned long address,
				      unsigned int gup_flags)
{
	struct mmview_group *group;
	struct vm_area_struct *base_vma;

	mmap_assert_locked(vma->vm_mm);
	if (!mmview_vma_mirrors(vma))
		return vma;
	group = vma->vm_mm->mmview_group;
	if (test_bit(MMVIEW_GROUP_BASE_GONE, &group->flags))
		return vma;
	base_vma = vma_lookup(group->base, address);
	if (WARN_ON_ONCE(!base_vma))
		return vma;
	if (gup_flags & FOLL_PIN)
		set_bit(MMF_HAS_PINNED, &group->base->flags);
	return base_vma;
}

/*
 * Fork from any view.
 */

/*
 * Splits @vma of @mm at @addr so that a VMA starts there (split_vma() allocates: -ENOMEM).
 */
static int mmview_split_at(struct mm_struct *mm, struct vm_area_struct *vma,
			   unsigned long addr)
{
	VMA_ITERATOR(vmi, mm, addr);

	return split_vma(&vmi, vma, addr, 1);
}

/**
 * mmview_fork_prepare - line up a view's shared private VMAs with the base's for fork()
 * @view: the forking task's view, with the group's mmap write lock held
 *
 * fork() from a view other than the base copies each shared private range from the base,
 * which owns its pages, and everything else from @view (unshared ranges as @view sees them).
 * dup_mmap() copies VMA by VMA, and a child VMA takes the anon_vma chain of the base VMA it
 * copies from, so each shared private VMA of @view must cover exactly one base VMA. The
 * boundaries may differ (a view merges mirror VMAs whose base VMAs have different anon_vmas):
 * where one side has a boundary the other lacks, the other's VMA is split. The split VMAs
 * stay split; no layout changes.
 *
 * Return: 0, -ENOMEM (a split failed or the map count limit was reached), or -EFAULT if the
 * layouts differ (a bug).
 */
int mmview_fork_prepare(struct mm_struct *view)
{
	struct mm_struct *base;
	struct vm_area_struct *vma, *bvma;
	unsigned long addr = 0, end;
	int ret;

	mmap_assert_write_locked(view);
	if (mmview_is_base(view))
		return 0;
	base = view->mmview_group->base;
	while ((vma = find_vma(view, addr))) {
		addr = max(addr, vma->vm_start);
		if (!mmview_vma_mirrors(vma)) {
			addr = vma->vm_end;
			continue;
		}
		bvma = vma_lookup(base, addr);
		if (WARN_ON_ONCE(!bvma))
			return -EFAULT;
		if (bvma->vm_start < addr) {
			ret = mmview_split_at(base, bvma, addr);
			if (ret)
				return ret;
			continue;
		}
		end = min(vma->vm_end, bvma->vm_end);
		if (vma->vm_end > end) {
			ret = mmview_split_at(view, vma, end);
			if (ret)
				return ret;
		}
		if (bvma->vm_end > end) {
			ret = mmview_split_at(base, bvma, end);
			if (ret)
				return ret;
		}
		addr = end;
	}
	return 0;
}

/**
 * mmview_fork_source - the VMA fork() copies a VMA's pages and anon_vma chain from
 * @vma: a VMA of the forking task's mm, with the group's mmap write lock held, after
 *	mmview_fork_prepare()
 *
 * Return: @vma, or for a view's shared private VMA the base's VMA over the same range,
 * write-locked as copy_page_range() requires; ERR_PTR(-EFAULT) if there is none (a bug).
 */
struct vm_area_struct *mmview_fork_source(struct vm_area_struct *vma)
{
	struct vm_area_struct *bvma;

	mmap_assert_write_locked(vma->vm_mm);
	if (!mmview_vma_mirrors(vma))
		return vma;
	bvma = vma_lookup(vma->vm_mm->mmview_group->base, vma->vm_start);
	if (WARN_ON_ONCE(!bvma || bvma->vm_start != vma->vm_start ||
			 bvma->vm_end != vma->vm_end))
		return ERR_PTR(-EFAULT);
	vma_start_write(bvma);
	return bvma;
}

/**
 * mmview_fork_flush - flush the base's TLB after fork() from another view
 * @view: the forking task's view, with the group's mmap write lock held
 *
 * dup_mmap() flushes the forking mm's TLB before it unlocks. A fork from a view also
 * write-protected the base's PTEs of shared private ranges (copy_page_range() from the
 * base), so the base's TLB must be flushed too; the views' mirrors were cleared by the
 * base's MMU notifier, which flushed their TLBs.
 */
void mmview_fork_flush(struct mm_struct *view)
{
	mmap_assert_write_locked(view);

	if (!mmview_is_base(view))
		flush_tlb_mm(view->mmview_group->base);
}

/*
 * Process-wide state kept in each mm_struct.
 */

/**
 * mmview_sync_pkeys - give every view the caller's protection-key allocation
 * @mm: the caller's view, after pkey_alloc() or pkey_free(), with the group's mmap write
 *	lock held
 *
 * Protection keys are allocated per mm (CREATE copies the allocation, arch_dup_mmap()),
 * but the VMAs that carry them are replayed in every view: a pkey_mprotect() replayed in a
 * view where its key was never allocated would fail there. So every allocation and release
 * is copied to every view at once.
 */
void mmview_sync_pkeys(struct mm_struct *mm)
{
#ifdef CONFIG_ARCH_HAS_PKEYS
	struct mm_struct *view;

	mmap_assert_write_locked(mm);
	if (!mm_has_views(mm))
		return;
	list_for_each_entry(view, &mm->mmview_group->members, mmview_node)
		if (view != mm)
			arch_dup_pkeys(mm, view);
#endif
}

/**
 * __mmview_same_process - whether @other is a view of @mm's group
 * @mm: the caller's view, in a group
 * @other: an mm pointer read from another CPU's current task; compared, never dereferenced
 *
 * The expedited membarrier commands interrupt every CPU that runs a thread of the caller's
 * process, in whichever view. Callable under rcu_read_lock(): the members are walked under
 * mmview_srcu, which a view leaves only after it is unlinked.
 *
 * Return: true if @other is a member of @mm's group.
 */
bool __mmview_same_process(struct mm_struct *mm, struct mm_struct *other)
{
	struct mm_struct *view;
	bool found = false;
	int idx;

	idx = srcu_read_lock(&mmview_srcu);
	list_for_each_entry_srcu(view, &mm->mmview_group->members, mmview_node,
				 srcu_read_lock_held(&mmview_srcu)) {
		if (view == other) {
			found = true;
			break;
		}
	}
	srcu_read_unlock(&mmview_srcu, idx);
	return found;
}

/**
 * mmview_membarrier_sync - give every view the caller's membarrier registrations
 * @mm: the caller's view, whose membarrier_state a registration just changed
 *
 * Registrations are process-wide: a thread in any view may then issue the command. Under
 * the group's mmap lock, so that a concurrent CREATE, which copies the state under the
 * write lock, either copies the new bits or is a member by the time they are propagated.
 */
void mmview_membarrier_sync(struct mm_struct *mm)
{
	struct mm_struct *view;

	mmap_read_lock(mm);
	if (mm_has_views(mm))
		list_for_each_entry(view, &mm->mmview_group->members,
				    mmview_node)
			atomic_or(atomic_read(&mm->membarrier_state),
				  &view->membarrier_state);
	mmap_read_unlock(mm);
}

#ifdef CONFIG_MEMCG
/*
 * Hand @view, which the exiting task @p owns, to another thread of @p's process that runs in
 * a view of @group and has not passed exit_mm() or exec_mmap(): that thread will find itself
 * the owner when it gets there (it changes its mm under task_lock(), which orders it after
 * this). With no such thread the process is ending, and the owner becomes NULL, as
 * mm_update_next_owner() leaves an mm without users. The owner may run in another view, so
 * there is no lru_gen_migrate_mm(), which expects owner->mm == @view: views are not on the
 * multi-gen LRU's mm list, and the base's memcg does not change (one process, one cgroup).
 */
static void mmview_hand_owner(struct mmview_group *group, struct mm_struct *view,
			      struct task_struct *p)
{
	struct task_struct *t;

	rcu_read_lock();
	for_each_thread(p, t) {
		if (t == p)
			continue;
		task_lock(t);
		if (t->mm && READ_ONCE(t->mm->mmview_group) == group) {
			WRITE_ONCE(view->owner, t);
			task_unlock(t);
			rcu_read_unlock();
			return;
		}
		task_unlock(t);
	}
	rcu_read_unlock();
	WRITE_ONCE(view->owner, NULL);
}

/**
 * mmview_next_owner - hand every view an exiting task owns to a live thread
 * @mm: the view the task leaves by exit or exec
 *
 * mm->owner is the task whose memory cgroup a view's pages and page tables are charged to.
 * A view's owner is the thread that created it, which may run, and exit, in another view.
 * mm_update_next_owner() looks only at the mm the task leaves and only for tasks running in
 * it, which a view may have none of: the owner would be left pointing at a freed task, or
 * NULL, which charges the root cgroup and escapes the process's limit. The threads of a
 * process share its memory cgroup, so any of them will do for any view.
 *
 * Return: true if @mm is in a group; mm_update_next_owner() has nothing more to do.
 */
bool mmview_next_owner(struct mm_struct *mm)
{
	struct mmview_group *group = READ_ONCE(mm->mmview_group);
	struct mm_struct *view;
	int idx;

	if (!group)
		return false;
	idx = srcu_read_lock(&mmview_srcu);
	list_for_each_entry_srcu(view, &group->members, mmview_node,
				 srcu_read_lock_held(&mmview_srcu))
		if (READ_ONCE(view->owner) == current)
			mmview_hand_owner(group, view, current);
	srcu_read_unlock(&mmview_srcu, idx);
	return true;
}
#endif /* CONFIG_MEMCG */

/*
 * The lock that orders changes of process-wide mm flags against CREATE: the arg_lock of
 * the group's first view, which is the process's mm from before its first CREATE, so the
 * same lock serves before and after the group exists.
 */
static spinlock_t *mmview_flags_lock(struct mm_struct *mm)
{
	struct mmview_group *group = READ_ONCE(mm->mmview_group);

	return group ? &group->lock_mm->arg_lock : &mm->arg_lock;
}

/**
 * mmview_set_mm_flags - change process-wide bits of mm->flags in every view
 * @mm: the caller's mm
 * @mask: the bits to clear
 * @bits: the bits to set
 *
 * Dumpability, the core dump filter and memory-deny-write-execute belong to the process: a
 * view left dumpable after setuid() could be ptrace()d and its memory read, a view without
 * MDWE could map writable code, and a core dump would depend on the view of the thread that
 * dumps. Each change goes to every view under mmview_flags_lock(), which CREATE
 * holds while it copies these bits into a new view and links it (mmview_link_view()).
 * Uprobes set MMF_HAS_UPROBES here: a breakpoint written into the base's text shows in
 * every view that mirrors it, and a thread that hits it must find its view marked.
 */
void mmview_set_mm_flags(struct mm_struct *mm, unsigned long mask,
			 unsigned long bits)
{
	spinlock_t *lock = mmview_flags_lock(mm);
	struct mmview_group *group;
	struct mm_struct *view;
	int idx;

	idx = srcu_read_lock(&mmview_srcu);
	spin_lock(lock);
	group = READ_ONCE(mm->mmview_group);
	if (!group)
		set_mask_bits(&mm->flags, mask, bits);
	else
		list_for_each_entry_srcu(view, &group->members, mmview_node,
					 srcu_read_lock_held(&mmview_srcu))
			set_mask_bits(&view->flags, mask, bits);
	spin_unlock(lock);
	srcu_read_unlock(&mmview_srcu, idx);
}

/**
 * mmview_oom_reap - reap every view of a dying process
 * @mm: the view the OOM reaper or process_mrelease() chose, with the mmap lock held for
 *	reading
 * @reap: reaps one mm (__oom_reap_task_mm()); false if part of it must be retried
 *
 * Reaping only @mm would free little: the pages of shared private ranges are the base's,
 * and the other views only mirror them. Every thread of the process is dying, and so is every
 * other process using one of its views (a vfork child): the OOM killer kills them with it,
 * and process_mrelease() reaps only when task_will_free_mem() found them all exiting
 * (both compare groups through process_shares_mm()). So every view is reaped. All of
 * them become MMF_UNSTABLE first: a view's fault on a reaped page is a fault in the base,
 * which must fail rather than map a fresh zero page. The base is reaped last, after the
 * pages the other views own; its invalidations clear whatever mirrors are left. The lock
 * keeps every member's page tables: a view leaves the member list under the write lock,
 * before its exit_mmap(). @mm itself may have left already, on its way to exit_mmap().
 *
 * Return: true if every view was reaped.
 */
bool mmview_oom_reap(struct mm_struct *mm, mmview_reap_fn reap)
{
	struct mmview_group *group = READ_ONCE(mm->mmview_group);
	struct mm_struct *view, *base = NULL;
	bool reaped = true;

	if (!group)
		return reap(mm);
	mmap_assert_locked(mm);
	list_for_each_entry(view, &group->members, mmview_node)
		set_bit(MMF_UNSTABLE, &view->flags);
	if (!test_bit(MMVIEW_MM_LINKED, &mm->mmview_flags))
		reaped = reap(mm);
	list_for_each_entry(view, &group->members, mmview_node) {
		if (view == group->base)
			base = view;
		else if (!test_bit(MMF_OOM_SKIP, &view->flags))
			reaped &= reap(view);
	}
	if (base && !test_bit(MMF_OOM_SKIP, &base->flags))
		reaped &= reap(base);
	return reaped;
}

/*
 * Mirrors and replays seen from other mm code: smaps, mremap.
 */

/**
 * mmview_mirror_page - the page a view's mirror maps, for /proc/PID/smaps
 * @vma: a VMA of a view
 * @pte: a present entry of @vma, read under its page table lock
 *
 * The page is the base's for as long as the lock is held: the notifier clears mirrors
 * under it before the base lets the page go.
 *
 * Return: the page, or NULL if @pte is not a mirror of a normal page.
 */
struct page *mmview_mirror_page(struct vm_area_struct *vma, pte_t pte)
{
	unsigned long pfn = pte_pfn(pte);

	if (!mmview_vma_mirrors(vma) || !pte_special(pte) || !pfn_valid(pfn) ||
	    is_zero_pfn(pfn))
		return NULL;
	return pfn_to_page(pfn);
}

/**
 * mmview_mremap_prepare - check that mremap() can run in every view, and clear the mirrors it
 *	would move
 * @mm: the caller's view (current->mm), with the group's mmap write lock held
 * @addr: the old address, page aligned
 * @old_len: the length of the old range
 * @vma_len: the length from @addr that mremap() needs inside one VMA, or 0
 *
 * VMA boundaries may differ between views; a range that is one VMA in the caller's view
 * must be one in every view, or the views would resize or move different ranges. move_vma()
 * also needs room for four more VMAs. Then the mirrors of the old range are cleared in
 * every view: moved with their page tables before the base's pages move, they would escape
 * the base's invalidations at the old address. They refault after the move.
 *
 * Return: 0, -EFAULT if the range spans a VMA boundary in some view, or -ENOMEM.
 */
int mmview_mremap_prepare(struct mm_struct *mm, unsigned long addr,
			  unsigned long old_len, unsigned long vma_len)
{
	struct mmview_group *group = mm->mmview_group;
	struct mm_struct *view;

	mmap_assert_write_locked(mm);
	list_for_each_entry(view, &group->members, mmview_node) {
		struct vm_area_struct *vma = vma_lookup(view, addr);

		if (!atomic_read(&view->mm_users))
			continue;
		if (view->map_count + 4 > sysctl_max_map_count)
			return -ENOMEM;
		if (vma_len && (!vma || addr + vma_len > vma->vm_end))
			return -EFAULT;
	}
	if (old_len)
		mmview_walk_mirrors(group, addr, addr + old_len, MMVIEW_ZAP,
				    true);
	return 0;
}

/**
 * mmview_replay_defer - keep nested layout changes in the caller's view
 * @mm: the caller's view (current->mm), with the group's mmap write lock held
 *
 * An operation that replays itself as a whole (mremap()) calls munmap internally; those
 * unmaps must not be replayed on their own. Until mmview_replay_resume(), mmview_replays()
 * is false.
 *
 * Return: true if the operation must be replayed (the caller must then resume).
 */
bool mmview_replay_defer(struct mm_struct *mm)
{
	mmap_assert_write_locked(mm);

	if (!mmview_replays(mm))
		return false;
	mm->mmview_group->replaying = true;
	return true;
}

/**
 * mmview_replay_resume - end mmview_replay_defer()
 * @mm: the caller's view
 */
void mmview_replay_resume(struct mm_struct *mm)
{
	mm->mmview_group->replaying = false;
}

/*
 * Unshared ranges: MMVIEW_UNSHARE and MMVIEW_SHARE.
 */

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

	mmap_assert_locked(mm);
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
 * boundaries like mprotect(). The whole range is checked before any VMA changes. Only a
 * process with a single live view may do it: views' layouts must stay identical.
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

	ret = -EPERM;
	if (mm_has_views(mm) && mm->mmview_group->nr_live > 1)
		goto out;
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

/*
 * Group and view lifetime.
 */

/**
 * mmview_create_check - refuse what views cannot keep in sync (mmview(2), EOPNOTSUPP)
 * @mm: the caller's view, with the mmap write lock held
 *
 * Return: 0, or -EOPNOTSUPP.
 */
static int mmview_create_check(struct mm_struct *mm)
{
	VMA_ITERATOR(vmi, mm, 0);
	struct vm_area_struct *vma;
	struct task_struct *t;
	int ret = 0;

	mmap_assert_write_locked(mm);
	/* KSM merges pages behind the base's back; secondary MMUs would pin a view. */
	if (test_bit(MMF_VM_MERGEABLE, &mm->flags) ||
	    test_bit(MMF_VM_MERGE_ANY, &mm->flags))
		return -EOPNOTSUPP;
	if (!mm_has_views(mm) && mm_has_notifiers(mm))
		return -EOPNOTSUPP;
#ifdef CONFIG_AIO
	if (rcu_access_pointer(mm->ioctx_table))
		return -EOPNOTSUPP;
#endif
#ifdef CONFIG_IO_URING
	rcu_read_lock();
	for_each_thread(current, t) {
		if (READ_ONCE(t->io_uring)) {
			ret = -EOPNOTSUPP;
			break;
		}
	}
	rcu_read_unlock();
	if (ret)
		return ret;
#endif
	for_each_vma(vmi, vma) {
		if (is_vm_hugetlb_page(vma) || userfaultfd_armed(vma))
			return -EOPNOTSUPP;
		/*
		 * What the mmap replay refuses: device mappings and mappings of other
		 * files than regular ones (a perf ring buffer, whose pinned_vm charge is
		 * per mm, a socket's ring). The vvar page and the vDSO have no file and
		 * refault per view.
		 */
		if (vma->vm_file && mmview_mmap_refused(vma))
			return -EOPNOTSUPP;
	}
	return 0;
}

/**
 * mmview_group_create - make @mm the base of a new group
 * @mm: the caller's mm, with its mmap write lock held; no group yet
 *
 * Registers the notifier that keeps mirrors coherent, turns THP off (views mirror 4 KiB
 * entries), takes the group's reference on the base and publishes the group. From then on
 * the process's faults take the mmap lock, and every VMA is write-locked here so that no
 * per-VMA-lock fault is still running.
 *
 * Return: 0 or a negative errno.
 */
static int mmview_group_create(struct mm_struct *mm)
{
	VMA_ITERATOR(vmi, mm, 0);
	struct vm_area_struct *vma;
	struct mmview_group *group;
	int ret;

	mmap_assert_write_locked(mm);
	group = kzalloc(sizeof(*group), GFP_KERNEL_ACCOUNT);
	if (!group)
		return -ENOMEM;
	group->lock_mm = mm;
	group->base = mm;
	group->signal = current->signal;
	xa_init(&group->views);
	INIT_LIST_HEAD(&group->members);
	init_waitqueue_head(&group->invalidated);
	group->next_id = MMVIEW_BASE_ID + 1;
	ret = xa_insert(&group->views, MMVIEW_BASE_ID, mm, GFP_KERNEL_ACCOUNT);
	if (ret)
		goto free;
	ret = mmview_notifier_register(group, mm);
	if (ret)
		goto free;

	set_bit(MMF_DISABLE_THP, &mm->flags);
	mmget(mm);
	mm->mmview_id = MMVIEW_BASE_ID;
	list_add_tail_rcu(&mm->mmview_node, &group->members);
	set_bit(MMVIEW_MM_LINKED, &mm->mmview_flags);
	group->nr_live = 1;
	WRITE_ONCE(mm->mmview_lock, &mm->__mmap_lock);
	/* Readers of the group pointer without the lock see it fully set up. */
	smp_store_release(&mm->mmview_group, group);

	for_each_vma(vmi, vma)
		vma_start_write(vma);
	return 0;

free:
	xa_destroy(&group->views);
	kfree(group);
	return ret;
}

/**
 * mmview_copy_vmas - give a new view a copy of every VMA of @src
 * @view: the new view, empty, in @src's group
 * @src: the caller's view, with the group's mmap write lock held
 *
 * Like dup_mmap(), but a view is not a fork: VM_DONTCOPY, VM_WIPEONFORK and VM_LOCKED are
 * kept. Shared private VMAs get no anon_vma and no PTEs here (their pages stay the base's;
 * mmview_fill_mirrors() maps them); unshared and other VMAs are copied with fork semantics.
 *
 * Return: 0 or a negative errno; on error the tree is marked like dup_mmap()'s so that
 * exit_mmap() releases only what was copied.
 */
static int mmview_copy_vmas(struct mm_struct *view, struct mm_struct *src)
{
	VMA_ITERATOR(vmi, view, 0);
	struct vm_area_struct *mpnt, *tmp;
	int ret;

	mmap_assert_write_locked(src);
	view->total_vm = src->total_vm;
	view->data_vm = src->data_vm;
	view->exec_vm = src->exec_vm;
	view->stack_vm = src->stack_vm;
	view->locked_vm = src->locked_vm;

	ret = __mt_dup(&src->mm_mt, &view->mm_mt, GFP_KERNEL);
	if (ret)
		return ret;

	mt_clear_in_rcu(vmi.mas.tree);
	for_each_vma(vmi, mpnt) {
		struct file *file;

		/* As dup_mmap(): a killed caller stops copying under the group's lock. */
		if (fatal_signal_pending(current)) {
			ret = -EINTR;
			goto fail;
		}
		vma_start_write(mpnt);
		if ((mpnt->vm_flags & VM_ACCOUNT) &&
		    security_vm_enough_memory_mm(src, vma_pages(mpnt))) {
			ret = -ENOMEM;
			goto fail;
		}
		tmp = vm_area_dup(mpnt);
		if (!tmp) {
			ret = -ENOMEM;
			goto unaccount;
		}
		if (unlikely(tmp->vm_flags & VM_PFNMAP))
			untrack_pfn_clear(tmp);
		ret = vma_dup_policy(mpnt, tmp);
		if (ret)
			goto free_vma;
		tmp->vm_mm = view;
		if (mmview_vma_mirrors(tmp)) {
			tmp->anon_vma = NULL;
		} else if (anon_vma_fork(tmp, mpnt)) {
			ret = -ENOMEM;
			goto put_policy;
		}

		/* No allocation: __mt_dup() made the tree. */
		vma_iter_bulk_store(&vmi, tmp);
		view->map_count++;
		if (tmp->vm_ops && tmp->vm_ops->open)
			tmp->vm_ops->open(tmp);

		file = tmp->vm_file;
		if (file) {
			struct address_space *mapping = file->f_mapping;

			get_file(file);
			i_mmap_lock_write(mapping);
			if (vma_is_shared_maywrite(tmp))
				mapping_allow_writable(mapping);
			flush_dcache_mmap_lock(mapping);
			vma_interval_tree_insert_after(tmp, mpnt, &mapping->i_mmap);
			flush_dcache_mmap_unlock(mapping);
			i_mmap_unlock_write(mapping);
		}

		if (!mmview_vma_mirrors(tmp)) {
			ret = copy_page_range(tmp, mpnt);
			if (ret) {
				mpnt = vma_next(&vmi);
				goto fail;
			}
		}
	}
	vma_iter_free(&vmi);
	mt_set_in_rcu(vmi.mas.tree);
	return 0;

put_policy:
	mpol_put(vma_policy(tmp));
free_vma:
	vm_area_free(tmp);
unaccount:
	if (mpnt->vm_flags & VM_ACCOUNT)
		vm_unacct_memory(vma_pages(mpnt));
fail:
	vma_iter_free(&vmi);
	if (mpnt) {
		mas_set_range(&vmi.mas, mpnt->vm_start, mpnt->vm_end - 1);
		mas_store(&vmi.mas, XA_ZERO_ENTRY);
		set_bit(MMF_OOM_SKIP, &view->flags);
	}
	set_bit(MMF_UNSTABLE, &view->flags);
	return ret;
}

/*
 * Mirror every present base PTE of [@start, @end) in @vma, a mirroring VMA of a view, with
 * the group's mmap lock held. Base PMDs that were never populated are skipped. Returns 0,
 * or -ENOMEM.
 */
static int mmview_mirror_range(struct mmview_group *group, struct vm_area_struct *vma,
			       unsigned long start, unsigned long end)
{
	struct vm_area_struct *base_vma = vma_lookup(group->base, start);
	unsigned long addr, next;

	mmap_assert_locked(vma->vm_mm);
	if (WARN_ON_ONCE(!base_vma))
		return 0;
	for (addr = start; addr < end; addr = next) {
		next = pmd_addr_end(addr, end);
		if (addr >= base_vma->vm_end) {
			base_vma = vma_lookup(group->base, addr);
			if (WARN_ON_ONCE(!base_vma))
				break;
		}
		next = min(next, base_vma->vm_end);
		if (!mm_find_pmd(group->base, addr))
			continue;
		if (mmview_mirror_pmd(group, vma->vm_mm, base_vma, addr, next,
				      false, 0) == -ENOMEM)
			return -ENOMEM;
		cond_resched();
	}
	return 0;
}

/**
 * mmview_populate_mirrors - map a view's mirrors of a range it just populated
 * @vma: a VMA of the caller's view, with the group's mmap lock held
 * @start: start of the range populate_vma_page_range() faulted in
 * @end: its end
 *
 * mlock(), mlockall(), MAP_POPULATE and MADV_POPULATE_* fault pages in so that later accesses
 * do not fault.
 * From a view, GUP faults the base's pages (mmview_gup_vma()); the caller's view maps them
 * too, or it would still take a fault per page, and show none of them in its smaps Rss.
 * Best effort: a mirror that cannot be mapped now is mapped by the next fault.
 */
void mmview_populate_mirrors(struct vm_area_struct *vma, unsigned long start,
			     unsigned long end)
{
	struct mmview_group *group;

	mmap_assert_locked(vma->vm_mm);
	if (!mmview_vma_mirrors(vma))
		return;
	group = vma->vm_mm->mmview_group;
	if (!test_bit(MMVIEW_GROUP_BASE_GONE, &group->flags))
		mmview_mirror_range(group, vma, start, end);
}

/**
 * mmview_populate_range - mmview_populate_mirrors() for every VMA of a range
 * @mm: the caller's view, with the group's mmap lock held
 * @start: start of the range faultin_page_range() faulted in (MADV_POPULATE_READ/WRITE)
 * @end: its end
 */
void mmview_populate_range(struct mm_struct *mm, unsigned long start,
			   unsigned long end)
{
	VMA_ITERATOR(vmi, mm, start);
	struct vm_area_struct *vma;

	mmap_assert_locked(mm);
	if (!test_bit(MMVIEW_MM_MIRRORS, &mm->mmview_flags))
		return;
	for_each_vma_range(vmi, vma, end)
		mmview_populate_mirrors(vma, max(start, vma->vm_start),
					min(end, vma->vm_end));
}

/**
 * mmview_fill_mirrors - map a new view's shared private ranges
 * @group: the group
 * @view: the new view, linked into the group, with the group's mmap write lock held
 *
 * Mirrors every present 4 KiB base PTE, so threads that migrate find their working set
 * mapped. Cheap per page (no rmap, no reference), and it walks only populated page tables.
 * Entries skipped here (an invalidation in flight, a huge PMD) are mirrored on first fault.
 *
 * Return: 0 or -ENOMEM.
 */
static int mmview_fill_mirrors(struct mmview_group *group, struct mm_struct *view)
{
	VMA_ITERATOR(vmi, view, 0);
	struct vm_area_struct *vma;

	mmap_assert_write_locked(view);
	for_each_vma(vmi, vma) {
		if (!mmview_vma_mirrors(vma))
			continue;
		if (mmview_mirror_range(group, vma, vma->vm_start, vma->vm_end))
			return -ENOMEM;
	}
	return 0;
}

/*
 * Make @view, a new copy of @src, a member of @group. Process-wide flags are copied again
 * under the lock that orders their changes (mmview_set_mm_flags()): a change made since
 * mm_alloc_view() copied them either is in @src by now or will find @view on the list.
 * Linked with its lock sequence begun, as every member's is under the write lock.
 */
static void mmview_link_view(struct mmview_group *group, struct mm_struct *view,
			     struct mm_struct *src)
{
	spinlock_t *lock = mmview_flags_lock(src);

	do_raw_write_seqcount_begin(&view->mm_lock_seq);
	spin_lock(lock);
	set_mask_bits(&view->flags, MMVIEW_PROCESS_FLAGS,
		      src->flags & MMVIEW_PROCESS_FLAGS);
	list_add_tail_rcu(&view->mmview_node, &group->members);
	spin_unlock(lock);
	set_bit(MMVIEW_MM_LINKED, &view->mmview_flags);
}

/**
 * mmview_create - MMVIEW_CREATE
 *
 * Creates a view that is a copy of the caller's; the caller does not move.
 *
 * Only a thread of the group's process creates views: the group ends with that process, and
 * with it the creation references of the views. A vfork child, another process sharing the
 * mm (CLONE_VM) and a task still running in a view after its process ended are refused, or
 * the views they made would never be freed.
 *
 * Like dup_mm(), it holds uprobes' dup_mmap_sem, so that a probe registered or removed
 * meanwhile finds the new view's VMAs, and it flushes the caller's TLB once the copy of the
 * unshared ranges has write-protected their pages, so that no thread keeps writing through a
 * stale entry into a page the new view now shares.
 *
 * Return: the new view's id, or -ENOMEM, -ENOSPC (live-view limit), -EOPNOTSUPP (sec.
 * "Refusals" of mmview(2)), -EBUSY (not a thread of the group's process), -EINTR.
 */
static long mmview_create(void)
{
	struct mm_struct *mm = current->mm, *view = NULL;
	struct mmview_group *group;
	long ret;

	uprobe_start_dup_mmap();
	if (mmap_write_lock_killable(mm)) {
		uprobe_end_dup_mmap();
		return -EINTR;
	}
	ret = mmview_create_check(mm);
	if (ret)
		goto unlock;
	if (!mm_has_views(mm)) {
		ret = -EBUSY;
		if (current->vfork_done || test_bit(MMF_MULTIPROCESS, &mm->flags))
			goto unlock;
		ret = mmview_group_create(mm);
		if (ret)
			goto unlock;
	}
	group = mm->mmview_group;
	if (group->signal != current->signal ||
	    test_bit(MMVIEW_GROUP_DEAD, &group->flags)) {
		ret = -EBUSY;
		goto unlock;
	}
	if (group->nr_live >= READ_ONCE(sysctl_mmview_max_views)) {
		ret = -ENOSPC;
		goto unlock;
	}

	view = mm_alloc_view(mm);
	if (!view) {
		ret = -ENOMEM;
		goto unlock;
	}
	/* The shared lock and the group, before the view has a VMA. */
	view->mmview_lock = &group->lock_mm->__mmap_lock;
	view->mmview_group = group;
	mmgrab(group->lock_mm);
	mt_set_external_lock(&view->mm_mt, view->mmview_lock);
	set_bit(MMVIEW_MM_MIRRORS, &view->mmview_flags);

	ret = mmview_copy_vmas(view, mm);
	/* As dup_mmap(): the copy write-protected the caller's COW pages. */
	flush_tlb_mm(mm);
	if (!ret)
		ret = arch_dup_mmap(mm, view);
	if (!ret)
		ret = uprobe_copy_xol_area(view, mm);
	if (!ret) {
		view->mmview_id = group->next_id;
		ret = xa_insert(&group->views, view->mmview_id, view,
				GFP_KERNEL_ACCOUNT);
	}
	if (ret)
		goto unlock;
	group->next_id++;
	group->nr_live++;
	view->hiwater_rss = get_mm_rss(view);
	view->hiwater_vm = view->total_vm;
	mmview_link_view(group, view, mm);

	ret = mmview_fill_mirrors(group, view);
	if (ret) {
		xa_erase(&group->views, view->mmview_id);
		goto unlock;
	}
	ret = view->mmview_id;
	view = NULL;	/* its creation reference is the group's now */
unlock:
	mmap_write_unlock(mm);
	uprobe_end_dup_mmap();
	/* Not under the lock: the view's exit_mmap() takes it. */
	if (view)
		mmput(view);
	return ret;
}

/**
 * mmview_delete - MMVIEW_DELETE
 * @id: the view to delete
 *
 * Drops the view's creation reference; it is freed when its last thread leaves.
 *
 * Return: 0, -EPERM for the base, -EINVAL for an id that names no view (or a deleted one).
 */
static long mmview_delete(long id)
{
	struct mm_struct *mm = current->mm, *view;
	struct mmview_group *group;

	if (!mm_has_views(mm))
		return id == MMVIEW_BASE_ID ? -EPERM : -EINVAL;
	if (id < 0)
		return -EINVAL;
	group = mm->mmview_group;
	if (mmap_write_lock_killable(mm))
		return -EINTR;
	view = xa_load(&group->views, id);
	if (!view || view == group->base) {
		mmap_write_unlock(mm);
		return view ? -EPERM : -EINVAL;
	}
	xa_erase(&group->views, id);
	mmap_write_unlock(mm);
	mmput(view);
	return 0;
}

/**
 * mmview_migrate - MMVIEW_MIGRATE
 * @id: the view to move the calling thread into
 *
 * Modelled on exec_mmap(), without its page-table or mm initialisation: O(1), no mmap lock.
 * The rseq concurrency id is returned to the old view's pool and taken from the new one's.
 * Migrating into the view one is in does nothing and returns its id, even if it is deleted.
 *
 * Return: the id of the view the caller left, or -EINVAL for an id that names no view.
 */
static long mmview_migrate(long id)
{
	struct mm_struct *old = current->mm, *new = NULL;
	struct mmview_group *group;
	long old_id = old->mmview_id;

	if (id == old_id)
		return id;
	if (!mm_has_views(old) || id < 0)
		return -EINVAL;
	group = old->mmview_group;

	/* A view in the array holds its creation reference: it cannot be freed under us. */
	xa_lock(&group->views);
	new = xa_load(&group->views, id);
	if (new && !mmget_not_zero(new))
		new = NULL;
	xa_unlock(&group->views);
	if (!new)
		return -EINVAL;

	mmview_enter(old, new);
	lru_gen_use_mm(new);

	mmput(old);
	return old_id;
}

/*
 * Once the group's process has ended (MMVIEW_GROUP_DEAD): take the group's reference on the
 * base out of @group->views, with the group's write lock held, for the caller to mmput(),
 * when no other view is left. Until then a vfork child of the process may still run in a
 * view, and its shared private memory is the base's.
 */
static struct mm_struct *mmview_take_base_ref(struct mmview_group *group)
{
	struct mm_struct *base = group->base;

	mmap_assert_write_locked(group->lock_mm);
	if (group->nr_live > 1 || xa_load(&group->views, base->mmview_id) != base)
		return NULL;
	xa_erase(&group->views, base->mmview_id);
	return base;
}

/* The next creation reference of a view to drop at the group's end, or the base's. */
static struct mm_struct *mmview_take_ref(struct mmview_group *group)
{
	struct mm_struct *view;
	unsigned long id;

	xa_for_each(&group->views, id, view) {
		if (view != group->base) {
			xa_erase(&group->views, id);
			return view;
		}
	}
	return mmview_take_base_ref(group);
}

/**
 * mmview_group_end - drop the group's references when its process ends
 * @group: the group
 *
 * Views live no longer than their process: the creation references of the views not yet
 * deleted are dropped, and each view is freed when its last (temporary) user leaves. The
 * reference on the base is dropped with them, or by the last other view to leave
 * (mmview_mm_exit()).
 */
static void mmview_group_end(struct mmview_group *group)
{
	struct mm_struct *view;

	if (test_and_set_bit(MMVIEW_GROUP_DEAD, &group->flags))
		return;
	for (;;) {
		mmap_write_lock(group->lock_mm);
		view = mmview_take_ref(group);
		mmap_write_unlock(group->lock_mm);
		if (!view)
			break;
		mmput(view);
	}
}

/**
 * mmview_task_exit - a task leaves a view by exit or exec
 * @mm: the view it left
 *
 * Called after the task's mm pointer changed. When the last thread of the group's process
 * exits, or a thread of it execs (de_thread() left it alone), the group ends. Tasks of
 * other processes (a vfork child) only drop their own reference.
 */
void mmview_task_exit(struct mm_struct *mm)
{
	struct mmview_group *group = READ_ONCE(mm->mmview_group);

	if (!group || current->signal != group->signal)
		return;
	if (!current->mm && atomic_read(&current->signal->live))
		return;
	mmview_group_end(group);
}

/**
 * mmview_copy_mm - refuse the clones views do not handle
 * @clone_flags: CLONE_*
 * @oldmm: the parent's view
 *
 * A thread or a vfork child joins its creator's view. A fork from any view copies the shared
 * private ranges from the base and the rest from the view (mmview_fork_prepare()). Another
 * process sharing a view (CLONE_VM without CLONE_THREAD or CLONE_VFORK) is refused.
 *
 * Return: 0 or -EBUSY.
 */
int mmview_copy_mm(unsigned long clone_flags, struct mm_struct *oldmm)
{
	if (!mm_has_views(oldmm))
		return 0;
	if (!(clone_flags & CLONE_VM))
		return 0;	/* dup_mmap() copies from the base too */
	if (!(clone_flags & (CLONE_THREAD | CLONE_VFORK)))
		return -EBUSY;
	return 0;
}

/**
 * mmview_mm_exit - a view's last user left; called before its exit_mmap()
 * @mm: the view
 *
 * The base stops being mirrored: its notifier is unregistered, which clears every mirror.
 * The view leaves the group's member list, and waits until no notifier walks its page
 * tables, which exit_mmap() is about to free. After the group's end, the last view but
 * the base to leave drops the group's reference on the base.
 */
void mmview_mm_exit(struct mm_struct *mm)
{
	struct mmview_group *group = mm->mmview_group;
	struct mm_struct *base_ref = NULL;

	if (!group)
		return;
	if (mm == group->base) {
		struct mmview_notifier *n = group->notifier;

		group->notifier = NULL;
		mmview_notifier_unregister(n, mm);
	}
	if (!test_bit(MMVIEW_MM_LINKED, &mm->mmview_flags))
		return;
	mmap_write_lock(mm);
	list_del_rcu(&mm->mmview_node);
	clear_bit(MMVIEW_MM_LINKED, &mm->mmview_flags);
	group->nr_live--;
	if (xa_load(&group->views, mm->mmview_id) == mm)
		xa_erase(&group->views, mm->mmview_id);
	if (test_bit(MMVIEW_GROUP_DEAD, &group->flags))
		base_ref = mmview_take_base_ref(group);
	mmap_write_unlock(mm);
	synchronize_srcu(&mmview_srcu);
	if (base_ref)
		mmput(base_ref);
}

/**
 * mmview_mm_free - a view's mm_struct is freed; called from __mmdrop()
 * @mm: the view
 *
 * Every view but the first holds a reference on the first, whose mmap lock they use; the
 * group is freed with the first view.
 */
void mmview_mm_free(struct mm_struct *mm)
{
	struct mmview_group *group = mm->mmview_group;

	if (!group)
		return;
	if (mm != group->lock_mm) {
		mmdrop(group->lock_mm);
		return;
	}
	xa_destroy(&group->views);
	kfree(group);
}

/*
 * MMVIEW_SWITCH_BASE.
 */

/* A range whose pages the base owns and other views mirror. */
static bool mmview_vma_shared_private(const struct vm_area_struct *vma)
{
	return !(vma->vm_flags & (VM_MMVIEW_UNSHARED | VM_MAYSHARE | VM_SPECIAL |
				  VM_HUGETLB));
}

/**
 * mmview_switch_link - give @new's VMAs over @ovma the base's anon_vma
 * @new: the view that becomes the base, with the group's mmap write lock held
 * @ovma: a shared private VMA of the base
 *
 * VMA boundaries may differ between views (a view's mirror ranges have no anon_vma, so they
 * merge where the base's do not): @new's VMAs are split at @ovma's boundaries first. Each is
 * then linked into @ovma's anon_vma tree, as __split_vma() does, so that rmap finds the pages
 * there once they move. An anon_vma a mirror range got of its own (stack growth) holds no
 * page and is dropped.
 *
 * Return: 0, -ENOMEM, or -EINVAL if the ranges differ (a bug: WARNs).
 */
static int mmview_switch_link(struct mm_struct *new, struct vm_area_struct *ovma)
{
	unsigned long addr = ovma->vm_start;

	mmap_assert_write_locked(new);
	while (addr < ovma->vm_end) {
		VMA_ITERATOR(vmi, new, addr);
		struct vm_area_struct *nvma = vma_find(&vmi, addr + 1);
		int ret;

		if (WARN_ON_ONCE(!nvma || nvma->vm_start > addr ||
				 !mmview_vma_shared_private(nvma)))
			return -EINVAL;
		if (nvma->vm_start < addr) {
			ret = split_vma(&vmi, nvma, addr, 1);
			if (ret)
				return ret;
		}
		if (nvma->vm_end > ovma->vm_end) {
			ret = split_vma(&vmi, nvma, ovma->vm_end, 0);
			if (ret)
				return ret;
		}
		if (ovma->anon_vma && nvma->anon_vma != ovma->anon_vma) {
			if (nvma->anon_vma)
				unlink_anon_vmas(nvma);
			nvma->anon_vma = ovma->anon_vma;
			if (anon_vma_clone(nvma, ovma)) {
				nvma->anon_vma = NULL;
				return -ENOMEM;
			}
		}
		addr = nvma->vm_end;
	}
	return 0;
}

/**
 * mmview_switch_prepare - everything MMVIEW_SWITCH_BASE can fail on, before it changes a PTE
 * @old: the base, with the group's mmap write lock held
 * @new: the view that becomes the base
 *
 * Splits the base's huge PMDs (views mirror 4 KiB entries), gives @new a PTE table wherever
 * the base has one (no allocation may happen once every rmap lock is held), and links @new's
 * shared private VMAs into the base's anon_vma trees (mmview_switch_link()).
 *
 * Return: 0, -ENOMEM, or -EINVAL if the layouts differ (a bug: WARNs).
 */
static int mmview_switch_prepare(struct mm_struct *old, struct mm_struct *new)
{
	VMA_ITERATOR(vmi, old, 0);
	struct vm_area_struct *ovma;
	unsigned long addr;
	int ret;

	mmap_assert_write_locked(old);
	for_each_vma(vmi, ovma) {
		if (!mmview_vma_shared_private(ovma))
			continue;
		for (addr = ovma->vm_start; addr < ovma->vm_end;
		     addr = pmd_addr_end(addr, ovma->vm_end)) {
			pmd_t *pmd = mm_find_pmd(old, addr), val;
			pgd_t *pgd;
			p4d_t *p4d;
			pud_t *pud;

			if (!pmd)
				continue;
			val = pmdp_get_lockless(pmd);
			if (pmd_none(val))
				continue;
			if (pmd_trans_huge(val) || pmd_devmap(val) || is_swap_pmd(val))
				split_huge_pmd(ovma, pmd, addr);
			pgd = pgd_offset(new, addr);
			p4d = p4d_alloc(new, pgd, addr);
			pud = p4d ? pud_alloc(new, p4d, addr) : NULL;
			pmd = pud ? pmd_alloc(new, pud, addr) : NULL;
			if (!pmd || pte_alloc(new, pmd))
				return -ENOMEM;
		}
		ret = mmview_switch_link(new, ovma);
		if (ret)
			return ret;
	}
	return 0;
}

/* The rss counter a non-present entry counts in, or -1. */
static int mmview_swap_counter(pte_t pte)
{
	swp_entry_t entry;

	if (pte_none(pte) || !is_swap_pte(pte))
		return -1;
	entry = pte_to_swp_entry(pte);
	if (!non_swap_entry(entry))
		return MM_SWAPENTS;
	if (is_pfn_swap_entry(entry))
		return mm_counter(pfn_swap_entry_folio(entry));
	return -1;
}

/**
 * mmview_switch_pmd - move the owning entries under one PMD from @ovma to @new
 * @ovma: the old base's VMA
 * @new: the new base, whose VMAs over the range are linked like @ovma
 * @addr: start address
 * @end: end address, within the PMD
 *
 * Every entry moves as it is (present, swap or migration): the page keeps its one mapping,
 * reference and rmap data, now in the new base, whose VMA is in the same anon_vma tree and
 * i_mmap tree. The old base keeps a mirror of each present entry. Dirty and accessed bits
 * of the new base's mirrors are merged in. rmap walkers are locked out by the caller.
 */
static void mmview_switch_pmd(struct vm_area_struct *ovma, struct mm_struct *new,
			      unsigned long addr, unsigned long end)
{
	struct mm_struct *old = ovma->vm_mm;
	pmd_t *opmd = mm_find_pmd(old, addr), *npmd = mm_find_pmd(new, addr);
	spinlock_t *optl, *nptl;	/* the two PTE table locks */
	pte_t *opte, *npte;

	if (!opmd || !npmd)
		return;
	opte = pte_offset_map_lock(old, opmd, addr, &optl);
	if (!opte)
		return;
	npte = pte_offset_map_nolock(new, npmd, addr, &nptl);
	if (WARN_ON_ONCE(!npte)) {
		pte_unmap_unlock(opte, optl);
		return;
	}
	spin_lock_nested(nptl, SINGLE_DEPTH_NESTING);
	for (; addr < end; addr += PAGE_SIZE, opte++, npte++) {
		pte_t oe = ptep_get(opte), ne = ptep_get(npte);
		struct page *page;
		int counter;

		if (pte_none(oe))
			continue;
		if (!pte_present(oe)) {
			ptep_get_and_clear(old, addr, opte);
			if (pte_present(ne))
				ptep_get_and_clear(new, addr, npte);
			set_pte_at(new, addr, npte, oe);
			counter = mmview_swap_counter(oe);
			if (counter >= 0) {
				add_mm_counter(old, counter, -1);
				add_mm_counter(new, counter, 1);
			}
			continue;
		}
		oe = ptep_get_and_clear(old, addr, opte);
		if (pte_present(ne)) {
			if (pte_dirty(ne))
				oe = pte_mkdirty(oe);
			if (pte_young(ne))
				oe = pte_mkyoung(oe);
		}
		page = vm_normal_page(ovma, addr, oe);
		if (page) {
			counter = mm_counter(page_folio(page));
			add_mm_counter(old, counter, -1);
			add_mm_counter(new, counter, 1);
		}
		set_pte_at(new, addr, npte, oe);
		set_pte_at(old, addr, opte, pte_mkspecial(pte_mkclean(oe)));
	}
	spin_unlock(nptl);
	pte_unmap(npte);
	pte_unmap_unlock(opte, optl);
}

/**
 * mmview_switch_base - MMVIEW_SWITCH_BASE
 *
 * Makes the caller's view the owner of shared private memory: the base's owning entries
 * move to it, and the old base keeps mirrors, like any other view; other views' mirrors stay
 * valid (same pages). Then the old base can be deleted like any view: the group's
 * reference on the base becomes its creation reference, and the caller's creation reference
 * becomes the group's. O(resident pages), under the write lock with every rmap lock of the
 * base held (mm_take_all_locks()), so reclaim and migration see either the old owner or the
 * new one.
 *
 * Return: the id of the caller's view, now the base; -EINVAL if it is deleted (or its
 * process has ended); -ENOMEM; -EINTR.
 */
static long mmview_switch_base(void)
{
	VMA_ITERATOR(vmi, current->mm, 0);
	struct mm_struct *new = current->mm, *old;
	struct mmview_notifier *old_notifier;
	struct mmview_group *group;
	struct vm_area_struct *ovma;
	long ret;

	if (!mm_has_views(new))
		return new->mmview_id;
	group = new->mmview_group;
	if (mmap_write_lock_killable(new))
		return -EINTR;
	old = group->base;
	ret = new->mmview_id;
	if (new == old)
		goto unlock;
	/*
	 * The caller's creation reference becomes the group's reference on the base: the
	 * view must still hold it, i.e. be in @group->views. Checked under the lock: a DELETE
	 * from another thread, or the end of the group (a vfork child outliving its process),
	 * drops it.
	 */
	ret = -EINVAL;
	if (xa_load(&group->views, new->mmview_id) != new)
		goto unlock;
	old_notifier = group->notifier;

	ret = mmview_switch_prepare(old, new);
	if (!ret)
		ret = mmview_notifier_register(group, new);
	if (!ret) {
		ret = mm_take_all_locks(old);
		if (ret) {
			mmview_notifier_unregister(group->notifier, new);
			group->notifier = old_notifier;
		}
	}
	if (ret) {
		/* Nothing moved; undo the anon_vma links of the view's VMAs. */
		for_each_vma(vmi, ovma)
			if (mmview_vma_mirrors(ovma) && ovma->anon_vma)
				unlink_anon_vmas(ovma);
		goto unlock;
	}

	/*
	 * Swap entries move to @new: swapoff finds them through mmlist, which holds every
	 * mm that swapped (as copy_nonpresent_pte() keeps it). Reclaim cannot swap more
	 * of @old out meanwhile: every rmap lock is held.
	 */
	if (!list_empty(&old->mmlist) && list_empty(&new->mmlist)) {
		spin_lock(&mmlist_lock);
		if (list_empty(&new->mmlist))
			list_add(&new->mmlist, &old->mmlist);
		spin_unlock(&mmlist_lock);
	}
	vma_iter_init(&vmi, old, 0);
	for_each_vma(vmi, ovma) {
		unsigned long addr, next;

		if (!mmview_vma_shared_private(ovma))
			continue;
		for (addr = ovma->vm_start; addr < ovma->vm_end; addr = next) {
			next = pmd_addr_end(addr, ovma->vm_end);
			mmview_switch_pmd(ovma, new, addr, next);
		}
	}
	clear_bit(MMVIEW_MM_MIRRORS, &new->mmview_flags);
	set_bit(MMVIEW_MM_MIRRORS, &old->mmview_flags);
	group->base = new;
	if (test_bit(MMF_HAS_PINNED, &old->flags))
		set_bit(MMF_HAS_PINNED, &new->flags);
	mm_drop_all_locks(old);

	/* The old base's VMAs are mirrors now: out of the anon_vma trees. */
	vma_iter_init(&vmi, old, 0);
	for_each_vma(vmi, ovma)
		if (mmview_vma_mirrors(ovma))
			unlink_anon_vmas(ovma);
	flush_tlb_mm(old);
	mmview_notifier_unregister(old_notifier, old);
	/*
	 * Notifier walks that began before the switch may still walk @new's page tables, which
	 * it may now free (__mmview_keeps_page_tables()).
	 */
	synchronize_srcu(&mmview_srcu);
	ret = new->mmview_id;
unlock:
	mmap_write_unlock(new);
	return ret;
}

/*
 * The system call.
 */

/**
 * sys_mmview - the mmview(2) system call
 * @op: one of the MMVIEW_* operations of <uapi/linux/mmview.h>
 * @arg1: first argument of @op (a view id or an address)
 * @arg2: second argument of @op (a length)
 *
 * Return: as documented for each operation in mmview(2); -EINVAL for an unknown @op or a
 * nonzero argument @op does not use.
 */
SYSCALL_DEFINE3(mmview, long, op, unsigned long, arg1, unsigned long, arg2)
{
	/* Arguments an operation does not use must be 0, so that they can be given a meaning. */
	switch (op) {
	case MMVIEW_CREATE:
	case MMVIEW_CURRENT:
	case MMVIEW_SWITCH_BASE:
		if (arg1 || arg2)
			return -EINVAL;
		break;
	case MMVIEW_DELETE:
	case MMVIEW_MIGRATE:
		if (arg2)
			return -EINVAL;
		break;
	}

	switch (op) {
	case MMVIEW_CREATE:
		return mmview_create();
	case MMVIEW_DELETE:
		return mmview_delete((long)arg1);
	case MMVIEW_CURRENT:
		return current->mm->mmview_id;
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
