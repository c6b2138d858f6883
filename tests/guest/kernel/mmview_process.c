// SPDX-License-Identifier: MIT
/*
 * Process-wide state with views (docs/kernel.md, "Status", stage 6): each view is an mm_struct of
 * its own, and what belongs to the process must not split with them.
 *
 * - the memory cgroup owner: a view whose creator exited is still charged to the process's
 *   cgroup (not to a freed task, not to the root cgroup);
 * - dumpability, set by prctl or by a setuid, the core dump filter and memory-deny-write-execute,
 *   in every view and in views created later;
 * - prctl(PR_SET_MM) refused with views; the LDT and anonymous VMA names copied at CREATE, and
 *   changing them refused with views;
 * - /proc/PID/smaps of a view counts the base's pages it maps (mirrors) in Rss, not in Pss;
 *   mlock, MAP_POPULATE and MADV_POPULATE_* from a view map them at once;
 * - another process reading a thread's memory sees that thread's view;
 * - the OOM killer kills a process with views as a whole, and its memory comes back;
 * - rseq concurrency ids (mm_cid) are allocated per view: a documented limit, checked as such;
 * - the OOM reaper and process_mrelease() reap every view of a process that cannot finish
 *   exiting, not only the view of the thread they picked.
 *
 * Each case runs in a child process of its own (views_case.h).
 */
#define _GNU_SOURCE
#include <asm/ldt.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/rseq.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atlas/mmview.h>

#include "views_case.h"

#ifndef MADV_POPULATE_READ /* Linux 5.14 */
#define MADV_POPULATE_READ 22
#define MADV_POPULATE_WRITE 23
#endif

#ifndef PR_SET_MDWE /* Linux 6.3; Debian 12's headers predate it */
#define PR_SET_MDWE 65
#define PR_GET_MDWE 66
#define PR_MDWE_REFUSE_EXEC_GAIN 1UL
#endif

/* ---- the memory cgroup owner ---- */

#define CGROUP "/sys/fs/cgroup/mmview-owner"
#define OWNER_PAGES 4096 /* 16 MiB */

/* The number in file @path, or the one after @key in it (memory.events); -1 if none. */
static long file_number(const char *path, const char *key)
{
	char buf[1024], *at = buf;

	if (read_whole(path, buf, sizeof(buf)) <= 0)
		return -1;
	if (key)
		at = strstr(buf, key);
	return at ? atol(at + (key ? strlen(key) : 0)) : -1;
}

/*
 * Creates the memory cgroup @dir with memory.max @max ("max": no limit) and no swap; a failed
 * expectation if the limit cannot be set.
 */
static void make_memory_cgroup(const char *dir, const char *max)
{
	char path[128];

	write_file("/sys/fs/cgroup/cgroup.subtree_control", "+memory");
	mkdir(dir, 0755);
	snprintf(path, sizeof(path), "%s/memory.max", dir);
	EXPECT(write_file(path, max) == 0, "%s: %s", path, strerror(errno));
	snprintf(path, sizeof(path), "%s/memory.swap.max", dir);
	write_file(path, "0"); /* absent without swap accounting */
}

/* Moves the calling process into the cgroup @dir; -1 on failure. */
static int join_cgroup(const char *dir)
{
	char path[128], pid[32];

	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	snprintf(pid, sizeof(pid), "%d", getpid());
	return write_file(path, pid);
}

/* Maps and touches memory, 1 MiB at a time, until the OOM killer kills the process. */
static void __attribute__((noreturn)) allocate_until_killed(void)
{
	char *p;
	int i;

	for (;;) {
		p = map_anon(256); /* replayed in every view; faulted in the base */
		if (!p)
			_exit(3);
		for (i = 0; i < 256; i++)
			p[i * page] = 1;
	}
}

static void *create_view_and_exit(void *arg)
{
	*(long *)arg = mmview_create();
	return NULL;
}

/*
 * A view is created by a thread that then exits; pages the view allocates afterwards (its own
 * copies of an unshared range) are still charged to the process's cgroup. Before the kernel
 * handed views to a live thread, the view's owner was the freed creator (a use-after-free on
 * the charge, which KASAN reports).
 */
static void case_memcg_owner(void)
{
	char *mem = map_anon(OWNER_PAGES);
	long view = -1, before, after;
	pthread_t creator;
	int i;

	make_memory_cgroup(CGROUP, "max");
	EXPECT(join_cgroup(CGROUP) == 0, "joining %s: %s", CGROUP, strerror(errno));
	EXPECT(mem, "mmap of %d pages", OWNER_PAGES);
	if (!mem)
		return;
	for (i = 0; i < OWNER_PAGES; i++)
		mem[i * page] = 1;
	EXPECT(mmview_unshare(mem, OWNER_PAGES * page) == 0, "UNSHARE: %s", strerror(errno));
	pthread_create(&creator, NULL, create_view_and_exit, &view);
	pthread_join(creator, NULL);
	EXPECT(view == 1, "CREATE from a thread (got %s)", err_name(view));
	usleep(200 * 1000); /* the creator's task_struct is freed after an RCU grace period */

	EXPECT(mmview_migrate(view) == 0, "MIGRATE to the view its creator left");
	before = file_number(CGROUP "/memory.current", NULL);
	for (i = 0; i < OWNER_PAGES; i++)
		mem[i * page] = 2; /* the view's own copies */
	after = file_number(CGROUP "/memory.current", NULL);
	printf("#   %s/memory.current %ld -> %ld kB over %d pages copied in the view\n", CGROUP,
	       before / 1024, after / 1024, OWNER_PAGES);
	EXPECT(before >= 0 && (after - before) / 1024 >= OWNER_PAGES * (page / 1024) * 9 / 10,
	       "the view's %ld kB were not charged to the process's cgroup (+%ld kB)",
	       OWNER_PAGES * (page / 1024), (after - before) / 1024);
	mmview_migrate(0);
	EXPECT(mem[0] == 1, "the base keeps its own copy");
}

/* ---- dumpability and MDWE ---- */

static long dumpable_in(long view)
{
	long was = mmview_current(), d;

	mmview_migrate(view);
	d = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
	mmview_migrate(was);
	return d;
}

static void case_dumpable(void)
{
	long ids[3];
	int i;

	if (!create_views(ids, 3))
		return;
	mmview_migrate(ids[1]);
	EXPECT(prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0, "PR_SET_DUMPABLE 0 in view 1");
	for (i = 0; i < 3; i++)
		EXPECT(dumpable_in(ids[i]) == 0,
		       "view %ld is still dumpable after view 1 cleared it", ids[i]);
	ids[2] = mmview_create();
	EXPECT(dumpable_in(ids[2]) == 0, "a view created later is dumpable");
	mmview_migrate(ids[2]);
	EXPECT(prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) == 0, "PR_SET_DUMPABLE 1 in a later view");
	for (i = 0; i < 3; i++)
		EXPECT(dumpable_in(ids[i]) == 1, "view %ld stayed non-dumpable", ids[i]);
}

/* A setuid marks the process non-dumpable (fs.suid_dumpable 0): also views without threads. */
static void case_dumpable_after_setuid(void)
{
	long ids[3];
	int i;

	if (!create_views(ids, 3))
		return;
	EXPECT(dumpable_in(ids[2]) == 1, "dumpable before the setuid");
	/* The raw call changes this thread's credentials only: the process has one thread. */
	EXPECT(syscall(SYS_setresuid, 65534, 65534, 65534) == 0, "setresuid: %s", strerror(errno));
	for (i = 0; i < 3; i++)
		EXPECT(dumpable_in(ids[i]) == 0,
		       "view %ld is dumpable after the process dropped root (ptrace()able by "
		       "nobody)",
		       ids[i]);
}

static long coredump_filter_in(long view)
{
	char buf[32];
	long was = mmview_current();
	ssize_t n;

	mmview_migrate(view);
	n = read_whole("/proc/self/coredump_filter", buf, sizeof(buf));
	mmview_migrate(was);
	return n > 0 ? strtol(buf, NULL, 16) : -1;
}

/* /proc/PID/coredump_filter: what a core dump of the process contains, in whichever view. */
static void case_coredump_filter(void)
{
	long ids[3], before;
	int i;

	if (!create_views(ids, 3))
		return;
	before = coredump_filter_in(0);
	mmview_migrate(ids[1]);
	EXPECT(write_file("/proc/self/coredump_filter", "0x1ff") == 0,
	       "writing coredump_filter in view 1: %s", strerror(errno));
	for (i = 0; i < 3; i++)
		EXPECT(coredump_filter_in(ids[i]) == 0x1ff,
		       "view %ld reads coredump_filter %#lx, not 0x1ff (was %#lx)", ids[i],
		       coredump_filter_in(ids[i]), before);
	ids[2] = mmview_create();
	EXPECT(coredump_filter_in(ids[2]) == 0x1ff, "a view created later reads %#lx",
	       coredump_filter_in(ids[2]));
}

static void case_mdwe(void)
{
	long ids[2], r;
	char *rw = map_anon(1), *wx;

	if (!create_views(ids, 2))
		return;
	mmview_migrate(ids[1]);
	r = prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0);
	EXPECT(r == 0, "PR_SET_MDWE in view 1 (got %s)", err_name(r));
	mmview_migrate(0);
	r = prctl(PR_GET_MDWE, 0, 0, 0, 0);
	EXPECT(r == (long)PR_MDWE_REFUSE_EXEC_GAIN, "PR_GET_MDWE in the base (got %s)",
	       err_name(r));
	wx = mmap(NULL, page, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1,
	          0);
	EXPECT(wx == MAP_FAILED && errno == EACCES,
	       "a writable and executable mapping made in the base (expected EACCES)");
	r = mprotect(rw, page, PROT_READ | PROT_WRITE | PROT_EXEC);
	EXPECT(fails_with(r, EACCES), "mprotect to RWX in the base (got %s)", err_name(r));
	ids[1] = mmview_create();
	mmview_migrate(ids[1]);
	r = mprotect(rw, page, PROT_READ | PROT_EXEC);
	EXPECT(fails_with(r, EACCES), "mprotect gaining exec in a later view (got %s)",
	       err_name(r));
}

/* ---- PR_SET_MM ---- */

/*
 * Field @n (1-based, 3 or later) of the stat file @path (/proc/self/stat,
 * /proc/PID/task/TID/stat), read into @buf: the text from its first character. NULL if the
 * file cannot be read or is shorter. The command name, field 2, may hold spaces and ')', so
 * fields are counted from the last ')'.
 */
static const char *proc_stat_field(const char *path, int n, char *buf, size_t size)
{
	char *p;
	int i;

	if (read_whole(path, buf, size) <= 0)
		return NULL;
	p = strrchr(buf, ')'); /* field 2 ends here */
	for (i = 2; p && i < n; i++)
		p = strchr(p + 1, ' ');
	return p ? p + 1 : NULL;
}

/* Field @n of /proc/self/stat; the fields after the command name are numbers. */
static unsigned long stat_field(int n)
{
	char buf[2048];
	const char *field = proc_stat_field("/proc/self/stat", n, buf, sizeof(buf));

	return field ? strtoul(field, NULL, 10) : 0;
}

static void case_refuse_set_mm(void)
{
	unsigned long start_brk = stat_field(47), auxv[2] = {0, 0};
	long ids[2], r;

	EXPECT(start_brk, "start_brk from /proc/self/stat");
	r = prctl(PR_SET_MM, PR_SET_MM_START_BRK, start_brk, 0, 0);
	EXPECT(r == 0, "PR_SET_MM_START_BRK to its value without views (got %s)", err_name(r));
	if (!create_views(ids, 2))
		return;
	r = prctl(PR_SET_MM, PR_SET_MM_START_BRK, start_brk, 0, 0);
	EXPECT(fails_with(r, EBUSY), "PR_SET_MM_START_BRK with views (got %s)", err_name(r));
	mmview_migrate(ids[1]);
	r = prctl(PR_SET_MM, PR_SET_MM_ARG_START, stat_field(48), 0, 0);
	EXPECT(fails_with(r, EBUSY), "PR_SET_MM_ARG_START from a view (got %s)", err_name(r));
	r = prctl(PR_SET_MM, PR_SET_MM_AUXV, (unsigned long)auxv, sizeof(auxv), 0);
	EXPECT(fails_with(r, EBUSY), "PR_SET_MM_AUXV (got %s)", err_name(r));
	r = prctl(PR_SET_MM, PR_SET_MM_EXE_FILE, 0, 0, 0);
	EXPECT(fails_with(r, EBUSY), "PR_SET_MM_EXE_FILE (got %s)", err_name(r));
	mmview_migrate(0);
	mmview_delete(ids[1]);
	r = prctl(PR_SET_MM, PR_SET_MM_START_BRK, start_brk, 0, 0);
	EXPECT(fails_with(r, EBUSY),
	       "after the last view is deleted: the process keeps its group "
	       "(got %s)",
	       err_name(r));
}

#define AUXV_RACES 200
#define AUXV_TAG 0x7fff0000UL /* an a_type no kernel gives: the test's own entry */

/*
 * A vector {AUXV_TAG, @k, 0, 0} whose second half starts a page of its own VMA that was never
 * faulted: copying it in faults under the mmap lock (an anonymous VMA without an anon_vma is
 * not faulted under its VMA lock), which makes a CREATE in between likely. NULL on failure.
 */
static unsigned long *auxv_across_a_fault(unsigned long k)
{
	char *two = mmap(NULL, 2 * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	unsigned long *auxv;

	if (two == MAP_FAILED)
		return NULL;
	/* Two VMAs (different protections, so they do not merge). */
	if (mmap(two, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1,
	         0) == MAP_FAILED ||
	    mmap(two + page, page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) ==
	        MAP_FAILED)
		return NULL;
	auxv = (unsigned long *)(two + page) - 2;
	auxv[0] = AUXV_TAG;
	auxv[1] = k;
	return auxv;
}

/* Sets the auxiliary vector to {AUXV_TAG, k} for k = 1, 2... until it is refused. */
static void *set_auxv_until_refused(void *arg)
{
	long *accepted = arg;
	unsigned long k, *auxv;

	for (k = 1;; k++) {
		auxv = auxv_across_a_fault(k);
		if (!auxv ||
		    prctl(PR_SET_MM, PR_SET_MM_AUXV, (unsigned long)auxv, 4 * sizeof(long), 0))
			return NULL;
		__atomic_store_n(accepted, (long)k, __ATOMIC_RELEASE);
		munmap((char *)(auxv + 2) - page, 2 * page);
	}
}

/* The value of the AUXV_TAG entry in /proc/thread-self/auxv; -1 if there is none. */
static long auxv_tag_value(void)
{
	unsigned long auxv[64];
	ssize_t n = read_whole("/proc/thread-self/auxv", (char *)auxv, sizeof(auxv));
	int i;

	for (i = 0; n > 0 && (i + 2) * (ssize_t)sizeof(long) <= n; i += 2)
		if (auxv[i] == AUXV_TAG)
			return (long)auxv[i + 1];
	return -1;
}

/*
 * PR_SET_MM_AUXV racing CREATE in another thread: the last vector it accepted is the one every
 * view has. (Before it checked under the mmap lock, an accepted change could land in the
 * caller's view after CREATE had copied the previous vector.)
 */
static void case_set_mm_auxv_races_create(void)
{
	int round, mismatches = 0;

	for (round = 0; round < AUXV_RACES && !mismatches; round++) {
		int status = 0;
		pid_t pid = fork();

		if (pid == 0) {
			long accepted = 0, view, in_base, in_view;
			pthread_t setter;

			pthread_create(&setter, NULL, set_auxv_until_refused, &accepted);
			while (__atomic_load_n(&accepted, __ATOMIC_ACQUIRE) < round % 8 + 1)
				;
			view = mmview_create();
			pthread_join(setter, NULL);
			in_base = auxv_tag_value();
			if (view < 0 || mmview_migrate(view))
				_exit(2);
			in_view = auxv_tag_value();
			if (in_base == accepted && in_view == accepted)
				_exit(0);
			printf("#   round %d: last accepted %ld, the base has %ld, the view %ld\n",
			       round, accepted, in_base, in_view);
			_exit(1);
		}
		waitpid(pid, &status, 0);
		if (!WIFEXITED(status) || WEXITSTATUS(status))
			mismatches++;
	}
	EXPECT(!mismatches,
	       "after %d rounds, a view's auxiliary vector is not the last one accepted", round);
}

/* ---- the LDT and anonymous VMA names ---- */

/*
 * modify_ldt() returns an int in 32 bits (its historical ABI), so syscall() cannot see its
 * errors: -errno comes back as a positive long.
 */
static int modify_ldt(int func, void *ptr, unsigned long bytecount)
{
	return (int)syscall(SYS_modify_ldt, func, ptr, bytecount);
}

/* Entry 0 of the LDT, as modify_ldt(0) reads it in the calling thread's view; 0 if none. */
static uint64_t ldt_entry0(void)
{
	uint64_t entries[8] = {0};

	return modify_ldt(0, entries, sizeof(entries)) > 0 ? entries[0] : 0;
}

/* Loads LDT selector 0 (TI=1, RPL 3) into %es, which faults if the view's LDT lacks it. */
static void load_ldt_selector(void)
{
	unsigned short sel = 0 << 3 | 4 | 3, null = 0;

	__asm__ volatile("mov %0, %%es\n\tmov %1, %%es" : : "r"(sel), "r"(null) : "memory");
}

/*
 * The LDT is the process's: an entry written before CREATE is in every view (CREATE copies
 * it, and a view's threads can load it), and with views modify_ldt() writes fail EBUSY rather
 * than change one view's copy.
 */
static void case_ldt(void)
{
	struct user_desc d = {.entry_number = 0,
	                      .base_addr = 0,
	                      .limit = 0xfffff,
	                      .seg_32bit = 1,
	                      .limit_in_pages = 1,
	                      .useable = 1};
	uint64_t in_base;
	long ids[2], r;

	r = modify_ldt(1, &d, sizeof(d));
	EXPECT(r == 0, "modify_ldt write without views (got %ld)", r);
	in_base = ldt_entry0();
	EXPECT(in_base != 0, "entry 0 reads back in the base");
	if (!create_views(ids, 2))
		return;
	EXPECT(mmview_migrate(ids[1]) == 0, "MIGRATE");
	EXPECT(ldt_entry0() == in_base, "the view's entry 0 is %#llx, the base's %#llx",
	       (unsigned long long)ldt_entry0(), (unsigned long long)in_base);
	load_ldt_selector(); /* SIGSEGV if the view's LDT were not loaded */
	d.entry_number = 1;
	r = modify_ldt(1, &d, sizeof(d));
	EXPECT(r == -EBUSY, "modify_ldt write from a view (got %ld)", r);
	mmview_migrate(0);
	r = modify_ldt(0x11, &d, sizeof(d));
	EXPECT(r == -EBUSY, "modify_ldt write from the base (got %ld)", r);
	load_ldt_selector();
}

/* The name of @addr's VMA in /proc/thread-self/maps ("" if unnamed); NULL if not found. */
static const char *vma_name(const void *addr)
{
	static char maps[1 << 16];
	char *line, *save;

	if (read_whole("/proc/thread-self/maps", maps, sizeof(maps)) < 0)
		return NULL;
	for (line = strtok_r(maps, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		unsigned long start, end;
		int n = 0;

		if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %n", &start, &end, &n) < 2 || !n)
			continue;
		if (start <= (uintptr_t)addr && (uintptr_t)addr < end)
			return line + n;
	}
	return NULL;
}

/*
 * prctl(PR_SET_VMA_ANON_NAME): a name given before CREATE is in every view (CREATE copies the
 * VMAs); with views naming fails EBUSY, as it would split VMAs in the caller's view only.
 */
static void case_anon_vma_name(void)
{
	char *mem = map_anon(4);
	const char *name;
	long ids[2], r;

	r = prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, (unsigned long)mem, 4 * page,
	          (unsigned long)"atlas-named");
	EXPECT(r == 0, "PR_SET_VMA_ANON_NAME without views (got %s)", err_name(r));
	if (!mem || !create_views(ids, 2))
		return;
	EXPECT(mmview_migrate(ids[1]) == 0, "MIGRATE");
	name = vma_name(mem);
	EXPECT(name && !strcmp(name, "[anon:atlas-named]"), "the view's VMA is named '%s'",
	       name ? name : "(none)");
	r = prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, (unsigned long)mem, page,
	          (unsigned long)"other");
	EXPECT(fails_with(r, EBUSY), "PR_SET_VMA_ANON_NAME with views (got %s)", err_name(r));
	mmview_migrate(0);
	name = vma_name(mem);
	EXPECT(name && !strcmp(name, "[anon:atlas-named]"), "the base's VMA is named '%s'",
	       name ? name : "(none)");
}

/* ---- smaps of a view ---- */

/* Field @name ("Rss:", "Pss:") in kB of the VMA containing @addr in the caller's view. */
static long smaps_kb(const void *addr, const char *name)
{
	const char *field = smaps_field(addr, name);

	return field ? atol(field) : -1;
}

#define SMAPS_PAGES 64

static void case_smaps_mirrors(void)
{
	char *mem = map_anon(SMAPS_PAGES);
	long ids[2], rss0, pss0, rss1, pss1, kb = SMAPS_PAGES * page / 1024;
	volatile char sum = 0;
	int i;

	if (!create_views(ids, 2))
		return;
	for (i = 0; i < SMAPS_PAGES; i++)
		mem[i * page] = (char)i;
	mmview_migrate(ids[1]);
	rss0 = smaps_kb(mem, "Rss:");
	pss0 = smaps_kb(mem, "Pss:");
	for (i = 0; i < SMAPS_PAGES; i++)
		sum += mem[i * page]; /* mirrors of the base's pages */
	rss1 = smaps_kb(mem, "Rss:");
	pss1 = smaps_kb(mem, "Pss:");
	printf("#   view: Rss %ld -> %ld kB, Pss %ld -> %ld kB after reading %ld kB\n", rss0, rss1,
	       pss0, pss1, kb);
	EXPECT(rss1 - rss0 == kb, "the view's Rss grew by %ld kB, not %ld", rss1 - rss0, kb);
	EXPECT(pss1 == pss0, "the view's Pss changed (%ld -> %ld kB): mirrors count in the base",
	       pss0, pss1);
	mmview_migrate(0);
	EXPECT(smaps_kb(mem, "Pss:") >= kb, "the base's Pss counts the pages (%ld kB)",
	       smaps_kb(mem, "Pss:"));
}

/*
 * mlock, MAP_POPULATE and MADV_POPULATE_* from a view fault the base's pages in (GUP goes to
 * the base) and map
 * them in the caller's view too: its smaps shows them at once, before any access.
 */
static void case_populate_maps_mirrors(void)
{
	long ids[2], kb = SMAPS_PAGES * page / 1024, rss;
	char *locked, *populated;
	int advice;

	if (!create_views(ids, 2))
		return;
	mmview_migrate(ids[1]);
	locked = map_anon(SMAPS_PAGES);
	EXPECT(locked && mlock(locked, SMAPS_PAGES * page) == 0, "mlock in view 1: %s",
	       strerror(errno));
	rss = smaps_kb(locked, "Rss:");
	EXPECT(rss == kb, "after mlock, the view's Rss is %ld kB, not %ld", rss, kb);
	populated = mmap(NULL, SMAPS_PAGES * page, PROT_READ | PROT_WRITE,
	                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	EXPECT(populated != MAP_FAILED, "mmap(MAP_POPULATE) in view 1: %s", strerror(errno));
	rss = smaps_kb(populated, "Rss:");
	EXPECT(rss == kb, "after MAP_POPULATE, the view's Rss is %ld kB, not %ld", rss, kb);
	for (advice = MADV_POPULATE_READ; advice <= MADV_POPULATE_WRITE; advice++) {
		char *advised = map_anon(SMAPS_PAGES);
		long before;

		if (advised && advice == MADV_POPULATE_READ) {
			/* reading untouched memory maps the zero page, which Rss leaves out */
			mmview_migrate(0);
			memset(advised, 1, SMAPS_PAGES * page);
			mmview_migrate(ids[1]);
		}
		before = smaps_kb(advised, "Rss:"); /* it may merge with its neighbour */
		EXPECT(advised && madvise(advised, SMAPS_PAGES * page, advice) == 0,
		       "madvise(%d) in view 1: %s", advice, strerror(errno));
		rss = smaps_kb(advised, "Rss:") - before;
		EXPECT(rss == kb, "madvise(%d) added %ld kB to the view's Rss, not %ld", advice,
		       rss, kb);
	}
	mmview_migrate(0);
	rss = smaps_kb(locked, "Rss:");
	EXPECT(rss == kb, "the base holds the locked pages (Rss %ld kB)", rss);
}

/* ---- another process looking in: process_vm_readv, /proc/PID/task/TID/mem ---- */

struct looked_at {
	char *unshared, *shared;
	int report[2];
};

static void *write_in_view(void *arg)
{
	struct looked_at *l = arg;
	pid_t tid = gettid();

	mmview_migrate(1);
	l->unshared[0] = 'V'; /* the view's own copy */
	l->shared[0] = 'S';   /* one memory for every view */
	if (write(l->report[1], &tid, sizeof(tid)) != sizeof(tid))
		_exit(1);
	for (;;)
		pause();
	return NULL;
}

static char read_other(pid_t tid, const char *addr)
{
	char c = 0;
	struct iovec local = {&c, 1}, remote = {(void *)addr, 1};

	if (process_vm_readv(tid, &local, 1, &remote, 1, 0) == 1)
		return c;
	printf("#   process_vm_readv(%d): %s\n", tid, strerror(errno));
	return '?';
}

static char read_proc_mem(pid_t pid, pid_t tid, const char *addr)
{
	char path[64], c = '?';
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/mem", pid, tid);
	fd = open(path, O_RDONLY);
	if (fd >= 0 && pread(fd, &c, 1, (off_t)(uintptr_t)addr) != 1)
		c = '?';
	if (fd >= 0)
		close(fd);
	return c;
}

/*
 * Another process reading a thread's memory (process_vm_readv, /proc/PID/task/TID/mem) sees
 * that thread's view: its own copy of an unshared range, and the one shared memory, which a
 * process_vm_writev through the view changes for every view.
 */
static void case_other_process_sees_the_thread_s_view(void)
{
	static struct looked_at l;
	pid_t pid, in_view = 0;

	l.unshared = map_anon(1);
	l.shared = map_anon(1);
	EXPECT(l.unshared && l.shared && pipe(l.report) == 0, "setup");
	if (!l.unshared || !l.shared)
		return;
	l.unshared[0] = 'B';
	EXPECT(mmview_unshare(l.unshared, page) == 0, "UNSHARE: %s", strerror(errno));
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		pthread_t t;

		if (mmview_create() != 1)
			_exit(2);
		pthread_create(&t, NULL, write_in_view, &l);
		for (;;)
			pause();
	}
	EXPECT(read(l.report[0], &in_view, sizeof(in_view)) == sizeof(in_view), "the thread's tid");
	EXPECT(read_other(pid, l.unshared) == 'B',
	       "process_vm_readv of the main thread (base) "
	       "reads %c, not the base's B",
	       read_other(pid, l.unshared));
	EXPECT(read_other(in_view, l.unshared) == 'V',
	       "process_vm_readv of the thread in view 1 reads %c, not its view's V",
	       read_other(in_view, l.unshared));
	EXPECT(read_proc_mem(pid, in_view, l.unshared) == 'V' &&
	           read_proc_mem(pid, pid, l.unshared) == 'B',
	       "/proc/PID/task/TID/mem reads %c in view 1 and %c in the base, not V and B",
	       read_proc_mem(pid, in_view, l.unshared), read_proc_mem(pid, pid, l.unshared));
	EXPECT(read_other(pid, l.shared) == 'S' && read_other(in_view, l.shared) == 'S',
	       "shared memory written in view 1 reads %c in the base, %c in the view",
	       read_other(pid, l.shared), read_other(in_view, l.shared));
	{
		char w = 'W';
		struct iovec local = {&w, 1}, remote = {l.shared, 1};

		EXPECT(process_vm_writev(in_view, &local, 1, &remote, 1, 0) == 1,
		       "process_vm_writev to the thread in view 1: %s", strerror(errno));
		EXPECT(read_other(pid, l.shared) == 'W',
		       "shared memory written through view 1 reads %c in the base",
		       read_other(pid, l.shared));
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* ---- the OOM killer ---- */

#define OOM_CGROUP "/sys/fs/cgroup/mmview-oom"

static void *read_in_view(void *arg)
{
	volatile char *mem = arg;

	mmview_migrate(2);
	for (;;)
		(void)mem[0];
	return NULL;
}

/* In its own process in OOM_CGROUP: views, a reader in view 2, allocation from view 1. */
static void oom_victim(void)
{
	char *shared = map_anon(1);
	long ids[3];
	pthread_t reader;

	if (join_cgroup(OOM_CGROUP) || !shared || !create_views(ids, 3))
		_exit(2);
	pthread_create(&reader, NULL, read_in_view, shared);
	mmview_migrate(ids[1]);
	allocate_until_killed();
}

/*
 * A process with views that outgrows its memory cgroup is killed as a whole (SIGKILL to the
 * thread group, whichever view the allocating thread is in) and gives all of its memory back.
 */
static void case_oom_kill(void)
{
	long kills, current;
	int status = 0;
	pid_t pid;

	make_memory_cgroup(OOM_CGROUP, "32M");
	fflush(stdout);
	pid = fork();
	if (pid == 0)
		oom_victim();
	waitpid(pid, &status, 0);
	EXPECT(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
	       "the process was not OOM-killed (status %#x)", status);
	kills = file_number(OOM_CGROUP "/memory.events", "oom_kill ");
	usleep(100 * 1000);
	current = file_number(OOM_CGROUP "/memory.current", NULL);
	printf("#   %s: oom_kill %ld, memory.current %ld kB after the kill\n", OOM_CGROUP, kills,
	       current / 1024);
	EXPECT(kills == 1, "memory.events oom_kill is %ld, not 1", kills);
	EXPECT(current >= 0 && current < 1024 * 1024, "%ld kB still charged after the kill",
	       current / 1024);
	rmdir(OOM_CGROUP);
}

struct vfork_in_view {
	long view;
	int pid_pipe; /* the child writes its pid */
};

/* Migrates, then vforks a child that says its pid and waits (sharing the view's memory). */
static void *vfork_in_view(void *arg)
{
	struct vfork_in_view *v = arg;
	pid_t child;

	if (mmview_migrate(v->view))
		_exit(2);
	child = vfork();
	if (child == 0) {
		pid_t self = getpid();

		if (write(v->pid_pipe, &self, sizeof(self)) == sizeof(self))
			for (;;)
				pause();
		_exit(1);
	}
	return NULL;
}

/*
 * A vfork child that runs in another view of the process is killed with it: it uses the
 * process's memory, which the OOM reaper is about to take. (process_shares_mm() used to compare
 * the child's view with the victim thread's only.)
 */
static void case_oom_kills_vfork_child_in_other_view(void)
{
	int pids[2], alive[2], go[2], status = 0;
	pid_t victim, child = 0;
	struct pollfd eof;
	bool gone;

	make_memory_cgroup(OOM_CGROUP, "32M");
	if (pipe(pids) || pipe(alive) || pipe(go))
		return;
	fflush(stdout);
	victim = fork();
	if (victim == 0) {
		struct vfork_in_view v = {.pid_pipe = pids[1]};
		pthread_t vforker;
		long ids[3];
		char c;

		close(alive[0]); /* alive[1] stays open in this process and in the vfork child */
		if (join_cgroup(OOM_CGROUP) || !create_views(ids, 3))
			_exit(2);
		v.view = ids[1];
		pthread_create(&vforker, NULL, vfork_in_view, &v);
		if (mmview_migrate(ids[2]) || read(go[0], &c, 1) != 1)
			_exit(2);
		allocate_until_killed();
	}
	close(alive[1]);
	close(pids[1]);
	EXPECT(read(pids[0], &child, sizeof(child)) == sizeof(child), "no vfork child in view 1");
	EXPECT(write(go[1], "a", 1) == 1, "telling the victim to allocate");
	waitpid(victim, &status, 0);
	EXPECT(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
	       "the process was not OOM-killed (status %#x)", status);
	eof = (struct pollfd){.fd = alive[0], .events = POLLIN};
	gone = poll(&eof, 1, 10 * 1000) == 1 && read(alive[0], &status, 1) == 0;
	printf("#   vfork child %d in view 1: %s after the OOM kill\n", child,
	       gone ? "killed" : "still running 10 s");
	EXPECT(gone, "the vfork child in another view survived the OOM kill of its process");
	if (!gone && child > 0)
		kill(child, SIGKILL);
	usleep(100 * 1000);
	rmdir(OOM_CGROUP);
}

/* ---- rseq concurrency ids ---- */

/*
 * The mm_cid field of the calling thread's rseq area (offset 24 since Linux 6.3; Debian 12's
 * headers predate it). The kernel accepts no area shorter than 32 bytes and updates the field
 * on the way back to user space; glibc's __rseq_size counts only the fields it knows (20).
 */
static uint32_t own_mm_cid(void)
{
	return *(const volatile uint32_t *)((char *)__builtin_thread_pointer() + __rseq_offset +
	                                    24);
}

struct cid_thread {
	long view;
	int go_to_view2; /* set by main: migrate to view 2 and record */
	int stop;
	uint32_t cid;      /* published while it spins */
	uint32_t other;    /* thread B's cid, read right after migrating to view 2 */
	uint32_t migrated; /* its own cid then */
};

static struct cid_thread cid_b;

/* Spins in view @arg->view (0: where it started), publishing its id. */
static void *spin_publishing_cid(void *arg)
{
	struct cid_thread *t = arg;

	if (t->view > 0 && mmview_migrate(t->view))
		return NULL;
	while (!__atomic_load_n(&t->stop, __ATOMIC_ACQUIRE)) {
		__atomic_store_n(&t->cid, own_mm_cid(), __ATOMIC_RELEASE);
		if (__atomic_load_n(&t->go_to_view2, __ATOMIC_ACQUIRE) == 1) {
			mmview_migrate(cid_b.view);
			t->migrated = own_mm_cid();
			t->other = __atomic_load_n(&cid_b.cid, __ATOMIC_ACQUIRE);
			mmview_migrate(t->view);
			__atomic_store_n(&t->go_to_view2, 2, __ATOMIC_RELEASE);
		}
	}
	return NULL;
}

/*
 * rseq concurrency ids are allocated per view (docs/kernel.md, known limits): two threads, each
 * alone in its view and running at the same time, both get id 0, where two threads of one
 * address space get different ids (checked first, which also shows the kernel writes them). A
 * thread migrating into a view where another thread runs takes an id of that view (MIGRATE puts the
 * old one and gets a new one, as exec does): at least one of 20 migrations sees an id different
 * from the running thread's (a stale id would be 0, the same as the other's, every time).
 */
static void case_mm_cid_per_view(void)
{
	struct cid_thread a = {0};
	pthread_t ta, tb;
	long ids[3];
	int i, distinct = 0;

	EXPECT(__rseq_size > 0, "glibc registered no rseq area");
	if (!__rseq_size)
		return;
	/* Baseline: two threads of one address space, running at the same time. */
	pthread_create(&ta, NULL, spin_publishing_cid, &a);
	pthread_create(&tb, NULL, spin_publishing_cid, &cid_b);
	usleep(200 * 1000);
	printf("#   one address space, running: mm_cid %u and %u\n", a.cid, cid_b.cid);
	EXPECT(a.cid != cid_b.cid, "two running threads of one address space share id %u", a.cid);
	__atomic_store_n(&a.stop, 1, __ATOMIC_RELEASE);
	__atomic_store_n(&cid_b.stop, 1, __ATOMIC_RELEASE);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	a.stop = cid_b.stop = 0; /* the threads are gone */

	if (!create_views(ids, 3))
		return;
	a.view = ids[1];
	cid_b.view = ids[2];
	pthread_create(&ta, NULL, spin_publishing_cid, &a);
	pthread_create(&tb, NULL, spin_publishing_cid, &cid_b);
	usleep(200 * 1000);
	printf("#   alone in views 1 and 2, running: mm_cid %u and %u\n", a.cid, cid_b.cid);
	EXPECT(a.cid == 0 && cid_b.cid == 0,
	       "two threads alone in two views have ids %u and %u, not 0 and 0 (if ids became "
	       "process-wide, update the known limits)",
	       a.cid, cid_b.cid);
	for (i = 0; i < 20; i++) {
		__atomic_store_n(&a.go_to_view2, 1, __ATOMIC_RELEASE);
		while (__atomic_load_n(&a.go_to_view2, __ATOMIC_ACQUIRE) != 2)
			usleep(1000);
		distinct += a.migrated != a.other;
		a.go_to_view2 = 0;
	}
	printf("#   migrated into view 2: an id other than the running thread's %d times of 20\n",
	       distinct);
	EXPECT(distinct > 0, "a thread that migrated into view 2 kept the id of view 1 (%u)",
	       a.migrated);
	__atomic_store_n(&a.stop, 1, __ATOMIC_RELEASE);
	__atomic_store_n(&cid_b.stop, 1, __ATOMIC_RELEASE);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
}

/* ---- reaping: a process with views that cannot finish exiting ---- */

#define REAP_CGROUP "/sys/fs/cgroup/mmview-reap"
#define REAP_PAGES 8192 /* 32 MiB the base owns */

struct inode_lock_holder {
	int memfd;
	char *missing; /* a page registered with userfaultfd, never provided */
};

static void *write_from_missing_page(void *arg)
{
	struct inode_lock_holder *h = arg;

	/* shmem takes the inode lock, then faults the source in: the fault waits forever. */
	if (write(h->memfd, h->missing, page) < 0)
		_exit(4);
	return NULL;
}

/*
 * Forks a process that holds @memfd's inode lock until it is killed: its write() to @memfd
 * reads from a page that userfaultfd never provides. Returns once the write waits; -1 if
 * that could not be set up.
 */
static pid_t hold_inode_lock(int memfd)
{
	int ready[2];
	char c = 0;
	pid_t pid;

	if (pipe(ready))
		return -1;
	pid = fork();
	if (pid == 0) {
		struct inode_lock_holder h = {memfd, map_anon(1)};
		struct uffdio_api api = {.api = UFFD_API};
		struct uffdio_register reg = {.mode = UFFDIO_REGISTER_MODE_MISSING};
		struct uffd_msg msg;
		pthread_t writer;
		int uffd = syscall(SYS_userfaultfd, O_CLOEXEC);

		reg.range.start = (uintptr_t)h.missing;
		reg.range.len = page;
		if (uffd < 0 || ioctl(uffd, UFFDIO_API, &api) || !h.missing ||
		    ioctl(uffd, UFFDIO_REGISTER, &reg))
			_exit(2);
		pthread_create(&writer, NULL, write_from_missing_page, &h);
		if (read(uffd, &msg, sizeof(msg)) != sizeof(msg)) /* the writer faulted */
			_exit(3);
		if (write(ready[1], "x", 1) != 1)
			_exit(3);
		for (;;)
			pause();
	}
	close(ready[1]);
	if (pid < 0 || read(ready[0], &c, 1) != 1 || c != 'x') {
		printf("#   the inode lock holder could not be set up (userfaultfd)\n");
		if (pid > 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
		}
		pid = -1;
	}
	close(ready[0]);
	return pid;
}

/* The state letter of thread @tid of process @pid (R, S, D, Z...); 0 if it is gone. */
static char thread_state(pid_t pid, pid_t tid)
{
	char path[64], buf[1024];
	const char *state;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", pid, tid);
	state = proc_stat_field(path, 3, buf, sizeof(buf));
	return state ? state[0] : 0;
}

/* Waits up to 10 s for thread @tid of @pid to be in state @state. */
static bool wait_thread_state(pid_t pid, pid_t tid, char state)
{
	int i;

	for (i = 0; i < 1000; i++) {
		if (thread_state(pid, tid) == state)
			return true;
		usleep(10 * 1000);
	}
	return false;
}

struct stuck_thread {
	long view;
	int memfd;
	int tid_pipe;
};

/* Migrates to a view, says its tid, and waits for the held inode lock: uninterruptibly. */
static void *get_stuck_in_view(void *arg)
{
	struct stuck_thread *st = arg;
	pid_t tid = gettid();

	if (mmview_migrate(st->view) || write(st->tid_pipe, &tid, sizeof(tid)) != sizeof(tid))
		_exit(5);
	if (write(st->memfd, "x", 1) < 0)
		_exit(6);
	return NULL;
}

/*
 * The victim, in REAP_CGROUP: REAP_PAGES faulted by the base, views 1 and 2, a thread stuck in
 * view 1 (its tid goes to @tid_pipe). The main thread waits in view 2 for a byte on @go_fd,
 * then allocates from there until the OOM killer kills the process.
 */
static void reap_victim(int memfd, int tid_pipe, int go_fd)
{
	struct stuck_thread st = {.memfd = memfd, .tid_pipe = tid_pipe};
	char *mem = map_anon(REAP_PAGES), go;
	pthread_t stuck;
	long ids[3];
	int i;

	if (join_cgroup(REAP_CGROUP) || !mem)
		_exit(2);
	for (i = 0; i < REAP_PAGES; i++)
		mem[i * page] = 1;
	if (!create_views(ids, 3))
		_exit(2);
	st.view = ids[1];
	pthread_create(&stuck, NULL, get_stuck_in_view, &st);
	if (mmview_migrate(ids[2]) || read(go_fd, &go, 1) != 1)
		_exit(2);
	allocate_until_killed();
}

struct reap_setup {
	pid_t holder, victim, stuck_tid;
	int go; /* write a byte: the victim allocates */
};

/*
 * Sets up REAP_CGROUP with @memory_max, the inode lock holder and the victim; returns once
 * the victim's thread in view 1 waits, uninterruptibly, for the lock.
 */
static bool reap_setup(struct reap_setup *r, const char *memory_max)
{
	int memfd = memfd_create("mmview-reap", 0), tids[2], go[2];

	make_memory_cgroup(REAP_CGROUP, memory_max);
	r->holder = hold_inode_lock(memfd);
	r->victim = -1;
	EXPECT(memfd >= 0 && r->holder > 0, "memfd_create or the lock holder failed");
	if (memfd < 0 || r->holder <= 0 || pipe(tids) || pipe(go))
		return false;
	fflush(stdout);
	r->victim = fork();
	if (r->victim == 0)
		reap_victim(memfd, tids[1], go[0]);
	close(tids[1]);
	close(go[0]);
	r->go = go[1];
	EXPECT(read(tids[0], &r->stuck_tid, sizeof(r->stuck_tid)) == sizeof(r->stuck_tid),
	       "the victim did not start its thread in view 1");
	close(tids[0]);
	close(memfd);
	if (r->victim < 0 || !r->stuck_tid)
		return false;
	EXPECT(wait_thread_state(r->victim, r->stuck_tid, 'D'),
	       "the thread in view 1 does not wait for the inode lock (state %c)",
	       thread_state(r->victim, r->stuck_tid));
	return thread_state(r->victim, r->stuck_tid) == 'D';
}

/* Lets the stuck thread go, reaps the victim (killed by SIGKILL) and checks the cgroup. */
static void reap_finish(struct reap_setup *r)
{
	int status = 0;
	long current;

	if (r->holder > 0) {
		kill(r->holder, SIGKILL);
		waitpid(r->holder, NULL, 0);
	}
	if (r->victim > 0) {
		kill(r->victim, SIGKILL);
		waitpid(r->victim, &status, 0);
		EXPECT(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
		       "the victim ended with status %#x, not by SIGKILL", status);
	}
	usleep(100 * 1000);
	current = file_number(REAP_CGROUP "/memory.current", NULL);
	EXPECT(current >= 0 && current < 1024 * 1024, "%ld kB still charged once it ended",
	       current / 1024);
	rmdir(REAP_CGROUP);
}

/*
 * process_mrelease() of a killed process whose thread in view 1 cannot exit frees the 32 MiB
 * the base owns at once, whichever thread's view it picked (before the kernel reaped every
 * view, it reaped that view's mirrors only, and nothing came back).
 */
static void case_mrelease_reaps_every_view(void)
{
	struct reap_setup r = {.holder = -1, .victim = -1, .go = -1};
	long before, after, ret = -1;
	int pidfd, tries;

	if (!reap_setup(&r, "max"))
		goto out;
	pidfd = syscall(SYS_pidfd_open, r.victim, 0);
	EXPECT(pidfd >= 0, "pidfd_open: %s", strerror(errno));
	before = file_number(REAP_CGROUP "/memory.current", NULL);
	EXPECT(syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0) == 0,
	       "pidfd_send_signal: %s", strerror(errno));
	for (tries = 0; tries < 10; tries++) {
		ret = syscall(SYS_process_mrelease, pidfd, 0);
		if (!fails_with(ret, EAGAIN))
			break;
		usleep(10 * 1000);
	}
	after = file_number(REAP_CGROUP "/memory.current", NULL);
	printf("#   process_mrelease: %s; %s/memory.current %ld -> %ld kB, thread in view 1 %c\n",
	       err_name(ret), REAP_CGROUP, before / 1024, after / 1024,
	       thread_state(r.victim, r.stuck_tid));
	EXPECT(ret == 0, "process_mrelease: %s", err_name(ret));
	EXPECT(before >= 0 && after >= 0 &&
	           (before - after) / 1024 >= REAP_PAGES * (page / 1024) * 9 / 10,
	       "process_mrelease gave back %ld kB of the %ld kB the base owns",
	       (before - after) / 1024, REAP_PAGES * (page / 1024));
	close(pidfd);
out:
	reap_finish(&r);
}

/*
 * The OOM reaper frees the memory of a process with views that the OOM killer killed but
 * whose thread in view 1 cannot exit. The killed thread allocated in view 2; the base owns
 * the memory.
 */
static void case_oom_reaper_reaps_every_view(void)
{
	struct reap_setup r = {.holder = -1, .victim = -1, .go = -1};
	long kills = 0, current = -1;
	int i;

	if (!reap_setup(&r, "48M"))
		goto out;
	EXPECT(write(r.go, "a", 1) == 1, "telling the victim to allocate");
	for (i = 0; i < 1000 && kills < 1; i++) {
		usleep(10 * 1000);
		kills = file_number(REAP_CGROUP "/memory.events", "oom_kill ");
	}
	EXPECT(kills == 1, "memory.events oom_kill is %ld, not 1", kills);
	/* The reaper starts 2 s after the kill. */
	for (i = 0; i < 1500; i++) {
		current = file_number(REAP_CGROUP "/memory.current", NULL);
		if (current >= 0 && current < 8 * 1024 * 1024)
			break;
		usleep(10 * 1000);
	}
	printf("#   %s: oom_kill %ld; memory.current %ld kB %.1f s later, thread in view 1 %c\n",
	       REAP_CGROUP, kills, current / 1024, i / 100.0, thread_state(r.victim, r.stuck_tid));
	EXPECT(thread_state(r.victim, r.stuck_tid) == 'D', "the thread in view 1 stopped waiting");
	EXPECT(current >= 0 && current < 8 * 1024 * 1024,
	       "%ld kB still charged 15 s after the OOM kill", current / 1024);
out:
	close(r.go);
	reap_finish(&r);
}

int main(void)
{
	page = sysconf(_SC_PAGESIZE);
	setvbuf(stdout, NULL, _IOLBF, 0);
	tap_plan(17);
	run_case("memcg owner: a view whose creator exited is charged to the process's cgroup",
	         case_memcg_owner);
	run_case("dumpable: PR_SET_DUMPABLE in one view holds in every view, and in later ones",
	         case_dumpable);
	run_case("dumpable: a setuid makes every view non-dumpable", case_dumpable_after_setuid);
	run_case("coredump_filter written in one view holds in every view, and in later ones",
	         case_coredump_filter);
	run_case("MDWE: PR_SET_MDWE in one view refuses W+X in every view, and in later ones",
	         case_mdwe);
	run_case("refusal: PR_SET_MM with views (EBUSY)", case_refuse_set_mm);
	run_case("PR_SET_MM_AUXV racing CREATE: every view has the last vector accepted",
	         case_set_mm_auxv_races_create);
	run_case("LDT: copied at CREATE and loadable in a view; modify_ldt with views (EBUSY)",
	         case_ldt);
	run_case("anonymous VMA names: copied at CREATE; PR_SET_VMA_ANON_NAME with views (EBUSY)",
	         case_anon_vma_name);
	run_case("smaps of a view: mirrors count in Rss, not in Pss", case_smaps_mirrors);
	run_case("mlock, MAP_POPULATE and MADV_POPULATE_* from a view map its mirrors at once",
	         case_populate_maps_mirrors);
	run_case("process_vm_readv and /proc/PID/task/TID/mem see the thread's view",
	         case_other_process_sees_the_thread_s_view);
	run_case("OOM: a process with views is killed as a whole and frees its memory",
	         case_oom_kill);
	run_case("OOM: a vfork child running in another view is killed with its process",
	         case_oom_kills_vfork_child_in_other_view);
	run_case(
	    "rseq mm_cid: allocated per view (known limit); MIGRATE takes an id of the new view",
	    case_mm_cid_per_view);
	run_case("process_mrelease reaps every view of a killed process that cannot exit",
	         case_mrelease_reaps_every_view);
	run_case("the OOM reaper reaps every view of a victim that cannot exit",
	         case_oom_reaper_reaps_every_view);
	return tap_finish();
}
