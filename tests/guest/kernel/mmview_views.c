// SPDX-License-Identifier: MIT
/*
 * Views on the views kernel (docs/kernel.md, "The model as built", "Mirror model", "Refusals",
 * "Testing"; docs/mmview.2): creation, migration, deletion; shared memory is one memory in every
 * view, also under concurrent first faults and compaction (checked through the PFNs of
 * /proc/thread-self/pagemap); unshared data and code diverge per view; fork writes do not leak into
 * the child; futexes, condition variables and pthread_join work across views; exit and exec from a
 * view; every errno and refusal of this stage; no leak over many view lifetimes.
 *
 * Each case runs in a child process of its own (views_case.h). Layout changes with views are
 * tested in mmview_replay.c.
 */
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <linux/futex.h>
#include <linux/kvm.h>
#include <linux/membarrier.h>
#include <linux/perf_event.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/swap.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atlas/mmview.h>

#include "views_case.h"

#ifndef PR_SET_MEMORY_MERGE
#define PR_SET_MEMORY_MERGE 67 /* Linux 6.4; Debian 12's headers predate it */
#endif

#define NPAGES 256

/* ---- ids, migration, deletion ---- */

static void case_ids(void)
{
	long r;

	EXPECT(mmview_current() == 0, "CURRENT before any view is 0");
	r = mmview_create();
	EXPECT(r == 1, "first CREATE returns 1 (got %s)", err_name(r));
	r = mmview_create();
	EXPECT(r == 2, "second CREATE returns 2 (got %s)", err_name(r));
	EXPECT(mmview_current() == 0, "CREATE does not move the caller");
	r = mmview_migrate(1);
	EXPECT(r == 0, "MIGRATE(1) from the base returns 0 (got %s)", err_name(r));
	EXPECT(mmview_current() == 1, "CURRENT is 1 after MIGRATE(1)");
	r = mmview_migrate(1);
	EXPECT(r == 1, "MIGRATE into the view one is in returns its id (got %s)", err_name(r));
	r = mmview_migrate(2);
	EXPECT(r == 1, "MIGRATE(2) from 1 returns 1 (got %s)", err_name(r));
	r = mmview_migrate(0);
	EXPECT(r == 2, "MIGRATE(0) from 2 returns 2 (got %s)", err_name(r));
	r = mmview_delete(1);
	EXPECT(r == 0, "DELETE(1) returns 0 (got %s)", err_name(r));
	r = mmview_delete(1);
	EXPECT(fails_with(r, EINVAL), "DELETE(1) again fails EINVAL (got %s)", err_name(r));
	r = mmview_migrate(1);
	EXPECT(fails_with(r, EINVAL), "MIGRATE to a deleted view fails EINVAL (got %s)",
	       err_name(r));
	r = mmview_delete(0);
	EXPECT(fails_with(r, EPERM), "DELETE of the base fails EPERM (got %s)", err_name(r));
	r = mmview_delete(99);
	EXPECT(fails_with(r, EINVAL), "DELETE of an unknown id fails EINVAL (got %s)", err_name(r));
	r = mmview_migrate(-1);
	EXPECT(fails_with(r, EINVAL), "MIGRATE(-1) fails EINVAL (got %s)", err_name(r));
	r = mmview_switch_base();
	EXPECT(r == 0, "SWITCH_BASE from the base returns 0 (got %s)", err_name(r));
	r = mmview_create();
	EXPECT(r == 3, "ids are never reused: the next CREATE returns 3 (got %s)", err_name(r));
}

/* ---- shared memory is one memory ---- */

static void case_coherence(void)
{
	char *buf = map_anon(NPAGES), *fresh = map_anon(NPAGES);
	long v;
	int i, bad = 0;

	for (i = 0; i < NPAGES; i++)
		buf[i * page] = (char)i;
	v = mmview_create();
	EXPECT(v == 1, "CREATE (got %s)", err_name(v));
	mmview_migrate(v);
	for (i = 0; i < NPAGES; i++)
		bad += buf[i * page] != (char)i;
	EXPECT(bad == 0, "%d of %d pages written before CREATE read wrong in the view", bad,
	       NPAGES);
	for (i = 0; i < NPAGES; i++) {
		buf[i * page] = (char)(i + 1);
		fresh[i * page + 7] = (char)(i + 2); /* first touch in the view */
	}
	mmview_migrate(0);
	bad = 0;
	for (i = 0; i < NPAGES; i++)
		bad += buf[i * page] != (char)(i + 1) || fresh[i * page + 7] != (char)(i + 2);
	EXPECT(bad == 0, "%d pages written in the view read wrong in the base", bad);
	for (i = 0; i < NPAGES; i++)
		buf[i * page] = (char)(i + 3);
	mmview_migrate(v);
	bad = 0;
	for (i = 0; i < NPAGES; i++)
		bad += buf[i * page] != (char)(i + 3);
	EXPECT(bad == 0, "%d pages written in the base read wrong in the view", bad);
	bad = 0;
	for (i = 0; i < NPAGES; i++) {
		uint64_t in_view = pfn_of(buf + i * page), in_base;

		mmview_migrate(0);
		in_base = pfn_of(buf + i * page);
		mmview_migrate(v);
		bad += !in_view || in_view != in_base;
	}
	EXPECT(bad == 0, "PFN checker: %d shared pages map different frames in base and view", bad);
}

#define WORKERS 4
#define ROUNDS 100

struct hammer {
	char *mem;
	long view;
	pthread_barrier_t *ready, *start;
};

/* Created before the views (pthread_create maps a stack); told its view after the barrier. */
static void *hammer_thread(void *arg)
{
	struct hammer *h = arg;
	int r, i;

	pthread_barrier_wait(h->ready);
	mmview_migrate(h->view);
	pthread_barrier_wait(h->start);
	for (r = 0; r < ROUNDS; r++)
		for (i = 0; i < NPAGES; i++)
			atomic_fetch_add_explicit((_Atomic long *)(h->mem + i * page), 1,
			                          memory_order_relaxed);
	return NULL;
}

static void case_concurrent_faults(void)
{
	char *mem = map_anon(NPAGES);
	pthread_t th[WORKERS];
	struct hammer h[WORKERS];
	pthread_barrier_t ready, start;
	int i, bad = 0;

	pthread_barrier_init(&ready, NULL, WORKERS + 1);
	pthread_barrier_init(&start, NULL, WORKERS + 1);
	for (i = 0; i < WORKERS; i++) {
		h[i] = (struct hammer){mem, 0, &ready, &start};
		pthread_create(&th[i], NULL, hammer_thread, &h[i]);
	}
	/* Every page is first touched concurrently from WORKERS views. */
	for (i = 1; i < WORKERS; i++) {
		h[i].view = mmview_create();
		EXPECT(h[i].view > 0, "CREATE %d (got %s)", i, err_name(h[i].view));
	}
	pthread_barrier_wait(&ready);
	pthread_barrier_wait(&start);
	for (i = 0; i < WORKERS; i++)
		pthread_join(th[i], NULL);
	for (i = 0; i < NPAGES; i++)
		bad += *(long *)(mem + i * page) != WORKERS * ROUNDS;
	EXPECT(bad == 0, "%d of %d counters lost updates (first: %ld, want %d)", bad, NPAGES,
	       *(long *)mem, WORKERS * ROUNDS);
}

/* ---- fork: no write through a view leaks into the child ---- */

static void case_fork_no_leak(void)
{
	char *buf = map_anon(NPAGES);
	int to_child[2], to_parent[2], i, status = -1;
	long v;
	char c;
	pid_t pid;

	for (i = 0; i < NPAGES; i++)
		buf[i * page] = 'a';
	v = mmview_create();
	mmview_migrate(v);
	for (i = 0; i < NPAGES; i++) /* the view maps every page writable */
		buf[i * page] = 'b';
	mmview_migrate(0);
	EXPECT(pipe(to_child) == 0 && pipe(to_parent) == 0, "pipes");
	pid = fork(); /* from the base: allowed */
	if (pid == 0) {
		int wrong = 0;

		if (read(to_child[0], &c, 1) != 1)
			_exit(2);
		for (i = 0; i < NPAGES; i++)
			wrong += buf[i * page] != 'b';
		_exit(wrong ? 1 : 0);
	}
	EXPECT(pid > 0, "fork from the base with views (got %s)", err_name(pid));
	mmview_migrate(v);
	for (i = 0; i < NPAGES; i++)
		buf[i * page] = 'c'; /* after fork, through the view's mirrors */
	mmview_migrate(0);
	EXPECT(write(to_child[1], "x", 1) == 1, "signal the child");
	waitpid(pid, &status, 0);
	EXPECT(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	       "the child saw the parent's post-fork writes (status %#x)", status);
	for (i = 0; i < NPAGES; i++)
		if (buf[i * page] != 'c')
			break;
	EXPECT(i == NPAGES, "the parent's base sees its view's writes");
}

static bool all(const char *p, size_t pages, char c)
{
	for (size_t i = 0; i < pages; i++)
		if (p[i * page] != c)
			return false;
	return true;
}

/*
 * fork() from a view other than the base: the child gets the shared private ranges as the base
 * holds them (every view sees the same) and the unshared ranges as the forking view holds
 * them; no write made after fork() returns, from any view, reaches the child, and none of the
 * child's reaches the parent. The view's VMA boundaries differ from the base's over one range
 * (a mapping moved next to another merges with it in the view only), which the fork must line
 * up.
 */
static void case_fork_from_view(void)
{
	char *shared = map_anon(NPAGES), *unshared = map_anon(4), *merged = map_anon(4);
	char *other = map_anon(2), *moved;
	int to_child[2], to_parent[2], status = -1;
	long v, w, r;
	pid_t pid;
	char c;

	EXPECT(shared && unshared && merged && other, "mmap");
	if (!shared || !unshared || !merged || !other)
		return;
	memset(shared, 'a', NPAGES * page);
	memset(unshared, 'u', 4 * page);
	memset(merged, 'm', 2 * page);
	memset(other, 'o', 2 * page);
	munmap(merged + 2 * page, 2 * page);
	r = mmview_unshare(unshared, 4 * page);
	EXPECT(r == 0, "UNSHARE (got %s)", err_name(r));
	v = mmview_create();
	w = mmview_create();
	EXPECT(v > 0 && w > 0, "CREATE (got %ld, %ld)", v, w);

	/* Move 'other' next to 'merged': two VMAs in the base (two anon_vmas), one in views. */
	moved = mremap(other, 2 * page, 2 * page, MREMAP_MAYMOVE | MREMAP_FIXED, merged + 2 * page);
	EXPECT(moved == merged + 2 * page, "mremap next to the other mapping (%s)",
	       moved == MAP_FAILED ? strerror(errno) : "ok");
	EXPECT(vmas_in(merged, 4 * page) == 2, "the base keeps two VMAs (got %d)",
	       vmas_in(merged, 4 * page));
	mmview_migrate(v);
	EXPECT(vmas_in(merged, 4 * page) == 1, "the view merged them (got %d)",
	       vmas_in(merged, 4 * page));
	memset(unshared, 'v', 4 * page); /* the view's own copy */
	memset(shared, 'b', NPAGES * page);

	EXPECT(pipe(to_child) == 0 && pipe(to_parent) == 0, "pipes");
	pid = fork();
	if (pid == 0) {
		int wrong = 0;
		long cv;

		wrong += mmview_current() != 0;
		wrong += !all(shared, NPAGES, 'b') * 2;
		wrong += !all(unshared, 4, 'v') * 4;
		wrong += (!all(merged, 2, 'm') || !all(merged + 2 * page, 2, 'o')) * 8;
		memset(shared, 'z', NPAGES * page); /* must not reach the parent */
		if (write(to_parent[1], "r", 1) != 1 || read(to_child[0], &c, 1) != 1)
			_exit(99);
		/* After the parent's writes from the view and from the base. */
		wrong += !all(shared, NPAGES, 'z') * 16;
		wrong += !all(unshared, 4, 'v') * 32;
		wrong += (!all(merged, 2, 'm') || !all(merged + 2 * page, 2, 'o')) * 64;
		/* The child is a process of its own, without views: it may make its own. */
		cv = mmview_create();
		wrong += (cv <= 0 || mmview_migrate(cv) != 0 || !all(shared, NPAGES, 'z')) * 128;
		_exit(wrong);
	}
	EXPECT(pid > 0, "fork from view %ld (got %s)", v, err_name(pid));
	if (pid < 0)
		return;
	EXPECT(read(to_parent[0], &c, 1) == 1, "the child checked its copy");
	memset(shared, 'c', NPAGES * page); /* from the forking view, through mirrors */
	memset(unshared, 'x', 4 * page);
	mmview_migrate(w);
	memset(merged, 'd', 4 * page); /* from another view */
	mmview_migrate(0);
	memset(unshared, 'y', 4 * page); /* the base's copy */
	EXPECT(write(to_child[1], "g", 1) == 1, "signal the child");
	waitpid(pid, &status, 0);
	EXPECT(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	       "the child got the base's shared memory and the view's unshared copy, and no "
	       "later write (status %#x: 2, 4, 8 wrong at fork; 16, 32, 64 wrong after the "
	       "parent's writes; 128 its own view)",
	       status);
	EXPECT(all(shared, NPAGES, 'c'), "no write of the child reached the parent's base");
	mmview_migrate(v);
	EXPECT(all(shared, NPAGES, 'c') && all(unshared, 4, 'x') && all(merged, 4, 'd'),
	       "the forking view kept its memory");
	EXPECT(vmas_in(merged, 4 * page) >= 1, "the view's layout is intact");
	mmview_migrate(0);
	EXPECT(all(unshared, 4, 'y'), "the base kept its unshared copy");
}

/* ---- unshared ranges diverge ---- */

static int __attribute__((noinline, aligned(4096))) answer(void)
{
	return 1;
}

static void case_unshared(void)
{
	char *data = map_anon(4);
	int (*volatile fn)(void) = answer;
	const unsigned char code[] = {0xb8, 0x2a, 0x00, 0x00, 0x00, 0xc3}; /* mov $42,%eax; ret */
	long v, r;
	int fd;

	data[0] = data[page] = 'a';
	r = mmview_unshare(data + page, page);
	EXPECT(r == 0, "UNSHARE a data page (got %s)", err_name(r));
	r = mmview_unshare((void *)answer, page);
	EXPECT(r == 0, "UNSHARE a page of the program's text (got %s)", err_name(r));
	v = mmview_create();
	r = mmview_unshare(data, page);
	EXPECT(fails_with(r, EPERM), "UNSHARE with several views fails EPERM (got %s)",
	       err_name(r));
	r = mmview_share(data + page, page);
	EXPECT(fails_with(r, EPERM), "SHARE with several views fails EPERM (got %s)", err_name(r));
	mmview_migrate(v);
	data[0] = 'b';
	data[page] = 'b';
	fd = open("/proc/thread-self/mem", O_RDWR);
	r = pwrite(fd, code, sizeof(code), (off_t)(uintptr_t)answer);
	EXPECT(r == (long)sizeof(code), "patch the view's text through /proc/thread-self/mem (%s)",
	       err_name(r));
	close(fd);
	EXPECT(fn() == 42, "the view runs its patched code (got %d)", fn());
	EXPECT(data[page] == 'b' && data[0] == 'b', "the view reads its own writes");
	mmview_migrate(0);
	EXPECT(fn() == 1, "the base runs the original code (got %d)", fn());
	EXPECT(data[0] == 'b', "shared page: the base sees the view's write");
	EXPECT(data[page] == 'a', "unshared page: the base keeps its own contents (got %c)",
	       data[page]);
	EXPECT(pfn_of(data + page) != 0, "unshared page present in the base");
	mmview_migrate(v);
	EXPECT(fn() == 42, "back in the view: patched code again");
}

/* ---- errnos and refusals of this stage ---- */

static void case_limit(void)
{
	long r, i;

	EXPECT(write_file("/proc/sys/vm/mmview_max_views", "3") == 0, "set vm.mmview_max_views");
	for (i = 1; i <= 2; i++) {
		r = mmview_create();
		EXPECT(r == i, "CREATE %ld under the limit (got %s)", i, err_name(r));
	}
	r = mmview_create();
	EXPECT(fails_with(r, ENOSPC), "CREATE beyond 3 live views fails ENOSPC (got %s)",
	       err_name(r));
	EXPECT(mmview_delete(2) == 0, "DELETE 2");
	r = mmview_create();
	EXPECT(r == 3, "after DELETE a view can be created again, id 3 (got %s)", err_name(r));
	write_file("/proc/sys/vm/mmview_max_views", "1024");
}

static void refused(const char *what)
{
	long r = mmview_create();

	EXPECT(fails_with(r, EOPNOTSUPP), "CREATE with %s fails EOPNOTSUPP (got %s)", what,
	       err_name(r));
}

static void case_refuse_hugetlb(void)
{
	void *p = mmap(NULL, 2 << 20, PROT_READ | PROT_WRITE,
	               MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_NORESERVE, -1, 0);

	EXPECT(p != MAP_FAILED, "hugetlb mapping (%s)", p == MAP_FAILED ? strerror(errno) : "ok");
	refused("a hugetlb mapping");
}

static void case_refuse_ksm(void)
{
	EXPECT(prctl(PR_SET_MEMORY_MERGE, 1, 0, 0, 0) == 0, "PR_SET_MEMORY_MERGE (%s)",
	       strerror(errno));
	refused("KSM");
}

/* THP is off once a process has views; turning it back on is refused, off stays allowed. */
static void case_refuse_thp(void)
{
	long r, v;

	EXPECT(prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) == 0 &&
	           prctl(PR_SET_THP_DISABLE, 0, 0, 0, 0) == 0,
	       "PR_SET_THP_DISABLE off and on again without views (%s)", strerror(errno));
	v = mmview_create();
	EXPECT(v > 0, "CREATE (got %s)", err_name(v));
	EXPECT(prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0) == 1, "CREATE turned THP off");
	r = prctl(PR_SET_THP_DISABLE, 0, 0, 0, 0);
	EXPECT(fails_with(r, EBUSY), "re-enabling THP with views fails EBUSY (got %s)",
	       err_name(r));
	EXPECT(prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) == 0, "disabling THP again works (%s)",
	       strerror(errno));
	mmview_delete(v);
	r = prctl(PR_SET_THP_DISABLE, 0, 0, 0, 0);
	EXPECT(fails_with(r, EBUSY),
	       "still refused after the last view is deleted: the process keeps its group (got %s)",
	       err_name(r));
	EXPECT(prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0) == 1, "THP stays off");
}

#define THP_DIR "/sys/kernel/mm/transparent_hugepage/"
#define HPAGE (2UL << 20)

/* The chosen value of a THP sysfs setting ("always [madvise] never" -> "madvise"). */
static bool thp_setting(const char *name, char *value, size_t size)
{
	char raw[128], path[128];
	const char *open_, *close_;

	snprintf(path, sizeof(path), THP_DIR "%s", name);
	if (read_whole(path, raw, sizeof(raw)) < 0)
		return false;
	open_ = strchr(raw, '[');
	close_ = open_ ? strchr(open_, ']') : NULL;
	if (!close_ || (size_t)(close_ - open_) > size)
		return false;
	snprintf(value, size, "%.*s", (int)(close_ - open_ - 1), open_ + 1);
	return true;
}

/* Whether @pfn is the huge zero page (/proc/kpageflags: KPF_ZERO_PAGE and KPF_THP). */
static bool is_huge_zero_pfn(uint64_t pfn)
{
	uint64_t flags = 0;
	int fd = open("/proc/kpageflags", O_RDONLY);

	if (fd < 0)
		return false;
	if (pread(fd, &flags, sizeof(flags), pfn * sizeof(flags)) != sizeof(flags))
		flags = 0;
	close(fd);
	return (flags & (1ULL << 24)) && (flags & (1ULL << 22));
}

/*
 * The huge zero page mapped before CREATE (a kernel BUG before the fix): MMF_HUGE_ZERO_PAGE
 * stands for the base's reference on it; a view that copied the flag put that reference a second
 * time when it was freed, and the base's exit then hit the BUG in put_huge_zero_page(). Reads and
 * a write from the view go through the base's huge zero PMD.
 */
static void case_huge_zero_page(void)
{
	char enabled[32];
	char *m, *p;
	long v;

	EXPECT(thp_setting("enabled", enabled, sizeof(enabled)), "read THP 'enabled'");
	EXPECT(write_file(THP_DIR "enabled", "madvise") == 0 &&
	           write_file(THP_DIR "use_zero_page", "1") == 0,
	       "THP madvise with the huge zero page (%s)", strerror(errno));
	m = mmap(NULL, 4 * HPAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	EXPECT(m != MAP_FAILED, "mmap 8 MiB (%s)", strerror(errno));
	if (m == MAP_FAILED)
		return;
	p = (char *)(((uintptr_t)m + HPAGE - 1) & ~(HPAGE - 1));
	EXPECT(madvise(p, 2 * HPAGE, MADV_HUGEPAGE) == 0, "MADV_HUGEPAGE (%s)", strerror(errno));
	EXPECT(*(volatile char *)p == 0 && *(volatile char *)(p + HPAGE) == 0, "zero reads");
	EXPECT(is_huge_zero_pfn(pfn_of(p)),
	       "the read mapped the huge zero page (PFN %#llx), the condition this case tests",
	       (unsigned long long)pfn_of(p));

	v = mmview_create();
	EXPECT(v > 0, "CREATE (got %s)", err_name(v));
	if (v > 0) {
		EXPECT(mmview_migrate(v) == 0, "MIGRATE into the view (%s)", strerror(errno));
		EXPECT(*(volatile char *)(p + page) == 0, "the view reads zero");
		p[HPAGE + 3 * page] = 7;
		EXPECT(mmview_migrate(0) == v, "MIGRATE back (%s)", strerror(errno));
		EXPECT(p[HPAGE + 3 * page] == 7, "the view's write is the base's");
		EXPECT(mmview_delete(v) == 0, "DELETE (%s)", strerror(errno));
	}
	/* A second view, created and deleted without ever being entered. */
	v = mmview_create();
	EXPECT(v > 0 && mmview_delete(v) == 0, "CREATE and DELETE (got %s)", err_name(v));
	munmap(m, 4 * HPAGE);
	EXPECT(write_file(THP_DIR "enabled", enabled) == 0, "restore THP '%s'", enabled);
	/* The process exits with its views freed: the base's exit puts the reference. */
}

/*
 * Memory THP mapped before CREATE (THP madvise or always): every view reads what the base
 * wrote, writes from a view reach the base, the PFNs agree (the base's huge pages are split
 * when a view first mirrors them), and a fork from the view and SWITCH_BASE keep contents.
 */
static void case_thp_before_create(void)
{
	char enabled[32];
	char *m, *p;
	long v;
	int bad = 0, status = 0;
	size_t i, n;
	const char *huge;
	pid_t pid;

	EXPECT(thp_setting("enabled", enabled, sizeof(enabled)), "read THP 'enabled'");
	EXPECT(write_file(THP_DIR "enabled", "madvise") == 0, "THP madvise (%s)", strerror(errno));
	m = mmap(NULL, 4 * HPAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	EXPECT(m != MAP_FAILED, "mmap 8 MiB (%s)", strerror(errno));
	if (m == MAP_FAILED)
		return;
	p = (char *)(((uintptr_t)m + HPAGE - 1) & ~(HPAGE - 1));
	n = 2 * HPAGE / page;
	EXPECT(madvise(p, 2 * HPAGE, MADV_HUGEPAGE) == 0, "MADV_HUGEPAGE (%s)", strerror(errno));
	for (i = 0; i < n; i++)
		p[i * page] = (char)i;
	huge = smaps_field(p, "AnonHugePages:");
	EXPECT(huge && atol(huge) >= 2048,
	       "the writes were backed by huge pages (AnonHugePages:%s), the condition this "
	       "case tests",
	       huge ? huge : " none");

	v = mmview_create();
	EXPECT(v > 0, "CREATE (got %s)", err_name(v));
	if (v <= 0)
		return;
	EXPECT(mmview_migrate(v) == 0, "MIGRATE into the view (%s)", strerror(errno));
	for (i = 0; i < n; i++) {
		bad += p[i * page] != (char)i;
		p[i * page + 1] = (char)(i + 1);
	}
	EXPECT(bad == 0, "%d of %zu pages written before CREATE read wrong in the view", bad, n);
	mmview_migrate(0);
	bad = 0;
	for (i = 0; i < n; i++) {
		uint64_t in_base = pfn_of(p + i * page), in_view;

		bad += p[i * page + 1] != (char)(i + 1);
		mmview_migrate(v);
		in_view = pfn_of(p + i * page);
		mmview_migrate(0);
		bad += !in_base || in_base != in_view;
	}
	EXPECT(bad == 0, "%d pages: a view's write not in the base, or different frames", bad);

	mmview_migrate(v);
	pid = fork();
	if (pid == 0) {
		for (i = 0; i < n; i++)
			bad += p[i * page] != (char)i || p[i * page + 1] != (char)(i + 1);
		_exit(bad ? 1 : 0);
	}
	EXPECT(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
	           WEXITSTATUS(status) == 0,
	       "a child forked from the view reads every page");
	EXPECT(mmview_switch_base() == v, "SWITCH_BASE (%s)", strerror(errno));
	EXPECT(mmview_delete(0) == 0, "DELETE of the old base (%s)", strerror(errno));
	bad = 0;
	for (i = 0; i < n; i++)
		bad += p[i * page] != (char)i || p[i * page + 1] != (char)(i + 1);
	EXPECT(bad == 0, "%d pages read wrong after SWITCH_BASE", bad);
	EXPECT(write_file(THP_DIR "enabled", enabled) == 0, "restore THP '%s'", enabled);
}

static void case_refuse_aio(void)
{
	aio_context_t ctx = 0;

	EXPECT(syscall(SYS_io_setup, 1, &ctx) == 0, "io_setup (%s)", strerror(errno));
	refused("an aio context");
}

static void case_refuse_io_uring(void)
{
	char params[120] = {0};
	long fd = syscall(SYS_io_uring_setup, 1, params);

	EXPECT(fd >= 0, "io_uring_setup (%s)", strerror(errno));
	refused("an io_uring instance");
}

static void case_refuse_uffd(void)
{
	char *buf = map_anon(1);
	long fd = syscall(SYS_userfaultfd, O_CLOEXEC);
	struct uffdio_api api = {.api = UFFD_API};
	struct uffdio_register reg = {.range = {(uintptr_t)buf, page},
	                              .mode = UFFDIO_REGISTER_MODE_MISSING};

	EXPECT(fd >= 0 && ioctl(fd, UFFDIO_API, &api) == 0 && ioctl(fd, UFFDIO_REGISTER, &reg) == 0,
	       "userfaultfd registration (%s)", strerror(errno));
	refused("a userfaultfd range");
}

/*
 * The facilities CREATE refuses cannot be set up once the process has views either: each fails
 * EBUSY, leaves nothing behind (CREATE still works), and is refused again after the last view
 * is deleted (the process keeps its group).
 */
static void case_refuse_after_create(void)
{
	char *buf = map_anon(1), params[120] = {0};
	long fd = syscall(SYS_userfaultfd, O_CLOEXEC), ids[2], r, pass;
	struct uffdio_api api = {.api = UFFD_API};
	aio_context_t ctx = 0;

	EXPECT(fd >= 0 && ioctl(fd, UFFDIO_API, &api) == 0, "userfaultfd (%s)", strerror(errno));
	if (!create_views(ids, 2))
		return;
	for (pass = 0; pass < 2; pass++) {
		const char *when = pass ? "after the last view is deleted" : "with a view";
		struct uffdio_register reg = {.range = {(uintptr_t)buf, page},
		                              .mode = UFFDIO_REGISTER_MODE_MISSING};

		r = syscall(SYS_io_setup, 1, &ctx);
		EXPECT(fails_with(r, EBUSY), "io_setup %s (got %s)", when, err_name(r));
		r = syscall(SYS_io_uring_setup, 1, params);
		EXPECT(fails_with(r, EBUSY), "io_uring_setup %s (got %s)", when, err_name(r));
		r = ioctl(fd, UFFDIO_REGISTER, &reg);
		EXPECT(fails_with(r, EBUSY), "UFFDIO_REGISTER %s (got %s)", when, err_name(r));
		r = prctl(PR_SET_MEMORY_MERGE, 1, 0, 0, 0);
		EXPECT(fails_with(r, EBUSY), "PR_SET_MEMORY_MERGE %s (got %s)", when, err_name(r));
		EXPECT(prctl(PR_SET_MEMORY_MERGE, 0, 0, 0, 0) == 0,
		       "turning KSM off stays allowed");
		r = mmview_create();
		EXPECT(r > 0, "CREATE after the refusals %s (got %s)", when, err_name(r));
		if (r > 0)
			mmview_delete(r);
		mmview_delete(ids[1]);
	}
}

/*
 * KVM registers an MMU notifier, a secondary MMU, on the process that creates a VM: a process
 * with views cannot create one (the notifier would follow one view), and CREATE refuses a
 * process with one. /dev/kvm needs SVM in the guest's CPU, which guest/run's "-cpu max" under
 * TCG has; no guest code runs.
 */
static void case_refuse_mmu_notifier(void)
{
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC), status = 0;
	long ids[2], r;
	pid_t pid;

	EXPECT(kvm >= 0, "/dev/kvm: %s", strerror(errno));
	if (kvm < 0)
		return;
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		r = ioctl(kvm, KVM_CREATE_VM, 0);
		EXPECT(r >= 0, "KVM_CREATE_VM without views (%s)", strerror(errno));
		refused("a KVM VM (an MMU notifier)");
		_exit(child_failures ? 1 : 0);
	}
	waitpid(pid, &status, 0);
	EXPECT(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the VM's process failed");
	if (!create_views(ids, 2))
		return;
	r = ioctl(kvm, KVM_CREATE_VM, 0);
	EXPECT(fails_with(r, EBUSY), "KVM_CREATE_VM with a view (got %s)", err_name(r));
	mmview_migrate(ids[1]);
	r = ioctl(kvm, KVM_CREATE_VM, 0);
	EXPECT(fails_with(r, EBUSY), "KVM_CREATE_VM from the view (got %s)", err_name(r));
}

/* Whether the PCI device @dev's sysfs attribute @attr starts with @want. */
static bool sysfs_id_is(const char *dev, const char *attr, const char *want)
{
	char path[300], id[16];

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/%s", dev, attr);
	return read_whole(path, id, sizeof(id)) > 0 && !strncmp(id, want, strlen(want));
}

/*
 * The BAR of QEMU's pci-testdev (vendor 1b36, device 0005; guest/run adds one), mapped
 * through sysfs: a device mapping (VM_IO | VM_PFNMAP, with a file). NULL if absent.
 */
static void *map_test_device(int *fd_out)
{
	char path[300];
	struct dirent *d;
	DIR *dir = opendir("/sys/bus/pci/devices");
	void *p = NULL;

	*fd_out = -1;
	while (dir && !p && (d = readdir(dir))) {
		if (!sysfs_id_is(d->d_name, "vendor", "0x1b36") ||
		    !sysfs_id_is(d->d_name, "device", "0x0005"))
			continue;
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/resource0", d->d_name);
		*fd_out = open(path, O_RDWR);
		if (*fd_out < 0)
			continue;
		p = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, *fd_out, 0);
		if (p == MAP_FAILED)
			p = NULL;
	}
	if (dir)
		closedir(dir);
	return p;
}

/* A device mapping refuses CREATE; with views, mapping a device fails. */
static void case_refuse_device(void)
{
	int fd;
	void *bar = map_test_device(&fd), *again;
	long v;

	EXPECT(bar, "mapping pci-testdev's BAR 0 through sysfs (%s)", strerror(errno));
	if (!bar)
		return;
	refused("a device mapping");
	munmap(bar, page);
	v = mmview_create();
	EXPECT(v > 0, "CREATE once the device is unmapped (got %s)", err_name(v));
	mmview_migrate(v);
	again = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	EXPECT(again == MAP_FAILED && errno == EOPNOTSUPP,
	       "mapping the device from a view fails EOPNOTSUPP (%s)",
	       again == MAP_FAILED ? strerror(errno) : "mapped");
	close(fd);
}

/* ARCH_MAP_VDSO_64 (checkpoint/restore) maps special mappings per view: refused with views. */
static void vdso_range(const char *name, unsigned long *start, unsigned long *end)
{
	char line[256];
	FILE *f = fopen("/proc/self/maps", "r");

	*start = *end = 0;
	while (f && fgets(line, sizeof(line), f))
		if (strstr(line, name))
			sscanf(line, "%lx-%lx", start, end);
	if (f)
		fclose(f);
}

static void unmap_vdso(void)
{
	unsigned long start, end;

	vdso_range("[vdso]", &start, &end);
	munmap((void *)start, end - start);
	vdso_range("[vvar]", &start, &end);
	munmap((void *)start, end - start);
}

/* A perf ring buffer: its locked pages are charged to one mm (perf marks it VM_DONTCOPY). */
static void case_refuse_perf_buffer(void)
{
	struct perf_event_attr attr = {
	    .type = PERF_TYPE_SOFTWARE,
	    .size = sizeof(attr),
	    .config = PERF_COUNT_SW_DUMMY,
	    .disabled = 1,
	};
	long fd = syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0L);
	void *rb;

	EXPECT(fd >= 0, "perf_event_open (%s)", strerror(errno));
	if (fd < 0)
		return;
	rb = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_SHARED, (int)fd, 0);
	EXPECT(rb != MAP_FAILED, "mmap of the ring buffer (%s)", strerror(errno));
	refused("a perf ring buffer mapped");
	if (rb != MAP_FAILED)
		munmap(rb, 2 * page);
	EXPECT(mmview_create() > 0, "CREATE once the buffer is unmapped (%s)", strerror(errno));
}

static void case_refuse_map_vdso(void)
{
	unsigned long start, end;
	long r;

	/* glibc calls the vDSO it found at startup: no clock or time calls from here on. */
	unmap_vdso();
	r = syscall(SYS_arch_prctl, ARCH_MAP_VDSO_64, 0UL);
	vdso_range("[vdso]", &start, &end);
	EXPECT(r > 0 && start, "ARCH_MAP_VDSO_64 without views maps it again (got %s)",
	       err_name(r));
	r = mmview_create();
	EXPECT(r > 0, "CREATE (got %s)", err_name(r));
	unmap_vdso(); /* replayed in every view */
	r = syscall(SYS_arch_prctl, ARCH_MAP_VDSO_64, 0UL);
	EXPECT(fails_with(r, EBUSY), "ARCH_MAP_VDSO_64 with views fails EBUSY (got %s)",
	       err_name(r));
	vdso_range("[vdso]", &start, &end);
	EXPECT(!start, "no vDSO mapped after the refusal");
}

/* ---- threads across views ---- */

struct pingpong {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int turn, rounds;
	long view;
	pthread_barrier_t *ready;
	uint32_t futex_word;
	bool futex_woken;
};

static void *pong_thread(void *arg)
{
	struct pingpong *pp = arg;
	int i;

	pthread_barrier_wait(pp->ready);
	mmview_migrate(pp->view);
	for (i = 0; i < pp->rounds; i++) {
		pthread_mutex_lock(&pp->lock);
		while (pp->turn != 1)
			pthread_cond_wait(&pp->cond, &pp->lock);
		pp->turn = 0;
		pthread_cond_signal(&pp->cond);
		pthread_mutex_unlock(&pp->lock);
	}
	/* A shared (not PRIVATE) futex: keyed through GUP, which views redirect to the base. */
	while (__atomic_load_n(&pp->futex_word, __ATOMIC_ACQUIRE) == 0)
		syscall(SYS_futex, &pp->futex_word, FUTEX_WAIT, 0, NULL, NULL, 0);
	pp->futex_woken = true;
	return (void *)(long)mmview_current();
}

static void *exit_in_view_thread(void *arg)
{
	struct pingpong *pp = arg;

	pthread_barrier_wait(pp->ready);
	mmview_migrate(pp->view + 1);
	return (void *)(long)mmview_current();
}

/* ---- membarrier: one process across views ---- */

static _Atomic int spinner_state; /* 1: spinning in view 2 on CPU 1; 2: stop */

static void pin_to_cpu(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static void *spin_in_view(void *arg)
{
	mmview_migrate((long)arg);
	pin_to_cpu(1);
	atomic_store(&spinner_state, 1);
	while (atomic_load(&spinner_state) != 2)
		;
	mmview_migrate(0);
	return NULL;
}

/* Function-call interrupts CPU 1 has taken ("CAL" in /proc/interrupts), or -1. */
static long cal_interrupts_cpu1(void)
{
	FILE *f = fopen("/proc/interrupts", "r");
	char line[512];
	long cpu0, cpu1 = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, " CAL: %ld %ld", &cpu0, &cpu1) == 2)
			break;
	fclose(f);
	return cpu1;
}

static long membarrier_cmd(int cmd)
{
	return syscall(SYS_membarrier, cmd, 0, 0);
}

/*
 * A membarrier registration made in one view holds for the whole process, views created later
 * included, and the expedited commands interrupt the CPUs that run the process's threads in
 * any view: a thread spinning in view 2 on CPU 1 takes an IPI for (nearly) each command issued
 * from view 1 on CPU 0.
 */
static void case_membarrier(void)
{
	long v1 = mmview_create(), v2 = mmview_create(), v3, r, before, after;
	pthread_t spinner;
	int i;

	EXPECT(v1 > 0 && v2 > 0, "CREATE (got %ld, %ld)", v1, v2);
	mmview_migrate(v1);
	pin_to_cpu(0);
	r = membarrier_cmd(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED);
	EXPECT(r == 0, "REGISTER_PRIVATE_EXPEDITED in view %ld (got %s)", v1, err_name(r));
	mmview_migrate(v2);
	r = membarrier_cmd(MEMBARRIER_CMD_PRIVATE_EXPEDITED);
	EXPECT(r == 0, "PRIVATE_EXPEDITED from view %ld after registration in view %ld (got %s)",
	       v2, v1, err_name(r));
	v3 = mmview_create();
	mmview_migrate(v3);
	r = membarrier_cmd(MEMBARRIER_CMD_PRIVATE_EXPEDITED);
	EXPECT(r == 0, "PRIVATE_EXPEDITED from view %ld, created after the registration (got %s)",
	       v3, err_name(r));
	mmview_migrate(v1);

	atomic_store(&spinner_state, 0);
	if (pthread_create(&spinner, NULL, spin_in_view, (void *)v2) != 0) {
		EXPECT(false, "pthread_create");
		return;
	}
	while (atomic_load(&spinner_state) != 1)
		;
	before = cal_interrupts_cpu1();
	for (i = 0; i < 2000; i++)
		membarrier_cmd(MEMBARRIER_CMD_PRIVATE_EXPEDITED);
	after = cal_interrupts_cpu1();
	atomic_store(&spinner_state, 2);
	pthread_join(spinner, NULL);
	/* Half, in case CPU 1 runs a kernel thread now and then; without views' IPIs it is ~0. */
	EXPECT(before >= 0 && after - before >= 1000,
	       "2,000 commands from view %ld on CPU 0 interrupted CPU 1, which runs a thread of "
	       "view %ld, at least 1,000 times (got %ld)",
	       v1, v2, after - before);
	mmview_migrate(0);
}

static void case_threads_across_views(void)
{
	pthread_barrier_t ready;
	struct pingpong pp = {
	    .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER, .rounds = 2000};
	pthread_t pong, lone;
	void *ret = NULL, *ret2 = NULL;
	int i;

	pthread_barrier_init(&ready, NULL, 3);
	pp.ready = &ready;
	pthread_create(&pong, NULL, pong_thread, &pp);
	pthread_create(&lone, NULL, exit_in_view_thread, &pp);
	pp.view = mmview_create();
	EXPECT(mmview_create() == pp.view + 1, "second view");
	pthread_barrier_wait(&ready);
	for (i = 0; i < pp.rounds; i++) {
		pthread_mutex_lock(&pp.lock);
		pp.turn = 1;
		pthread_cond_signal(&pp.cond);
		while (pp.turn != 0)
			pthread_cond_wait(&pp.cond, &pp.lock);
		pthread_mutex_unlock(&pp.lock);
	}
	/* The lone thread is alone in its view: pthread_join relies on its exit's futex wake. */
	EXPECT(pthread_join(lone, &ret2) == 0 && (long)ret2 == pp.view + 1,
	       "pthread_join of a thread that exited alone in view %ld (got %ld)", pp.view + 1,
	       (long)ret2);
	usleep(10000);
	__atomic_store_n(&pp.futex_word, 1, __ATOMIC_RELEASE);
	syscall(SYS_futex, &pp.futex_word, FUTEX_WAKE, 1, NULL, NULL, 0);
	EXPECT(pthread_join(pong, &ret) == 0 && (long)ret == pp.view && pp.futex_woken,
	       "condition variable ping-pong (%d rounds), shared futex and join across views",
	       pp.rounds);
}

struct occupant {
	_Atomic int stop;
	long view, seen_view, left;
	char *mem;
	pthread_barrier_t *ready, *in_view;
};

static void *occupant_thread(void *arg)
{
	struct occupant *o = arg;
	long n = 0;

	pthread_barrier_wait(o->ready);
	mmview_migrate(o->view);
	pthread_barrier_wait(o->in_view);
	while (!atomic_load(&o->stop))
		o->mem[(n++ % NPAGES) * page]++;
	o->seen_view = mmview_current();
	o->left = mmview_migrate(0);
	return NULL;
}

/* A thread alone in a deleted view exits: pthread_join() from the base returns. */
static void *exit_in_view(void *arg)
{
	mmview_migrate(*(long *)arg);
	usleep(200 * 1000); /* meanwhile the view is deleted */
	return arg;
}

static void case_join_from_deleted_view(void)
{
	struct timespec deadline;
	pthread_t t;
	long v = mmview_create();
	void *ret = NULL;
	int r;

	EXPECT(v > 0, "CREATE (got %s)", err_name(v));
	pthread_create(&t, NULL, exit_in_view, &v);
	usleep(50 * 1000);
	EXPECT(mmview_delete(v) == 0, "DELETE of the thread's view (%s)", strerror(errno));
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += 20;
	r = pthread_timedjoin_np(t, &ret, &deadline);
	EXPECT(r == 0 && ret == &v,
	       "pthread_join of a thread that exited alone in a deleted view (%s)",
	       r ? strerror(r) : "ok");
	if (r)
		_exit(1); /* the thread's stack may still be in use: leave */
}

static void case_delete_occupied(void)
{
	pthread_barrier_t ready, in_view;
	struct occupant o = {0};
	pthread_t t;
	long r;

	o.mem = map_anon(NPAGES);
	o.ready = &ready;
	o.in_view = &in_view;
	pthread_barrier_init(&ready, NULL, 2);
	pthread_barrier_init(&in_view, NULL, 2);
	pthread_create(&t, NULL, occupant_thread, &o);
	o.view = mmview_create();
	pthread_barrier_wait(&ready);
	pthread_barrier_wait(&in_view);
	r = mmview_delete(o.view);
	EXPECT(r == 0, "DELETE of an occupied view returns 0 (got %s)", err_name(r));
	r = mmview_migrate(o.view);
	EXPECT(fails_with(r, EINVAL), "nobody else may migrate into it (got %s)", err_name(r));
	usleep(20000);
	atomic_store(&o.stop, 1);
	pthread_join(t, NULL);
	EXPECT(o.seen_view == o.view && o.left == o.view,
	       "its occupant kept running in it and migrated away (current %ld, left %ld)",
	       o.seen_view, o.left);
}

/* ---- exit and exec from a view ---- */

static void case_exit_from_view(void)
{
	char *buf = map_anon(NPAGES);
	long v;
	int i;

	for (i = 0; i < NPAGES; i++)
		buf[i * page] = 1;
	v = mmview_create();
	mmview_create();
	mmview_migrate(v);
	buf[0] = 2;
	/* The child exits here, in view 1, with views 0 and 2 alive: all must be freed. */
}

/*
 * A vfork child shares the view of the thread that called vfork(). When its process ends
 * before the child execs (another thread called exit_group()), the child still runs on that
 * thread's stack and reaches the process's memory through the view: the base must outlive
 * the process until the child is gone. The child reports through a pipe.
 */
static int vfork_report[2];
static char *vfork_mem;
static pid_t vfork_process;

static void *vfork_in_view(void *arg)
{
	pid_t pid;

	mmview_migrate(*(long *)arg);
	pid = vfork();
	if (pid == 0) {
		char ok = 'y';
		int i;

		/* Only system calls here: the child borrows its parent thread's stack. */
		while (syscall(SYS_getppid) == vfork_process)
			syscall(SYS_sched_yield);
		for (i = 0; i < NPAGES; i++)
			if (vfork_mem[i * page] != (char)i)
				ok = 'n';
		/* The group ended with the process: no view may be created into it. */
		if (syscall(__NR_mmview, (long)MMVIEW_CREATE, 0L, 0L) != -1)
			ok = 'c';
		if (write(vfork_report[1], &ok, 1) != 1)
			_exit(1);
		_exit(0);
	}
	return NULL; /* not reached: the process ends while this thread waits in vfork() */
}

static void case_vfork_child_outlives_process(void)
{
	struct pollfd pfd;
	char got = 0;
	pid_t pid;
	int status;

	EXPECT(pipe(vfork_report) == 0, "pipe");
	prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); /* reap the orphaned vfork child */
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		static long view;
		pthread_t t;
		int i;

		close(vfork_report[0]);
		vfork_process = getpid();
		vfork_mem = map_anon(NPAGES);
		for (i = 0; i < NPAGES; i++)
			vfork_mem[i * page] = (char)i;
		view = mmview_create();
		pthread_create(&t, NULL, vfork_in_view, &view);
		usleep(300 * 1000); /* the thread is in vfork() by now */
		_exit(0);           /* the process ends; its vfork child lives on in view 1 */
	}
	close(vfork_report[1]);
	waitpid(pid, &status, 0);
	pfd = (struct pollfd){.fd = vfork_report[0], .events = POLLIN};
	EXPECT(poll(&pfd, 1, 20000) == 1 && read(vfork_report[0], &got, 1) == 1 && got == 'y',
	       "the vfork child read %s the process's memory after the process ended",
	       got == 'n'   ? "wrong contents of"
	       : got == 'c' ? "(and CREATE succeeded into the ended group)"
	                    : "nothing of (killed: SIGBUS?)");
	while (waitpid(-1, &status, 0) > 0) /* the vfork child, reparented to this process */
		EXPECT(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		       "the vfork child ended with status %#x", status);
	close(vfork_report[0]);
}

/*
 * Only a thread of the group's process creates views: a view made by a vfork child, or by a
 * process sharing the mm through CLONE_VM, would outlive the group that drops its reference.
 */
static volatile long vfork_create_result;
static volatile int vfork_create_errno;

static void create_in_vfork_child(void)
{
	pid_t pid;

	vfork_create_result = 0;
	pid = vfork();
	if (pid == 0) {
		vfork_create_result = syscall(__NR_mmview, (long)MMVIEW_CREATE, 0L, 0L);
		vfork_create_errno = errno;
		_exit(0);
	}
	waitpid(pid, NULL, 0);
}

static int clone_vm_child(void *arg)
{
	(void)arg;
	return 0;
}

static void case_create_only_in_process(void)
{
	static char stack[64 << 10];
	int status = 0;
	long v;
	pid_t pid;

	create_in_vfork_child();
	EXPECT(vfork_create_result == -1 && vfork_create_errno == EBUSY,
	       "CREATE in a vfork child, no views yet, fails EBUSY (got %ld, %s)",
	       vfork_create_result, strerrorname_np(vfork_create_errno));
	v = mmview_create();
	EXPECT(v > 0, "the process itself creates a view (got %s)", err_name(v));
	mmview_migrate(v);
	create_in_vfork_child();
	EXPECT(vfork_create_result == -1 && vfork_create_errno == EBUSY,
	       "CREATE in a vfork child of a thread in view %ld fails EBUSY (got %ld, %s)", v,
	       vfork_create_result, strerrorname_np(vfork_create_errno));
	EXPECT(mmview_create() > v, "the process still creates views (%s)", strerror(errno));

	/* A process that shared its mm with another process (clone CLONE_VM, not a thread). */
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		pid_t c = clone(clone_vm_child, stack + sizeof(stack), CLONE_VM | SIGCHLD, NULL);

		child_failures = 0;
		EXPECT(c > 0 && waitpid(c, NULL, 0) == c, "clone(CLONE_VM) (%s)", strerror(errno));
		v = mmview_create();
		EXPECT(fails_with(v, EBUSY),
		       "CREATE in a process whose mm another process shared fails EBUSY (got %s)",
		       err_name(v));
		fflush(stdout);
		_exit(child_failures ? 1 : 0);
	}
	EXPECT(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
	           WEXITSTATUS(status) == 0,
	       "the CLONE_VM process's checks (status %#x)", status);
}

static void case_exec_from_view(void)
{
	long v = mmview_create();

	mmview_migrate(v);
	execl("/bin/sh", "sh", "-c", "exit 0", (char *)NULL);
	EXPECT(0, "exec from a view (%s)", strerror(errno));
}

/* ---- compaction while views fault and write ---- */

struct writer {
	char *mem;
	long view;
	int slot;
	_Atomic int *stop;
	long errors;
	pthread_barrier_t *ready;
};

static void *writer_thread(void *arg)
{
	struct writer *w = arg;
	unsigned char gen = 0;
	int i;

	pthread_barrier_wait(w->ready);
	mmview_migrate(w->view);
	while (!atomic_load(w->stop)) {
		gen++;
		for (i = 0; i < NPAGES * 4; i++)
			w->mem[i * page + w->slot] = gen;
		for (i = 0; i < NPAGES * 4; i++)
			w->errors += (unsigned char)w->mem[i * page + w->slot] != gen;
	}
	return NULL;
}

static void case_compaction(void)
{
	pthread_barrier_t ready;
	_Atomic int stop = 0;
	struct writer w[2];
	pthread_t t[2];
	char *mem = map_anon(NPAGES * 4);
	int i, k, bad = 0;

	memset(mem, 0, NPAGES * 4 * page);
	pthread_barrier_init(&ready, NULL, 3);
	for (i = 0; i < 2; i++) {
		w[i] = (struct writer){mem, 0, i * 64, &stop, 0, &ready};
		pthread_create(&t[i], NULL, writer_thread, &w[i]);
	}
	w[0].view = mmview_create();
	w[1].view = mmview_create();
	pthread_barrier_wait(&ready);
	for (k = 0; k < 10; k++)
		EXPECT(write_file("/proc/sys/vm/compact_memory", "1") == 0, "compact_memory");
	atomic_store(&stop, 1);
	for (i = 0; i < 2; i++) {
		pthread_join(t[i], NULL);
		EXPECT(w[i].errors == 0, "writer in view %ld read %ld stale bytes", w[i].view,
		       w[i].errors);
	}
	/* PFN checker: each view maps exactly the base's frame, after compaction. */
	for (i = 0; i < NPAGES * 4; i++) {
		uint64_t base_pfn = pfn_of(mem + i * page);

		for (k = 0; k < 2; k++) {
			uint64_t p;

			mmview_migrate(w[k].view);
			p = pfn_of(mem + i * page);
			bad += p && p != base_pfn;
			mmview_migrate(0);
		}
	}
	EXPECT(bad == 0, "PFN checker: %d mirrors map another frame than the base", bad);
}

/* ---- O_DIRECT from a view: the pin is taken on the base's page ---- */

static void case_odirect(void)
{
	char *src = map_anon(16), *dst = map_anon(16);
	long v;
	int fd, i, bad = 0;
	ssize_t n;

	EXPECT(write_file("/sys/block/zram0/disksize", "16M") == 0 || errno == EBUSY,
	       "zram0 as a block device (%s)", strerror(errno));
	fd = open("/dev/zram0", O_RDWR | O_DIRECT);
	EXPECT(fd >= 0, "open /dev/zram0 O_DIRECT (%s)", strerror(errno));
	if (fd < 0)
		return;
	dst[0] = 0; /* present in the base before the view exists */
	v = mmview_create();
	mmview_migrate(v);
	for (i = 0; i < 16 * page; i++)
		src[i] = (char)(i * 7 + 1);
	n = pwrite(fd, src, 16 * page, 0);
	EXPECT(n == 16 * page, "O_DIRECT write from the view's mirrors (%s)", err_name(n));
	n = pread(fd, dst, 16 * page, 0);
	EXPECT(n == 16 * page, "O_DIRECT read into the view's mirrors (%s)", err_name(n));
	for (i = 0; i < 16 * page; i++)
		bad += dst[i] != (char)(i * 7 + 1);
	EXPECT(bad == 0, "the view reads what the device returned (%d bytes wrong)", bad);
	mmview_migrate(0);
	bad = 0;
	for (i = 0; i < 16 * page; i++)
		bad += dst[i] != (char)(i * 7 + 1);
	EXPECT(bad == 0, "the base sees the DMA'd data too (%d bytes wrong)", bad);
	close(fd);
}

/*
 * vmsplice from a view: the pipe holds the base's pages (fast GUP cannot take a mirror, the
 * slow path takes the base's page), so writes made after the splice, from the base and from
 * another view, are what the pipe delivers; compaction meanwhile keeps every view on the
 * base's frames.
 */
static void case_vmsplice(void)
{
	const int pages = 8;
	char *buf = map_anon(pages), *out = malloc(pages * page);
	struct iovec iov = {.iov_base = buf, .iov_len = pages * page};
	long ids[3];
	int pfd[2], i, bad = 0;
	ssize_t n, got = 0;

	if (!buf || !out || pipe(pfd)) {
		EXPECT(false, "set-up (%s)", strerror(errno));
		return;
	}
	memset(buf, 'a', pages * page);
	if (!create_views(ids, 3))
		return;
	mmview_migrate(ids[1]);
	n = vmsplice(pfd[1], &iov, 1, 0);
	mmview_migrate(0);
	EXPECT(n == pages * page, "vmsplice of %d pages from view 1 (got %s)", pages, err_name(n));
	for (i = 0; i < 3; i++)
		EXPECT(write_file("/proc/sys/vm/compact_memory", "1") == 0, "compact_memory");
	memset(buf, 'b', pages / 2 * page);
	mmview_migrate(ids[2]);
	memset(buf + pages / 2 * page, 'c', pages / 2 * page);
	mmview_migrate(0);
	while (got < pages * page && (n = read(pfd[0], out + got, pages * page - got)) > 0)
		got += n;
	EXPECT(got == pages * page, "read back %zd of %ld bytes", got, pages * page);
	for (i = 0; i < got; i++)
		bad += out[i] != (i < pages / 2 * page ? 'b' : 'c');
	EXPECT(bad == 0, "the pipe delivers the later writes of the base and view 2 (%d wrong)",
	       bad);
	for (i = 0; i < pages; i++) {
		uint64_t base_pfn = pfn_of(buf + i * page);
		int v;

		for (v = 1; v < 3; v++) {
			mmview_migrate(ids[v]);
			if (pfn_of(buf + i * page) != base_pfn)
				bad++;
			mmview_migrate(0);
		}
	}
	EXPECT(bad == 0, "PFN checker: views map the base's frames (%d mismatches)", bad);
	close(pfd[0]);
	close(pfd[1]);
	free(out);
}

/* ---- SWITCH_BASE ---- */

/* A new zram device (/sys/class/zram-control/hot_add) of @size as swap; its path, or NULL. */
static const char *zram_swap(const char *size)
{
	static char path[32];
	char id[16], sysfs[64], cmd[96];

	if (read_whole("/sys/class/zram-control/hot_add", id, sizeof(id)) <= 0)
		return NULL;
	id[strcspn(id, "\n")] = '\0';
	snprintf(sysfs, sizeof(sysfs), "/sys/block/zram%s/disksize", id);
	snprintf(path, sizeof(path), "/dev/zram%s", id);
	snprintf(cmd, sizeof(cmd), "mkswap %s >/dev/null 2>&1", path);
	if (write_file(sysfs, size) || system(cmd) || swapon(path, 0))
		return NULL;
	return path;
}

/*
 * SWITCH_BASE moves swap entries into the new base: swapoff must still find them (the new
 * base on mmlist). On the previous kernel swapoff retried until its alarm.
 */
static void case_swapoff_after_switch_base(void)
{
	const char *swap = zram_swap("16M");
	char *buf = map_anon(NPAGES);
	const char *swapped;
	int i, bad = 0, status = 0;
	long v;
	pid_t pid;

	EXPECT(swap, "zram swap (%s)", strerror(errno));
	if (!swap || !buf)
		return;
	for (i = 0; i < NPAGES; i++)
		buf[i * page] = (char)(i + 5);
	EXPECT(madvise(buf, NPAGES * page, MADV_PAGEOUT) == 0, "MADV_PAGEOUT (%s)",
	       strerror(errno));
	swapped = smaps_field(buf, "Swap:");
	EXPECT(swapped && atol(swapped) > 0, "pages swapped out before the switch (Swap:%s)",
	       swapped ? swapped : " none");
	v = mmview_create();
	EXPECT(v > 0 && mmview_migrate(v) == 0, "CREATE and MIGRATE (%s)", strerror(errno));
	EXPECT(mmview_switch_base() == v, "SWITCH_BASE (%s)", strerror(errno));
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		alarm(60);
		_exit(swapoff(swap) == 0 ? 0 : 1);
	}
	EXPECT(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
	           WEXITSTATUS(status) == 0,
	       "swapoff after SWITCH_BASE finishes (status %#x%s)", status,
	       WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM ? ": still retrying after 60 s"
	                                                          : "");
	for (i = 0; i < NPAGES; i++)
		bad += buf[i * page] != (char)(i + 5);
	EXPECT(bad == 0, "%d of %d pages read wrong after swapoff", bad, NPAGES);
}

/*
 * CREATE write-protects the caller's unshared pages to share them copy-on-write with the new
 * view; another thread still writing through its TLB would write into the view's copy. The
 * writer runs on the other CPU; a view's copy must never change once it exists.
 */
static volatile bool tlb_writer_stop;

static void *tlb_writer(void *arg)
{
	volatile long *counter = arg;
	cpu_set_t one;

	CPU_ZERO(&one);
	CPU_SET(1, &one);
	sched_setaffinity(0, sizeof(one), &one);
	while (!tlb_writer_stop)
		(*counter)++;
	return NULL;
}

static void case_create_flushes_tlb(void)
{
	volatile long *counter = (volatile long *)map_anon(1);
	cpu_set_t zero;
	pthread_t t;
	int round, changed = 0;

	EXPECT(counter && mmview_unshare((void *)counter, page) == 0, "UNSHARE a page (%s)",
	       strerror(errno));
	if (!counter)
		return;
	CPU_ZERO(&zero);
	CPU_SET(0, &zero);
	sched_setaffinity(0, sizeof(zero), &zero);
	*counter = 1;
	pthread_create(&t, NULL, tlb_writer, (void *)counter);
	while (*counter < 1000000)
		; /* the writer runs, its TLB entry writable */
	for (round = 0; round < 100; round++) {
		long v = mmview_create(), first, later;

		if (v <= 0)
			break;
		mmview_migrate(v);
		first = *counter;
		for (int spin = 0; spin < 200000; spin++)
			__asm__ volatile("" ::: "memory");
		later = *counter;
		mmview_migrate(0);
		mmview_delete(v);
		changed += first != later;
	}
	tlb_writer_stop = true;
	pthread_join(t, NULL);
	EXPECT(round == 100, "100 CREATEs (%s)", strerror(errno));
	EXPECT(changed == 0,
	       "in %d of %d new views the unshared copy changed after CREATE: the base's writer "
	       "wrote through a stale TLB entry",
	       changed, round);
}

/*
 * SWITCH_BASE from a view while another thread DELETEs that view: exactly one of them may
 * succeed. On the kernel that checked for deletion before taking the lock both could, and
 * the group then kept a base it held no reference on (KASAN: use-after-free once the view's
 * last thread left). A third thread keeps taking the write lock (mmap and munmap), so that
 * the two often queue for it.
 */
static _Atomic long race_view;
static _Atomic int race_round, race_done;
static _Atomic long race_switch_result;
static volatile bool race_stop;

static void *race_switcher(void *arg)
{
	(void)arg;
	for (int round = 1;; round++) {
		while (atomic_load(&race_round) != round)
			if (race_stop)
				return NULL;
		mmview_migrate(atomic_load(&race_view));
		atomic_store(&race_done, round * 3 - 2); /* in the view */
		while (atomic_load(&race_done) != round * 3 - 1)
			;
		/* A varying head start for DELETE: each may queue for the lock first. */
		for (int spin = round * 7919 % 3000; spin > 0; spin--)
			__asm__ volatile("" ::: "memory");
		atomic_store(&race_switch_result, mmview_switch_base());
		atomic_store(&race_done, round * 3);
	}
}

static void *race_locker(void *arg)
{
	(void)arg;
	while (!race_stop) {
		void *p = mmap(NULL, page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		munmap(p, page);
	}
	return NULL;
}

static void case_switch_base_races_delete(void)
{
	pthread_t switcher, locker;
	long base = 0, v, del = 0;
	int round, both = 0, switched = 0, deleted = 0;

	alarm(120); /* a hang fails the case rather than the whole run */
	pthread_create(&switcher, NULL, race_switcher, NULL);
	pthread_create(&locker, NULL, race_locker, NULL);
	for (round = 1; round <= 500 && !both; round++) {
		v = mmview_create();
		if (v <= 0)
			break;
		atomic_store(&race_view, v);
		atomic_store(&race_round, round);
		while (atomic_load(&race_done) != round * 3 - 2)
			sched_yield();
		atomic_store(&race_done, round * 3 - 1); /* go */
		del = mmview_delete(v);
		while (atomic_load(&race_done) != round * 3)
			sched_yield();
		if (atomic_load(&race_switch_result) == v && del == 0) {
			both++;
		} else if (atomic_load(&race_switch_result) == v) {
			switched++;
			mmview_migrate(v); /* the new base; the old one is a view to delete */
			mmview_delete(base);
			base = v;
		} else if (del == 0) {
			deleted++;
		} else {
			break; /* neither: reported below */
		}
	}
	race_stop = true;
	atomic_store(&race_round, -1);
	EXPECT(both == 0, "round %d: SWITCH_BASE and DELETE of the same view both succeeded",
	       round - 1);
	EXPECT(
	    round > 500,
	    "500 rounds, each won by one of them (round %d: SWITCH_BASE returned %ld, DELETE %ld)",
	    round, atomic_load(&race_switch_result), del);
	printf("# %d rounds: SWITCH_BASE won %d, DELETE won %d\n", round - 1, switched, deleted);
	if (both)
		_exit(1); /* the switcher's view is the unreferenced base: leave it alone */
	pthread_join(locker, NULL);
	pthread_join(switcher, NULL);
}

static void case_switch_base(void)
{
	char *buf = map_anon(NPAGES), *fresh = map_anon(NPAGES), *later;
	uint64_t pfn_before, pfn_after;
	long v, w, r;
	int i, bad = 0;
	pid_t pid;

	for (i = 0; i < NPAGES; i++)
		buf[i * page] = (char)i;
	v = mmview_create();
	mmview_migrate(v);
	for (i = 0; i < NPAGES; i++)
		fresh[i * page] = (char)(i + 1); /* faulted in the base, mirrored here */
	pfn_before = pfn_of(buf);
	r = mmview_switch_base();
	EXPECT(r == v, "SWITCH_BASE from view %ld returns its id (got %s)", v, err_name(r));
	EXPECT(mmview_current() == v, "the caller stays in its view");
	pfn_after = pfn_of(buf);
	EXPECT(pfn_before && pfn_before == pfn_after,
	       "the new base maps the same frames (%#llx -> %#llx)", (unsigned long long)pfn_before,
	       (unsigned long long)pfn_after);
	r = mmview_delete(v);
	EXPECT(fails_with(r, EPERM), "DELETE of the new base fails EPERM (got %s)", err_name(r));
	r = mmview_delete(0);
	EXPECT(r == 0, "the old base can be deleted (got %s)", err_name(r));
	for (i = 0; i < NPAGES; i++)
		bad += buf[i * page] != (char)i || fresh[i * page] != (char)(i + 1);
	EXPECT(bad == 0, "%d pages changed across SWITCH_BASE and DELETE of the old base", bad);
	later = map_anon(4);
	EXPECT(later != NULL, "with the old base gone, one view is left: mmap works (%s)",
	       later ? "ok" : strerror(errno));
	if (later)
		later[0] = 1;
	pid = fork();
	if (pid == 0)
		_exit(buf[5 * page] == 5 ? 0 : 1);
	EXPECT(pid > 0, "fork from the new base (got %s)", err_name(pid));
	if (pid > 0) {
		int status;

		waitpid(pid, &status, 0);
		EXPECT(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child sees the memory");
	}
	w = mmview_create();
	mmview_migrate(w);
	bad = 0;
	for (i = 0; i < NPAGES; i++) {
		bad += buf[i * page] != (char)i;
		buf[i * page] = (char)(i + 9);
	}
	mmview_migrate(v);
	for (i = 0; i < NPAGES; i++)
		bad += buf[i * page] != (char)(i + 9);
	EXPECT(bad == 0, "a view of the new base shares its memory (%d wrong)", bad);
	r = mmview_create();
	mmview_migrate(r);
	EXPECT(mmview_delete(r) == 0, "delete the caller's own view");
	r = mmview_switch_base();
	EXPECT(fails_with(r, EINVAL), "SWITCH_BASE from a deleted view fails EINVAL (got %s)",
	       err_name(r));
	mmview_migrate(v);
}

struct counter_thread {
	char *mem;
	long view;
	_Atomic int *stop;
	long rounds;
	pthread_barrier_t *ready;
};

static void *count_thread(void *arg)
{
	struct counter_thread *c = arg;
	int i;

	pthread_barrier_wait(c->ready);
	mmview_migrate(c->view);
	pthread_barrier_wait(c->ready);
	while (!atomic_load(c->stop)) {
		for (i = 0; i < NPAGES; i++)
			atomic_fetch_add((_Atomic long *)(c->mem + i * page), 1);
		c->rounds++;
	}
	return NULL;
}

static void case_switch_base_under_load(void)
{
	pthread_barrier_t ready;
	_Atomic int stop = 0;
	struct counter_thread c;
	pthread_t t;
	char *mem = map_anon(NPAGES);
	long v, w, r;
	int i, bad = 0;

	pthread_barrier_init(&ready, NULL, 2);
	c = (struct counter_thread){mem, 0, &stop, 0, &ready};
	pthread_create(&t, NULL, count_thread, &c);
	v = mmview_create();
	w = mmview_create();
	c.view = w;
	pthread_barrier_wait(&ready);
	pthread_barrier_wait(&ready);
	mmview_migrate(v);
	for (i = 0; i < 20; i++) {
		r = mmview_switch_base();
		EXPECT(r == v || r == 0, "SWITCH_BASE (got %s)", err_name(r));
		usleep(2000);
		/* Back and forth between the original base and v. */
		mmview_migrate(i % 2 ? v : 0);
	}
	atomic_store(&stop, 1);
	pthread_join(t, NULL);
	for (i = 0; i < NPAGES; i++)
		bad += *(long *)(mem + i * page) != c.rounds;
	EXPECT(bad == 0 && c.rounds > 0,
	       "a thread in a third view counted through 20 base switches: %d of %d counters off "
	       "(rounds %ld)",
	       bad, NPAGES, c.rounds);
}

/* ---- no leak over many view lifetimes ---- */

/* The leak test's sizes (docs/kernel.md, "Status", stage 8: 10,000 lifetimes, 1,000 processes). */
#define LEAK_LIFETIMES 10000
#define LEAK_PROCESSES 1000

static long meminfo(const char *key)
{
	char line[256];
	long v = -1;
	FILE *f = fopen("/proc/meminfo", "r");

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key)))
			sscanf(line + strlen(key), ": %ld", &v);
	if (f)
		fclose(f);
	return v;
}

/*
 * Free pages on the per-CPU lists (the "count:" of every pageset in /proc/zoneinfo), in kB.
 * They are free memory the allocator hands out first, but NR_FREE_PAGES, and so MemAvailable,
 * leave them out; over the leak case's forks and exits they swing between about 1 and 15 MB
 * (per-CPU list sizes are tuned on the fly since 6.7), which alone made MemAvailable move by
 * more than the 4 MiB the test allows.
 */
static long pcp_free_kb(void)
{
	char line[256];
	long sum = 0, v;
	FILE *f = fopen("/proc/zoneinfo", "r");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, " count: %ld", &v) == 1)
			sum += v;
	if (f)
		fclose(f);
	return sum * (page / 1024);
}

/*
 * Objects of a slab cache in use: freed objects can sit in per-CPU slabs, so shrink the
 * cache first; SLUB's sysfs count is exact where it exists (SLUB_DEBUG), else /proc/slabinfo.
 */
static long slab_objects(const char *name)
{
	char path[128], line[512], n[64];
	long active = -1, v;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/kernel/slab/%s/shrink", name);
	write_file(path, "1");
	snprintf(path, sizeof(path), "/sys/kernel/slab/%s/objects", name);
	f = fopen(path, "r");
	if (f) {
		if (fscanf(f, "%ld", &active) != 1)
			active = -1;
		fclose(f);
		return active;
	}
	f = fopen("/proc/slabinfo", "r");
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "%63s %ld", n, &v) == 2 && !strcmp(n, name))
			active = v;
	if (f)
		fclose(f);
	return active;
}

static void lifetimes(void)
{
	char *buf = map_anon(16);
	int i;

	memset(buf, 1, 16 * page);
	for (i = 0; i < LEAK_LIFETIMES; i++) {
		long v = mmview_create();

		if (v < 0 || mmview_migrate(v) != 0 || buf[(i % 16) * page] != 1 ||
		    mmview_migrate(0) != v || mmview_delete(v) != 0) {
			EXPECT(0, "view lifetime %d failed (%s)", i, err_name(v));
			return;
		}
	}
}

static void case_no_leak(void)
{
	long avail0, avail1, pcp0, pcp1, mm0, mm1, vma0, vma1;
	int i, failures = 0;

	write_file("/proc/sys/vm/drop_caches", "3");
	avail0 = meminfo("MemAvailable");
	pcp0 = pcp_free_kb();
	mm0 = slab_objects("mm_struct");
	vma0 = slab_objects("vm_area_struct");
	lifetimes();
	for (i = 0; i < LEAK_PROCESSES; i++) {
		pid_t pid = fork();
		int status;

		if (pid == 0) {
			long v = mmview_create();

			mmview_create();
			mmview_migrate(v);
			_exit(v > 0 ? 0 : 1);
		}
		waitpid(pid, &status, 0);
		failures += !WIFEXITED(status) || WEXITSTATUS(status) != 0;
	}
	EXPECT(failures == 0, "%d of %d processes exiting with views failed", failures,
	       LEAK_PROCESSES);
	sleep(1); /* VMAs are freed after an RCU grace period */
	write_file("/proc/sys/vm/drop_caches", "3");
	avail1 = meminfo("MemAvailable");
	pcp1 = pcp_free_kb();
	mm1 = slab_objects("mm_struct");
	vma1 = slab_objects("vm_area_struct");
	printf("# MemAvailable %ld -> %ld kB, per-CPU free lists %ld -> %ld kB, "
	       "mm_struct %ld -> %ld, vm_area_struct %ld -> %ld\n",
	       avail0, avail1, pcp0, pcp1, mm0, mm1, vma0, vma1);
	EXPECT(avail1 + pcp1 >= avail0 + pcp0 - 4096,
	       "MemAvailable with the per-CPU free lists dropped by %ld kB",
	       avail0 + pcp0 - avail1 - pcp1);
	EXPECT(mm1 <= mm0 + 8, "mm_struct objects grew from %ld to %ld", mm0, mm1);
	EXPECT(vma1 <= vma0 + 64, "vm_area_struct objects grew from %ld to %ld", vma0, vma1);
}

/* mmview_views [PATTERN]: all cases, or those whose name contains PATTERN. */
int main(int argc, char **argv)
{
	case_filter = argc > 1 ? argv[1] : NULL;
	page = sysconf(_SC_PAGESIZE);
	setvbuf(stdout, NULL, _IOLBF, 0);
	tap_plan(37);
	run_case("ids: CREATE, MIGRATE, DELETE, CURRENT and their errnos with views", case_ids);
	run_case("shared memory is one memory in base and view (contents and PFNs)",
	         case_coherence);
	run_case("concurrent first faults from 4 views lose no update", case_concurrent_faults);
	run_case("fork: writes through a view after fork do not leak into the child",
	         case_fork_no_leak);
	run_case("fork from a non-base view: shared memory from the base, unshared from the view, "
	         "no write leaks either way",
	         case_fork_from_view);
	run_case("unshared data and code diverge per view", case_unshared);
	run_case("live-view limit: ENOSPC (vm.mmview_max_views)", case_limit);
	run_case("refusal: hugetlb", case_refuse_hugetlb);
	run_case("refusal: KSM", case_refuse_ksm);
	run_case("refusal: re-enabling THP (PR_SET_THP_DISABLE 0)", case_refuse_thp);
	run_case("the huge zero page mapped before CREATE: a view, deleted, and exit",
	         case_huge_zero_page);
	run_case("memory THP-mapped before CREATE: contents, PFNs, fork and SWITCH_BASE",
	         case_thp_before_create);
	run_case("refusal: aio", case_refuse_aio);
	run_case("refusal: io_uring", case_refuse_io_uring);
	run_case("refusal: userfaultfd", case_refuse_uffd);
	run_case("refusal: MMU notifier (a KVM VM), and KVM_CREATE_VM with views (EBUSY)",
	         case_refuse_mmu_notifier);
	run_case("refusal with views: io_setup, io_uring_setup, UFFDIO_REGISTER, KSM (EBUSY)",
	         case_refuse_after_create);
	run_case("refusal: device mapping (pci-testdev BAR through sysfs)", case_refuse_device);
	run_case("refusal: ARCH_MAP_VDSO_64", case_refuse_map_vdso);
	run_case("refusal: a perf ring buffer", case_refuse_perf_buffer);
	run_case("condition variables, shared futex and pthread_join across views",
	         case_threads_across_views);
	run_case("membarrier: registered process-wide, IPIs reach threads in other views",
	         case_membarrier);
	run_case("pthread_join of a thread that exited alone in a deleted view",
	         case_join_from_deleted_view);
	run_case("delete while occupied", case_delete_occupied);
	run_case("exit from a view frees every view", case_exit_from_view);
	run_case("exec from a view", case_exec_from_view);
	run_case("CREATE only in the group's process: not in a vfork child, not after CLONE_VM",
	         case_create_only_in_process);
	run_case("a vfork child in a view outlives its process and still reads its memory",
	         case_vfork_child_outlives_process);
	run_case("compaction while two views write: contents and PFNs stay coherent",
	         case_compaction);
	run_case("O_DIRECT from a view: pins land on the base's pages", case_odirect);
	run_case("vmsplice from a view: the pipe holds the base's pages, compaction meanwhile",
	         case_vmsplice);
	run_case("swapoff after SWITCH_BASE moved swap entries", case_swapoff_after_switch_base);
	run_case("CREATE flushes the TLB of the caller's view (a writer on the other CPU)",
	         case_create_flushes_tlb);
	run_case("SWITCH_BASE: the caller's view owns the memory, the old base can be deleted",
	         case_switch_base);
	run_case("SWITCH_BASE racing DELETE of the caller's view: exactly one wins",
	         case_switch_base_races_delete);
	run_case("SWITCH_BASE 20 times while a thread in a third view keeps counting",
	         case_switch_base_under_load);
	run_case("no leak: 10,000 view lifetimes, 1,000 processes exiting with views",
	         case_no_leak);
	return tap_finish();
}
