// SPDX-License-Identifier: MIT
/*
 * A random-operation fuzzer of the views kernel. A supervisor runs victim processes one after
 * another, each for a few seconds and then killed by alarm(): each victim's threads throw
 * random mmview operations (bad arguments included) mixed with random layout changes
 * (mmap, munmap, mremap, mprotect, madvise, shmat/shmdt, mlock), memory accesses, fork, vfork,
 * exec, thread exit, signals, process_vm_readv/writev, /proc/self/mem and robust-futex lists, from
 * several threads in several views. Between victims the supervisor cycles THP through always,
 * madvise and never (the huge zero page on and off), so each victim starts with THP-mapped memory
 * or not, and keeps khugepaged and compaction busy.
 *
 * The test passes when the kernel log stays clean (guest/run fails the run on any report),
 * every victim dies within its time, and the victims did reach the code under test: views were
 * created, entered, deleted and switched, and every operation ran.
 *
 * Usage: mmview_fuzz SECONDS [SEED] (make check: 300; the long tier: 3600). A victim's seed
 * is printed before it starts: `mmview_fuzz 10 SEED` with that seed reruns it first.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atlas/mmview.h>

#include "views_case.h"

#define HPAGE (2UL << 20)
#define POOL (16 * HPAGE)      /* where every layout change happens */
#define FILE_SIZE (4 * HPAGE)  /* the memfd mapped shared and private */
#define SHM_SIZE (64 * 4096UL) /* the System V segment attached and detached in the pool */
#define THREADS 3              /* worker threads per victim, besides its main thread */
#define STACK (256UL << 10)    /* each worker's stack, mapped outside the pool */
#define MAX_VIEWS 8            /* views a victim keeps at most */
#define VICTIM_SECONDS 3       /* alarm() of each victim */
#define GRACE_SECONDS 30       /* after the alarm, before a victim counts as stuck */

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#define MADV_POPULATE_WRITE 23
#endif
#ifndef MLOCK_ONFAULT
#define MLOCK_ONFAULT 1
#endif

/* What the victims did, in memory shared with the supervisor. */
enum op {
	OP_CREATE,
	OP_DELETE,
	OP_MIGRATE,
	OP_CURRENT,
	OP_UNSHARE,
	OP_SHARE,
	OP_SWITCH_BASE,
	OP_BAD_MMVIEW,
	OP_MMAP,
	OP_MUNMAP,
	OP_MREMAP,
	OP_MPROTECT,
	OP_MADVISE,
	OP_SHM,
	OP_MLOCK,
	OP_TOUCH,
	OP_FORK,
	OP_VFORK,
	OP_EXEC,
	OP_THREAD_EXIT,
	OP_SIGNAL,
	OP_PROCESS_VM,
	OP_PROC_MEM,
	OP_ROBUST_LIST,
	OP_COUNT
};
static const char *const op_names[OP_COUNT] = {
    "create",      "delete",      "migrate", "current",    "unshare",        "share",
    "switch_base", "bad mmview",  "mmap",    "munmap",     "mremap",         "mprotect",
    "madvise",     "shmat/shmdt", "mlock",   "touch",      "fork",           "vfork",
    "exec",        "thread exit", "signal",  "process_vm", "/proc/self/mem", "robust list",
};
struct stats {
	_Atomic long tried[OP_COUNT];
	_Atomic long succeeded[OP_COUNT];
};
static struct stats *stats;

/* The victim's state, shared by its threads. */
static char *pool;
static int memfd;
static int shm_id; /* attached outside the pool, removed: it dies with the victim */
static _Atomic long view_ids[MAX_VIEWS]; /* 0: free slot (the base is id 0 only until a switch) */
static char *stacks;
static pthread_t workers[THREADS];
static _Atomic bool worker_done[THREADS];
static _Atomic pid_t worker_tids[THREADS]; /* for tgkill(); a stale one fails with ESRCH */
static __thread sigjmp_buf *fault_jump;
static char *self_path;

static unsigned long rnd(unsigned long *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static unsigned long pick(unsigned long *s, unsigned long n)
{
	return rnd(s) % n;
}

/* A page-aligned range in the pool, often 2 MiB aligned so that THP has a chance. */
static void pool_range(unsigned long *s, char **addr, size_t *len)
{
	if (pick(s, 3) == 0) {
		unsigned long first = pick(s, POOL / HPAGE);

		*addr = pool + first * HPAGE;
		*len = (1 + pick(s, POOL / HPAGE - first)) * HPAGE;
		return;
	}
	unsigned long first = pick(s, POOL / page);

	*addr = pool + first * page;
	*len = (1 + pick(s, 64 < POOL / page - first ? 64 : POOL / page - first)) * page;
}

/* A view id to use: usually a live one, sometimes the base, sometimes nonsense. */
static long some_view(unsigned long *s)
{
	static const long junk[] = {-1, -4096, 1L << 40, 123456, LONG_MIN, LONG_MAX};

	switch (pick(s, 8)) {
	case 0:
		return 0;
	case 1:
		return junk[pick(s, sizeof(junk) / sizeof(junk[0]))];
	default:
		return atomic_load(&view_ids[pick(s, MAX_VIEWS)]);
	}
}

static void count(enum op op, bool ok)
{
	atomic_fetch_add_explicit(&stats->tried[op], 1, memory_order_relaxed);
	if (ok)
		atomic_fetch_add_explicit(&stats->succeeded[op], 1, memory_order_relaxed);
}

static void on_fault(int sig)
{
	(void)sig;
	if (fault_jump)
		siglongjmp(*fault_jump, 1);
	_exit(3); /* a fault outside a guarded access: the victim's own bug */
}

static void on_usr1(int sig)
{
	(void)sig;
}

/* Reads or writes one random pool page; a SIGSEGV or SIGBUS is an expected outcome. */
static bool touch(unsigned long *s)
{
	sigjmp_buf jump;
	volatile char *p = pool + pick(s, POOL / page) * page + pick(s, page);
	bool write = pick(s, 2);

	if (sigsetjmp(jump, 1)) {
		fault_jump = NULL;
		return false;
	}
	fault_jump = &jump;
	if (write)
		*p = (char)rnd(s);
	else
		(void)*p;
	fault_jump = NULL;
	return true;
}

static bool op_mmview(enum op op, unsigned long *s)
{
	char *addr;
	size_t len;
	long r = -1;

	switch (op) {
	case OP_CREATE: {
		unsigned long slot = pick(s, MAX_VIEWS);
		long expected = 0;

		r = mmview_create();
		if (r > 0 && !atomic_compare_exchange_strong(&view_ids[slot], &expected, r))
			mmview_delete(r); /* no free slot: keep the count bounded */
		break;
	}
	case OP_DELETE: {
		unsigned long slot = pick(s, MAX_VIEWS);
		long id = atomic_load(&view_ids[slot]);

		r = mmview_delete(pick(s, 4) ? id : some_view(s));
		if (r == 0 && pick(s, 4))
			atomic_compare_exchange_strong(&view_ids[slot], &id, 0);
		break;
	}
	case OP_MIGRATE:
		r = mmview_migrate(some_view(s));
		break;
	case OP_CURRENT:
		r = mmview_current();
		break;
	case OP_UNSHARE:
	case OP_SHARE:
		pool_range(s, &addr, &len);
		if (pick(s, 6) == 0) /* bad arguments: unaligned, empty, wrapping, kernel */
			switch (pick(s, 4)) {
			case 0:
				addr += 1;
				break;
			case 1:
				len = 0;
				break;
			case 2:
				len = -page;
				break;
			default:
				addr = (char *)0xffff880000000000UL;
				break;
			}
		r = syscall(__NR_mmview, op == OP_UNSHARE ? MMVIEW_UNSHARE : MMVIEW_SHARE, addr,
		            len);
		break;
	case OP_SWITCH_BASE:
		r = mmview_switch_base();
		break;
	default: /* OP_BAD_MMVIEW: unknown operations and extra arguments */
		r = syscall(__NR_mmview, (long)pick(s, 16) - 4, rnd(s), rnd(s), rnd(s));
		break;
	}
	return r >= 0;
}

static bool op_layout(enum op op, unsigned long *s)
{
	static const int prots[] = {PROT_NONE, PROT_READ, PROT_READ | PROT_WRITE,
	                            PROT_READ | PROT_EXEC};
	static const int advice[] = {
	    MADV_DONTNEED,       MADV_FREE,       MADV_HUGEPAGE,   MADV_NOHUGEPAGE,
	    MADV_PAGEOUT,        MADV_COLD,       MADV_COLLAPSE,   MADV_POPULATE_READ,
	    MADV_POPULATE_WRITE, MADV_WIPEONFORK, MADV_KEEPONFORK, MADV_DONTFORK,
	    MADV_DOFORK,         MADV_REMOVE,     MADV_WILLNEED,   MADV_DONTDUMP,
	    MADV_NORMAL,         MADV_SEQUENTIAL,
	};
	char *addr, *to;
	size_t len, to_len;
	void *r;

	pool_range(s, &addr, &len);
	switch (op) {
	case OP_MMAP: {
		int flags = MAP_FIXED | (pick(s, 2) ? MAP_PRIVATE : MAP_SHARED);
		int prot = pick(s, 4) ? PROT_READ | PROT_WRITE : prots[pick(s, 4)];
		int fd = -1;
		off_t off = 0;

		if (pick(s, 3) == 0) {
			fd = memfd;
			off = pick(s, FILE_SIZE / page) * page;
		} else {
			flags |= MAP_ANONYMOUS;
		}
		if (pick(s, 8) == 0)
			flags |= MAP_POPULATE;
		if (pick(s, 16) == 0)
			flags |= MAP_LOCKED;
		r = mmap(addr, len, prot, flags, fd, off);
		return r != MAP_FAILED;
	}
	case OP_MUNMAP:
		if (munmap(addr, len))
			return false;
		/* Keep the hole most of the time, so that only this test's changes land there. */
		if (pick(s, 2))
			mmap(addr, len, PROT_NONE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
		return true;
	case OP_MREMAP:
		switch (pick(s, 3)) {
		case 0: /* shrink or grow in place */
			to_len = (1 + pick(s, 2 * len / page)) * page;
			if (addr + to_len > pool + POOL)
				to_len = pool + POOL - addr;
			return mremap(addr, len, to_len, 0) != MAP_FAILED;
		case 1: /* move within the pool */
			pool_range(s, &to, &to_len);
			if (to + len > pool + POOL)
				return false;
			return mremap(addr, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, to) !=
			       MAP_FAILED;
		default:
			pool_range(s, &to, &to_len);
			if (to + len > pool + POOL)
				return false;
			return mremap(addr, len, len,
			              MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP,
			              to) != MAP_FAILED;
		}
	case OP_MPROTECT:
		return mprotect(addr, len, prots[pick(s, 4)]) == 0;
	case OP_MADVISE:
		return madvise(addr, len, advice[pick(s, sizeof(advice) / sizeof(advice[0]))]) == 0;
	case OP_SHM:
		/* shmdt() unmaps a segment's VMAs itself, not through munmap (ipc/shm.c). */
		if (pick(s, 2))
			return shmdt(addr) == 0;
		if (addr + SHM_SIZE > pool + POOL)
			return false;
		return shmat(shm_id, addr, SHM_REMAP | (pick(s, 4) ? 0 : SHM_RDONLY)) != (void *)-1;
	default: /* OP_MLOCK */
		switch (pick(s, 5)) {
		case 0:
			return mlock(addr, len) == 0;
		case 1:
			return syscall(SYS_mlock2, addr, len, MLOCK_ONFAULT) == 0;
		case 2:
			return munlock(addr, len) == 0;
		case 3:
			return pick(s, 8) == 0 &&
			       mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) == 0;
		default:
			return munlockall() == 0;
		}
	}
}

static bool op_process(enum op op, unsigned long *s)
{
	char buf[256];
	pid_t pid;
	int fd;
	bool ok;

	switch (op) {
	case OP_FORK:
		pid = fork();
		if (pid == 0) {
			unsigned long cs = rnd(s) | 1;

			for (int i = 0; i < 16; i++)
				touch(&cs);
			if (pick(&cs, 2))
				mmview_migrate(mmview_create());
			touch(&cs);
			_exit(0);
		}
		return pid > 0 && waitpid(pid, NULL, 0) == pid;
	case OP_VFORK:
		pid = vfork();
		if (pid == 0) {
			if (pick(s, 2))
				execl("/bin/true", "true", (char *)NULL);
			_exit(0);
		}
		return pid > 0 && waitpid(pid, NULL, 0) == pid;
	case OP_EXEC:
		/* Rare: the victim ends here, through exec from whatever view this thread is in. */
		if (pick(s, 128) == 0) {
			sigset_t usr1;

			/*
			 * The exec target starts with the default action for SIGUSR1: one that
			 * another thread sent meanwhile stays blocked (the mask survives exec).
			 */
			sigemptyset(&usr1);
			sigaddset(&usr1, SIGUSR1);
			pthread_sigmask(SIG_BLOCK, &usr1, NULL);
			execl(self_path, "mmview_fuzz", "--exec-target", (char *)NULL);
			pthread_sigmask(SIG_UNBLOCK, &usr1, NULL);
		}
		return false;
	case OP_SIGNAL:
		if (pick(s, 2))
			return kill(getpid(), SIGUSR1) == 0;
		return syscall(SYS_tgkill, getpid(), atomic_load(&worker_tids[pick(s, THREADS)]),
		               SIGUSR1) == 0;
	case OP_PROCESS_VM: {
		struct iovec local = {buf, sizeof(buf)};
		struct iovec remote = {pool + pick(s, POOL / page) * page, sizeof(buf)};

		if (pick(s, 2))
			return syscall(SYS_process_vm_readv, getpid(), &local, 1, &remote, 1, 0) >
			       0;
		return syscall(SYS_process_vm_writev, getpid(), &local, 1, &remote, 1, 0) > 0;
	}
	case OP_PROC_MEM:
		fd = open("/proc/self/mem", O_RDWR);
		if (fd < 0)
			return false;
		if (pick(s, 2))
			ok = pread(fd, buf, sizeof(buf), (off_t)(uintptr_t)(pool + rnd(s) % POOL)) >
			     0;
		else
			ok = pwrite(fd, buf, sizeof(buf),
			            (off_t)(uintptr_t)(pool + rnd(s) % POOL)) > 0;
		close(fd);
		return ok;
	default: { /* OP_ROBUST_LIST: the exit path walks it through whatever view the thread is in
		    */
		struct robust_list_head *head =
		    (struct robust_list_head *)(pool + pick(s, POOL / 64) * 64);

		return syscall(SYS_set_robust_list, head, sizeof(*head)) == 0;
	}
	}
}

/* One random operation; false when the calling worker thread should exit. */
static bool one_op(unsigned long *s, bool may_exit)
{
	/* Weights: memory accesses and mmview operations dominate. */
	static const unsigned char weights[OP_COUNT] = {
	    [OP_CREATE] = 6,  [OP_DELETE] = 6,     [OP_MIGRATE] = 12,    [OP_CURRENT] = 1,
	    [OP_UNSHARE] = 4, [OP_SHARE] = 4,      [OP_SWITCH_BASE] = 3, [OP_BAD_MMVIEW] = 2,
	    [OP_MMAP] = 8,    [OP_MUNMAP] = 4,     [OP_MREMAP] = 4,      [OP_MPROTECT] = 4,
	    [OP_MADVISE] = 8, [OP_SHM] = 2,        [OP_MLOCK] = 2,       [OP_TOUCH] = 40,
	    [OP_FORK] = 1,    [OP_VFORK] = 1,      [OP_EXEC] = 1,        [OP_THREAD_EXIT] = 1,
	    [OP_SIGNAL] = 2,  [OP_PROCESS_VM] = 2, [OP_PROC_MEM] = 2,    [OP_ROBUST_LIST] = 1,
	};
	unsigned total = 0, r;
	enum op op;
	bool ok;

	for (op = 0; op < OP_COUNT; op++)
		total += weights[op];
	r = pick(s, total);
	for (op = 0; r >= weights[op]; op++)
		r -= weights[op];

	if (op <= OP_BAD_MMVIEW)
		ok = op_mmview(op, s);
	else if (op <= OP_MLOCK)
		ok = op_layout(op, s);
	else if (op == OP_TOUCH)
		ok = touch(s);
	else if (op == OP_THREAD_EXIT)
		ok = may_exit;
	else
		ok = op_process(op, s);
	count(op, ok);
	return !(op == OP_THREAD_EXIT && may_exit);
}

static void *worker(void *arg)
{
	unsigned long i = (uintptr_t)arg;
	unsigned long s = (i + 1) * 0x9e3779b97f4a7c15UL ^ (unsigned long)time(NULL) ^ getpid();

	s |= 1;
	atomic_store(&worker_tids[i], gettid());
	mmview_migrate(some_view(&s));
	while (one_op(&s, true))
		;
	atomic_store(&worker_done[i], true);
	return NULL;
}

static void start_worker(unsigned long i)
{
	pthread_attr_t attr;

	pthread_attr_init(&attr);
	pthread_attr_setstack(&attr, stacks + i * STACK, STACK);
	atomic_store(&worker_done[i], false);
	if (pthread_create(&workers[i], &attr, worker, (void *)(uintptr_t)i))
		_exit(4);
	pthread_attr_destroy(&attr);
}

/* A victim: never returns; alarm() ends it. */
static void victim(unsigned long seed)
{
	struct sigaction sa = {.sa_handler = on_fault, .sa_flags = SA_NODEFER};
	unsigned long s = seed | 1;

	alarm(VICTIM_SECONDS);
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	sa.sa_handler = on_usr1;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGUSR1, &sa, NULL);

	/* Everything the victim needs outside the pool is mapped before the pool changes. */
	stacks = mmap(NULL, THREADS * STACK, PROT_READ | PROT_WRITE,
	              MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	pool =
	    mmap(NULL, POOL + HPAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	memfd = memfd_create("mmview_fuzz", 0);
	if (stacks == MAP_FAILED || pool == MAP_FAILED || memfd < 0 || ftruncate(memfd, FILE_SIZE))
		_exit(5);
	shm_id = shmget(IPC_PRIVATE, SHM_SIZE, IPC_CREAT | 0600);
	if (shm_id < 0 || shmat(shm_id, NULL, 0) == (void *)-1 || shmctl(shm_id, IPC_RMID, NULL))
		_exit(5);
	pool = (char *)(((uintptr_t)pool + HPAGE - 1) & ~(HPAGE - 1));
	/* Start with memory THP may back (or the huge zero page), touched before any view. */
	mmap(pool, POOL / 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1,
	     0);
	madvise(pool, POOL / 4, MADV_HUGEPAGE);
	for (size_t off = 0; off < POOL / 2; off += HPAGE / 2)
		if (pick(&s, 2))
			pool[off] = 1;
		else
			(void)*(volatile char *)(pool + off);

	for (unsigned long i = 0; i < THREADS; i++)
		start_worker(i);
	for (;;) {
		for (int i = 0; i < 64; i++)
			one_op(&s, false);
		for (unsigned long i = 0; i < THREADS; i++)
			if (atomic_load(&worker_done[i])) {
				pthread_join(workers[i], NULL);
				start_worker(i);
			}
	}
}

static void set_thp(unsigned long n)
{
	static const char *const modes[] = {"always", "madvise", "never"};

	write_file("/sys/kernel/mm/transparent_hugepage/enabled", modes[n % 3]);
	write_file("/sys/kernel/mm/transparent_hugepage/use_zero_page", (n / 3) % 2 ? "0" : "1");
}

/* Waits up to @seconds for @pid; true if it was reaped. */
static bool reap(pid_t pid, int seconds, int *status)
{
	for (int i = 0; i < seconds * 10; i++) {
		pid_t r = waitpid(pid, status, WNOHANG);

		if (r == pid)
			return true;
		if (r < 0)
			return false;
		usleep(100000);
	}
	return false;
}

int main(int argc, char **argv)
{
	long seconds = argc > 1 ? atol(argv[1]) : 60;
	unsigned long seed = argc > 2 ? strtoul(argv[2], NULL, 0) : (unsigned long)time(NULL);
	unsigned long victims = 0, alarms = 0, execs = 0, other = 0;
	struct timespec start, now;
	bool stuck = false;
	char exe[4096];
	ssize_t n;

	if (argc > 1 && !strcmp(argv[1], "--exec-target"))
		return 0; /* a victim's exec lands here */
	page = sysconf(_SC_PAGESIZE);
	setvbuf(stdout, NULL, _IOLBF, 0);
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	exe[n > 0 ? n : 0] = '\0';
	self_path = exe;
	stats =
	    mmap(NULL, sizeof(*stats), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (stats == MAP_FAILED)
		return 1;
	/* Swap, so that MADV_PAGEOUT and reclaim move pages; khugepaged and compaction busy. */
	if (write_file("/sys/block/zram0/disksize", "128M") == 0)
		(void)!system("mkswap /dev/zram0 >/dev/null 2>&1 && swapon /dev/zram0");
	write_file("/sys/kernel/mm/transparent_hugepage/khugepaged/scan_sleep_millisecs", "10");
	write_file("/sys/kernel/mm/transparent_hugepage/khugepaged/alloc_sleep_millisecs", "10");

	tap_plan(3);
	tap_diag("seed %#lx, %ld s", seed, seconds);
	clock_gettime(CLOCK_MONOTONIC, &start);
	do {
		unsigned long vseed = seed + victims * 0x9e3779b97f4a7c15UL;
		int status = 0;
		pid_t pid;

		set_thp(victims);
		if (victims % 4 == 3)
			write_file("/proc/sys/vm/compact_memory", "1");
		printf("# victim %lu: seed %#lx\n", victims, vseed);
		pid = fork();
		if (pid == 0)
			victim(vseed);
		if (pid < 0 || !reap(pid, VICTIM_SECONDS + GRACE_SECONDS, &status)) {
			tap_diag("victim %lu (seed %#lx) did not end %d s after its alarm", victims,
			         vseed, GRACE_SECONDS);
			kill(pid, SIGKILL);
			stuck = !reap(pid, GRACE_SECONDS, &status);
			if (stuck) {
				tap_diag("and SIGKILL did not end it within %d s", GRACE_SECONDS);
				break;
			}
		}
		victims++;
		if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM) {
			alarms++;
		} else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
			execs++; /* only the exec target exits 0 */
		} else {
			other++;
			if (WIFEXITED(status))
				tap_diag("victim %lu exited %d", victims - 1, WEXITSTATUS(status));
			else
				tap_diag("victim %lu killed by signal %d", victims - 1,
				         WTERMSIG(status));
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while (now.tv_sec - start.tv_sec < seconds);
	set_thp(0);

	for (int op = 0; op < OP_COUNT; op++)
		printf("# %-15s %9ld tried %9ld succeeded\n", op_names[op],
		       atomic_load(&stats->tried[op]), atomic_load(&stats->succeeded[op]));
	tap_diag("%lu victims: %lu ended by their alarm, %lu by exec, %lu otherwise", victims,
	         alarms, execs, other);
	tap_check(!stuck, "every victim ended (alarm, or SIGKILL within %d s)", GRACE_SECONDS);
	tap_check(victims > 0 && other == 0,
	          "every victim ran until its alarm or its exec (%lu of %lu)", alarms + execs,
	          victims);
	bool reached = true;
	for (int op = 0; op < OP_COUNT; op++)
		if (op != OP_EXEC && op != OP_THREAD_EXIT && !atomic_load(&stats->succeeded[op]) &&
		    op != OP_BAD_MMVIEW) {
			tap_diag("no %s succeeded", op_names[op]);
			reached = false;
		}
	tap_check(reached, "every operation succeeded at least once (views created, entered, "
	                   "deleted, switched; layout changed; memory touched)");
	return tap_finish();
}
