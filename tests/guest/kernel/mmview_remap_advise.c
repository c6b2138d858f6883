// SPDX-License-Identifier: MIT
/*
 * The layout changes replayed after mmap and friends (docs/kernel.md, "Replays"):
 * mremap, madvise, mlock and mseal made in any view. Flag changes (MADV_DONTFORK, VM_LOCKED,
 * VM_SEALED, ...) hold in every view, read through /proc/thread-self/smaps in each; content
 * advice on shared private memory acts on the base, which owns the pages, so that every view
 * sees it; unshared ranges keep their own contents; mremap moves and resizes every view alike
 * and shared memory stays one memory at its new address.
 *
 * Each case runs in a child process of its own (views_case.h).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#include <atlas/mmview.h>

#include "replay_case.h"
#include "views_case.h"

/* Debian 12's headers predate mseal (Linux 6.10); x86-64 numbers it 462. */
#ifndef SYS_mseal
#define SYS_mseal 462
#endif

/*
 * The VmFlags line of the calling thread's view for the VMA that contains @addr (smaps), as
 * " rd wr mr ..."; an empty string if no VMA contains it.
 */
static const char *vm_flags_of(const void *addr)
{
	static char flags[256];
	const char *field = smaps_field(addr, "VmFlags:");

	flags[0] = '\0';
	if (field)
		snprintf(flags, sizeof(flags), "%s ", field);
	return flags;
}

/* Whether the VMA at @addr has the smaps flag @flag ("dc", "lo", "sl", ...) in the view. */
static bool has_flag(const void *addr, const char *flag)
{
	char needle[8];

	snprintf(needle, sizeof(needle), " %s ", flag);
	return strstr(vm_flags_of(addr), needle) != NULL;
}

/* Whether every view in @ids agrees that the VMA at @addr has (or lacks) @flag. */
static bool flag_in_views(const long *ids, int n, const void *addr, const char *flag, bool want)
{
	long home = mmview_current();
	bool all = true;
	int i;

	for (i = 0; i < n; i++) {
		mmview_migrate(ids[i]);
		if (has_flag(addr, flag) != want) {
			printf("#   view %ld: VmFlags%s(%s %s)\n", ids[i], vm_flags_of(addr),
			       want ? "lacks" : "has", flag);
			all = false;
		}
	}
	mmview_migrate(home);
	return all;
}

/* VmLck of the calling thread's view, in kB (its locked_vm). */
static long locked_kb(void)
{
	static char buf[4096];
	ssize_t n;
	char *p;
	int fd = open("/proc/thread-self/status", O_RDONLY);

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	p = strstr(buf, "VmLck:");
	return p ? strtol(p + 6, NULL, 10) : -1;
}

static void fill(char *p, size_t pages, char base)
{
	size_t i;

	for (i = 0; i < pages; i++)
		p[i * page] = (char)(base + i);
}

static bool holds(const char *p, size_t pages, char base)
{
	size_t i;

	for (i = 0; i < pages; i++)
		if (p[i * page] != (char)(base + i))
			return false;
	return true;
}

/* ---- mremap ---- */

static void case_mremap_moves_every_view(void)
{
	long ids[3] = {0}, r;
	char *p, *q;
	uint64_t pfn;

	/* 9 pages, the last one PROT_NONE: the first 8 cannot grow in place. */
	p = map_anon(9);
	EXPECT(p, "mmap");
	if (!p)
		return;
	fill(p, 8, 'a');
	create_views(ids, 3);

	/* Grow with MREMAP_MAYMOVE from view 2, after the view mapped the pages itself. */
	mmview_migrate(ids[2]);
	EXPECT(holds(p, 8, 'a'), "view 2 reads the base's pages");
	r = mprotect(p + 8 * page, page, PROT_NONE);
	EXPECT(r == 0, "mprotect of the guard page (got %s)", err_name(r));
	q = mremap(p, 8 * page, 32 * page, MREMAP_MAYMOVE);
	EXPECT(q != MAP_FAILED && q != p, "mremap moves the mapping (%s)",
	       q == MAP_FAILED ? strerror(errno) : "ok");
	if (q == MAP_FAILED)
		return;
	EXPECT(holds(q, 8, 'a'), "view 2 reads the contents at the new address");
	EXPECT(!mapped(p, 8 * page), "the old range is gone in view 2");
	EXPECT(layouts_equal(ids, 3), "one layout after mremap from view 2");
	q[20 * page] = 'n';
	pfn = pfn_of(q + 20 * page);

	mmview_migrate(0);
	EXPECT(holds(q, 8, 'a'), "the base reads the contents at the new address");
	EXPECT(q[20 * page] == 'n', "the base reads view 2's write to the grown part");
	EXPECT(pfn && pfn_of(q + 20 * page) == pfn, "base and view 2 map one page");
	EXPECT(!mapped(p, 8 * page), "the old range is gone in the base");
	q[page] = 'B';
	mmview_migrate(ids[1]);
	EXPECT(q[page] == 'B' && q[20 * page] == 'n', "view 1 sees both writes");
	EXPECT(!probe(p, false), "view 1 faults on the old range");

	/* Shrink from view 1: the tail goes in every view. */
	r = (long)mremap(q, 32 * page, 4 * page, 0);
	EXPECT(r == (long)q, "mremap shrinks in place (%s)", r == -1 ? strerror(errno) : "ok");
	EXPECT(layouts_equal(ids, 3), "one layout after the shrink");
	mmview_migrate(0);
	EXPECT(!mapped(q + 4 * page, 28 * page), "the tail is gone in the base");
	EXPECT(q[page] == 'B', "the head stays");

	/* Grow in place from view 2: the range after it is free in every view. */
	mmview_migrate(ids[2]);
	r = (long)mremap(q, 4 * page, 12 * page, 0);
	EXPECT(r == (long)q, "mremap grows in place (%s)", r == -1 ? strerror(errno) : "ok");
	EXPECT(layouts_equal(ids, 3), "one layout after growing in place");
	q[10 * page] = 'g';
	mmview_migrate(0);
	EXPECT(q[10 * page] == 'g' && q[page] == 'B', "the base sees the grown part and the head");
}

static void case_mremap_fixed_and_dontunmap(void)
{
	long ids[2] = {0};
	char *p, *target, *q;

	p = map_anon(4);
	target = map_anon(6);
	EXPECT(p && target, "mmap");
	if (!p || !target)
		return;
	fill(p, 4, 'f');
	fill(target, 6, 't');
	create_views(ids, 2);

	/* MREMAP_FIXED over an existing mapping, from the view: replaced in every view. */
	mmview_migrate(ids[1]);
	q = mremap(p, 4 * page, 4 * page, MREMAP_MAYMOVE | MREMAP_FIXED, target + page);
	EXPECT(q == target + page, "MREMAP_FIXED (%s)", q == MAP_FAILED ? strerror(errno) : "ok");
	EXPECT(layouts_equal(ids, 2), "one layout after MREMAP_FIXED");
	mmview_migrate(0);
	EXPECT(holds(target + page, 4, 'f'), "the base reads the moved pages over the old ones");
	EXPECT(target[0] == 't' && target[5 * page] == 't' + 5, "the rest of the target stays");
	EXPECT(!mapped(p, 4 * page), "the source is gone in the base");

	/*
	 * MREMAP_DONTUNMAP of the moved pages from the view: the old range stays mapped, empty,
	 * in every view. (The whole target would fail EFAULT: the base keeps the moved pages in a
	 * VMA of their own, and mremap needs one VMA.)
	 */
	mmview_migrate(ids[1]);
	/*
	 * The new address is a hint here, and glibc passes whatever its register holds unless
	 * it is given: a stale value that is not page aligned fails EINVAL.
	 */
	q = mremap(target + page, 4 * page, 4 * page, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, NULL);
	EXPECT(q != MAP_FAILED, "MREMAP_DONTUNMAP (%s)", q == MAP_FAILED ? strerror(errno) : "ok");
	if (q == MAP_FAILED)
		return;
	EXPECT(layouts_equal(ids, 2), "one layout after MREMAP_DONTUNMAP");
	mmview_migrate(0);
	EXPECT(holds(q, 4, 'f'), "the base reads the moved pages");
	EXPECT(mapped(target, 6 * page) && target[page] == 0 && target[4 * page] == 0,
	       "the old range is mapped and empty in the base");
	EXPECT(target[0] == 't' && target[5 * page] == 't' + 5, "its neighbours stay");
	mmview_migrate(ids[1]);
	EXPECT(target[2 * page] == 0 && q[2 * page] == 'f' + 2, "and in the view");
	mmview_migrate(0);
}

static void case_mremap_unshared(void)
{
	long ids[2] = {0}, r;
	char *p, *q;

	p = map_anon(4);
	EXPECT(p, "mmap");
	if (!p)
		return;
	fill(p, 4, 'u');
	r = mmview_unshare(p, 4 * page);
	EXPECT(r == 0, "UNSHARE (got %s)", err_name(r));
	create_views(ids, 2);
	mmview_migrate(ids[1]);
	fill(p, 4, 'V');
	q = mremap(p, 4 * page, 16 * page, MREMAP_MAYMOVE);
	EXPECT(q != MAP_FAILED, "mremap of an unshared range (%s)",
	       q == MAP_FAILED ? strerror(errno) : "ok");
	if (q == MAP_FAILED)
		return;
	EXPECT(holds(q, 4, 'V'), "the view keeps its own contents");
	EXPECT(layouts_equal(ids, 2), "one layout");
	mmview_migrate(0);
	EXPECT(holds(q, 4, 'u'), "the base keeps its own contents");
	EXPECT(has_flag(q, "dc") == false, "sanity: no DONTCOPY");
	q[8 * page] = 'b';
	mmview_migrate(ids[1]);
	EXPECT(q[8 * page] == 0, "the grown unshared part diverges too");
}

static void case_mremap_churn(void)
{
	long ids[4] = {0};
	size_t cur = 4 * page;
	char *p;
	int i;

	p = map_anon(4);
	EXPECT(p, "mmap");
	if (!p)
		return;
	fill(p, 4, 'c');
	create_views(ids, 4);
	/* 300 moves and resizes, each from another view; the contents follow every time. */
	for (i = 0; i < 300; i++) {
		size_t len = (size_t)(i % 5 + 4) * page;
		char *q;

		mmview_migrate(ids[i % 4]);
		q = mremap(p, cur, len, MREMAP_MAYMOVE);
		if (q == MAP_FAILED) {
			EXPECT(false, "mremap %d failed: %s", i, strerror(errno));
			break;
		}
		p = q;
		cur = len;
		if (!holds(p, 4, 'c')) {
			EXPECT(false, "contents lost after mremap %d", i);
			break;
		}
		/* Force a move next time: map the page after the range. */
		if (i % 2)
			mmap(p + cur, page, PROT_NONE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	}
	EXPECT(layouts_equal(ids, 4), "one layout after 300 mremaps");
}

/* ---- madvise ---- */

static void case_madvise_content(void)
{
	long ids[2] = {0}, r;
	char *shared, *unshared;
	uint64_t pfn;

	shared = map_anon(8);
	unshared = map_anon(4);
	EXPECT(shared && unshared, "mmap");
	if (!shared || !unshared)
		return;
	fill(shared, 8, 's');
	fill(unshared, 4, 'u');
	r = mmview_unshare(unshared, 4 * page);
	EXPECT(r == 0, "UNSHARE (got %s)", err_name(r));
	create_views(ids, 2);

	/* MADV_DONTNEED of shared private memory from a view discards the base's pages. */
	mmview_migrate(ids[1]);
	EXPECT(holds(shared, 8, 's'), "the view reads the base's pages");
	r = madvise(shared, 4 * page, MADV_DONTNEED);
	EXPECT(r == 0, "MADV_DONTNEED from the view (got %s)", err_name(r));
	EXPECT(shared[0] == 0 && shared[3 * page] == 0, "the view reads zeroes");
	EXPECT(shared[4 * page] == 's' + 4, "the rest stays");
	mmview_migrate(0);
	EXPECT(shared[0] == 0 && shared[page] == 0, "the base's pages are gone too (got %d %d)",
	       shared[0], shared[page]);
	shared[0] = 'n';
	mmview_migrate(ids[1]);
	EXPECT(shared[0] == 'n', "the view sees the base's new page");

	/* On an unshared range, only the caller's view. */
	r = madvise(unshared, 4 * page, MADV_DONTNEED);
	EXPECT(r == 0, "MADV_DONTNEED of an unshared range (got %s)", err_name(r));
	EXPECT(unshared[0] == 0, "the view's own copy is gone");
	mmview_migrate(0);
	EXPECT(holds(unshared, 4, 'u'), "the base keeps its unshared pages");

	/* MADV_FREE, then a write from the view: the written data survives page-out. */
	mmview_migrate(ids[1]);
	r = madvise(shared + 4 * page, 4 * page, MADV_FREE);
	EXPECT(r == 0, "MADV_FREE from the view (got %s)", err_name(r));
	shared[5 * page] = 'w';
	r = madvise(shared + 4 * page, 4 * page, MADV_PAGEOUT);
	EXPECT(r == 0, "MADV_PAGEOUT from the view (got %s)", err_name(r));
	mmview_migrate(0);
	EXPECT(shared[5 * page] == 'w', "a write after MADV_FREE is not discarded (got %d)",
	       shared[5 * page]);

	/* MADV_COLD and MADV_WILLNEED keep contents. */
	mmview_migrate(ids[1]);
	shared[page] = 'k';
	r = madvise(shared, 8 * page, MADV_COLD);
	EXPECT(r == 0, "MADV_COLD (got %s)", err_name(r));
	r = madvise(shared, 8 * page, MADV_WILLNEED);
	EXPECT(r == 0, "MADV_WILLNEED (got %s)", err_name(r));
	EXPECT(shared[page] == 'k', "contents stay");
	pfn = pfn_of(shared + page);
	mmview_migrate(0);
	EXPECT(pfn && pfn_of(shared + page) == pfn, "base and view map one page");

	/* A hole: ENOMEM, and the mapped part is advised all the same. */
	mmview_migrate(ids[1]);
	r = munmap(shared + 2 * page, page);
	EXPECT(r == 0, "munmap a page (got %s)", err_name(r));
	shared[3 * page] = 'h';
	r = madvise(shared, 4 * page, MADV_DONTNEED);
	EXPECT(fails_with(r, ENOMEM), "MADV_DONTNEED over a hole fails ENOMEM (got %s)",
	       err_name(r));
	mmview_migrate(0);
	EXPECT(shared[3 * page] == 0, "the mapped part after the hole was advised");
}

/* Splits and merges VMAs in the base until told to stop: every view's VMA tree changes. */
static void *churn_layout(void *arg)
{
	atomic_bool *stop = arg;
	char *p = map_anon(64);
	int i = 0;

	if (!p)
		return NULL;
	while (!atomic_load(stop)) {
		/* Every other page read-only, then all writable again: 32 splits, then merges. */
		mprotect(p + (i % 2) * page, page, PROT_READ);
		if (++i % 64 == 0)
			mprotect(p, 64 * page, PROT_READ | PROT_WRITE);
	}
	munmap(p, 64 * page);
	return NULL;
}

/*
 * MADV_REMOVE drops the mmap lock while it punches the hole in a shared file: the walk over
 * the owners of a range must not go on with what it found before. Here, from a view, over
 * [shared memfd | private (the base's) | shared memfd], while another thread keeps changing
 * the layout: the first part is punched, the private part refuses (EINVAL) and stops the walk,
 * every time.
 */
static void case_madvise_remove_racing_layout(void)
{
	const size_t part = 256;
	long ids[2] = {0}, r;
	atomic_bool stop = false;
	pthread_t churn;
	int fd, i, wrong = 0;
	char *p;

	fd = memfd_create("remove", 0);
	EXPECT(fd >= 0 && ftruncate(fd, 2 * part * page) == 0, "memfd (%s)", strerror(errno));
	p = map_anon(3 * part);
	EXPECT(p, "mmap");
	if (fd < 0 || !p)
		return;
	EXPECT(mmap(p, part * page, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0) == p &&
	           mmap(p + 2 * part * page, part * page, PROT_READ | PROT_WRITE,
	                MAP_SHARED | MAP_FIXED, fd, part * page) == p + 2 * part * page,
	       "map the memfd around the private part (%s)", strerror(errno));
	create_views(ids, 2);
	EXPECT(pthread_create(&churn, NULL, churn_layout, &stop) == 0, "pthread_create");
	mmview_migrate(ids[1]);
	for (i = 0; i < 50 && !wrong; i++) {
		memset(p, 'r', part * page);
		p[2 * part * page] = 'k';
		r = madvise(p, 3 * part * page, MADV_REMOVE);
		if (!fails_with(r, EINVAL) || p[0] != 0 || p[(part - 1) * page] != 0 ||
		    p[2 * part * page] != 'k') {
			EXPECT(false,
			       "round %d: MADV_REMOVE got %s, first part %d %d, last part %d", i,
			       err_name(r), p[0], p[(part - 1) * page], p[2 * part * page]);
			wrong = 1;
		}
	}
	atomic_store(&stop, true);
	pthread_join(churn, NULL);
	EXPECT(layouts_equal(ids, 2), "one layout after the churn");
}

static void case_madvise_flags(void)
{
	long ids[3] = {0}, r;
	char *p;
	pid_t pid;
	int status = 0;

	p = map_anon(8);
	EXPECT(p, "mmap");
	if (!p)
		return;
	fill(p, 8, 'd');
	create_views(ids, 3);

	mmview_migrate(ids[2]);
	r = madvise(p + 2 * page, 2 * page, MADV_DONTFORK);
	EXPECT(r == 0, "MADV_DONTFORK from view 2 (got %s)", err_name(r));
	EXPECT(flag_in_views(ids, 3, p + 2 * page, "dc", true), "DONTCOPY in every view");
	EXPECT(flag_in_views(ids, 3, p, "dc", false), "not beside the range");
	r = madvise(p + 4 * page, 2 * page, MADV_WIPEONFORK);
	EXPECT(r == 0, "MADV_WIPEONFORK from view 2 (got %s)", err_name(r));
	EXPECT(flag_in_views(ids, 3, p + 4 * page, "wf", true), "WIPEONFORK in every view");
	mmview_migrate(ids[1]);
	r = madvise(p, 8 * page, MADV_DONTDUMP);
	EXPECT(r == 0, "MADV_DONTDUMP from view 1 (got %s)", err_name(r));
	EXPECT(flag_in_views(ids, 3, p + 7 * page, "dd", true), "DONTDUMP in every view");
	r = madvise(p, 8 * page, MADV_RANDOM);
	EXPECT(r == 0, "MADV_RANDOM (got %s)", err_name(r));
	EXPECT(flag_in_views(ids, 3, p, "rr", true), "RAND_READ in every view");
	EXPECT(layouts_equal(ids, 3), "one layout after flag advice");

	/* The child of a fork (from the base) follows the flags set from views. */
	mmview_migrate(0);
	pid = fork();
	if (pid == 0) {
		bool ok = !mapped(p + 2 * page, 2 * page) && p[4 * page] == 0 && p[5 * page] == 0 &&
		          p[0] == 'd' && p[6 * page] == 'd' + 6;

		_exit(ok ? 0 : 1);
	}
	waitpid(pid, &status, 0);
	EXPECT(pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	       "the child lacks the DONTFORK range and reads zeroes from the WIPEONFORK one");

	/* And back, from another view. */
	mmview_migrate(ids[1]);
	r = madvise(p, 8 * page, MADV_DOFORK);
	EXPECT(r == 0, "MADV_DOFORK (got %s)", err_name(r));
	EXPECT(flag_in_views(ids, 3, p + 2 * page, "dc", false), "DONTCOPY gone in every view");
	mmview_migrate(0);
}

/* ---- mlock and mseal ---- */

static void case_mlock(void)
{
	long ids[3] = {0}, r, base_kb;
	char *p, *later;
	struct rlimit unlimited = {RLIM_INFINITY, RLIM_INFINITY};

	setrlimit(RLIMIT_MEMLOCK, &unlimited);
	p = map_anon(8);
	EXPECT(p, "mmap");
	if (!p)
		return;
	create_views(ids, 3);
	base_kb = locked_kb();

	mmview_migrate(ids[1]);
	r = mlock(p, 4 * page);
	EXPECT(r == 0, "mlock from view 1 (got %s)", err_name(r));
	EXPECT(flag_in_views(ids, 3, p, "lo", true), "VM_LOCKED in every view");
	EXPECT(flag_in_views(ids, 3, p + 4 * page, "lo", false), "not beside the range");
	EXPECT(locked_kb() == base_kb + 4 * page / 1024, "VmLck of view 1 counts the range");
	mmview_migrate(ids[2]);
	EXPECT(locked_kb() == base_kb + 4 * page / 1024, "and of view 2 (got %ld kB)", locked_kb());
	mmview_migrate(0);
	EXPECT(p[0] == 0 && p[3 * page] == 0, "the locked range reads");
	mmview_migrate(ids[2]);
	r = munlock(p, 8 * page);
	EXPECT(r == 0, "munlock from view 2 (got %s)", err_name(r));
	EXPECT(flag_in_views(ids, 3, p, "lo", false), "unlocked in every view");
	EXPECT(locked_kb() == base_kb, "VmLck back (got %ld kB)", locked_kb());

	r = syscall(SYS_mlock2, p, 2 * page, MLOCK_ONFAULT);
	EXPECT(r == 0, "mlock2(MLOCK_ONFAULT) (got %s)", err_name(r));
	EXPECT(flag_in_views(ids, 3, p, "lf", true), "LOCKONFAULT in every view");

	/* mlockall(MCL_FUTURE) from a view: mappings made later, in another view, are locked. */
	r = mlockall(MCL_CURRENT | MCL_FUTURE);
	EXPECT(r == 0, "mlockall from view 2 (got %s)", err_name(r));
	mmview_migrate(0);
	later = map_anon(2);
	EXPECT(later, "mmap after mlockall");
	if (later)
		EXPECT(flag_in_views(ids, 3, later, "lo", true),
		       "a mapping made in the base after mlockall is locked in every view");
	EXPECT(flag_in_views(ids, 3, p + 6 * page, "lo", true), "MCL_CURRENT locked the rest");
	mmview_migrate(ids[1]);
	r = munlockall();
	EXPECT(r == 0, "munlockall from view 1 (got %s)", err_name(r));
	EXPECT(flag_in_views(ids, 3, p, "lo", false), "nothing locked in any view");
	mmview_migrate(0);
	later = map_anon(2);
	if (later)
		EXPECT(flag_in_views(ids, 3, later, "lo", false), "no more future locking");
}

static void case_mseal(void)
{
	long ids[2] = {0}, r;
	char *p;

	p = map_anon(6);
	EXPECT(p, "mmap");
	if (!p)
		return;
	create_views(ids, 2);
	mmview_migrate(ids[1]);
	r = syscall(SYS_mseal, p + 2 * page, 2 * page, 0);
	EXPECT(r == 0, "mseal from the view (got %s)", err_name(r));
	EXPECT(flag_in_views(ids, 2, p + 2 * page, "sl", true), "sealed in every view");
	EXPECT(flag_in_views(ids, 2, p, "sl", false), "not beside the range");
	mmview_migrate(0);
	r = munmap(p + 2 * page, page);
	EXPECT(fails_with(r, EPERM),
	       "munmap of the sealed range from the base fails EPERM (got %s)", err_name(r));
	r = mprotect(p + 3 * page, page, PROT_READ);
	EXPECT(fails_with(r, EPERM), "and mprotect (got %s)", err_name(r));
	mmview_migrate(ids[1]);
	EXPECT(mremap(p + 2 * page, page, 4 * page, MREMAP_MAYMOVE) == MAP_FAILED && errno == EPERM,
	       "mremap of the sealed range from the view fails EPERM");
	r = munmap(p, 2 * page);
	EXPECT(r == 0, "the unsealed part unmaps (got %s)", err_name(r));
	EXPECT(layouts_equal(ids, 2), "one layout");
}

/* ---- with a single view again ---- */

static void case_single_view_again(void)
{
	long id, r;
	char *p = map_anon(4), *q;

	EXPECT(p, "mmap");
	if (!p)
		return;
	fill(p, 4, 'o');
	id = mmview_create();
	EXPECT(id > 0, "CREATE (got %s)", err_name(id));
	r = mmview_delete(id);
	EXPECT(r == 0, "DELETE (got %s)", err_name(r));
	r = madvise(p, page, MADV_DONTNEED);
	EXPECT(r == 0 && p[0] == 0, "MADV_DONTNEED (got %s)", err_name(r));
	r = mlock(p, page);
	EXPECT(r == 0, "mlock (got %s)", err_name(r));
	r = munlock(p, page);
	EXPECT(r == 0, "munlock (got %s)", err_name(r));
	q = mremap(p, 4 * page, 64 * page, MREMAP_MAYMOVE);
	EXPECT(q != MAP_FAILED && q[page] == 'o' + 1, "mremap (%s)",
	       q == MAP_FAILED ? strerror(errno) : "ok");
	r = madvise(q, page, MADV_MERGEABLE);
	EXPECT(r == 0, "MADV_MERGEABLE with one view (got %s)", err_name(r));
}

int main(void)
{
	page = sysconf(_SC_PAGESIZE);
	tap_plan(10);
	run_case("mremap from views moves, shrinks and grows every view; one memory after",
	         case_mremap_moves_every_view);
	run_case("MREMAP_FIXED over a mapping and MREMAP_DONTUNMAP from a view",
	         case_mremap_fixed_and_dontunmap);
	run_case("mremap of an unshared range keeps each view's contents", case_mremap_unshared);
	run_case("300 mremaps from 4 views in turn keep contents and one layout",
	         case_mremap_churn);
	run_case("content advice on shared memory acts on the base; unshared on the view",
	         case_madvise_content);
	run_case("MADV_REMOVE from a view over three owners while the layout changes",
	         case_madvise_remove_racing_layout);
	run_case("flag advice (DONTFORK, WIPEONFORK, DONTDUMP, RANDOM) holds in every view",
	         case_madvise_flags);
	run_case("mlock, munlock, mlock2, mlockall, munlockall from views", case_mlock);
	run_case("mseal from a view seals every view", case_mseal);
	run_case("madvise, mlock, mremap and mseal in a process after DELETE of its views",
	         case_single_view_again);
	return tap_finish();
}
