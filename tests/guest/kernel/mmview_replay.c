// SPDX-License-Identifier: MIT
/*
 * Layout changes with several views (docs/kernel.md, "Replays"): mmap, munmap, brk,
 * mprotect, stack growth and shmdt made in any view are replayed in every view, so all views keep
 * one layout (compared through /proc/thread-self/maps in each) and shared memory stays one
 * memory (contents and PFNs). Also what a real program does with views: thread creation and
 * exit beyond glibc's stack cache, malloc from several views, SWITCH_BASE after replays, and
 * no page-table leak from munmap in views.
 *
 * Each case runs in a child process of its own (views_case.h).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/shm.h>
#include <sys/syscall.h>

#include <atlas/mmview.h>

#include "replay_case.h"
#include "views_case.h"

/* ---- mmap and munmap ---- */

static void case_mmap_munmap(void)
{
	long ids[3] = {0}, r;
	char *p, *q;
	uint64_t pfn_view;
	int i;

	create_views(ids, 3);
	mmview_migrate(ids[2]);
	p = mmap(NULL, 16 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	EXPECT(p != MAP_FAILED, "mmap from view 2 (%s)", p == MAP_FAILED ? strerror(errno) : "ok");
	if (p == MAP_FAILED)
		return;
	for (i = 0; i < 16; i++)
		p[i * page] = 'a' + i;
	pfn_view = pfn_of(p + 3 * page);
	EXPECT(layouts_equal(ids, 3), "one layout after mmap from view 2");
	mmview_migrate(0);
	for (i = 0; i < 16; i++)
		EXPECT(p[i * page] == 'a' + i, "base reads page %d written in view 2", i);
	EXPECT(pfn_of(p + 3 * page) == pfn_view && pfn_view,
	       "base and view 2 map one page (PFN %llx vs %llx)",
	       (unsigned long long)pfn_of(p + 3 * page), (unsigned long long)pfn_view);

	mmview_migrate(ids[1]);
	r = munmap(p + 4 * page, 4 * page);
	EXPECT(r == 0, "munmap from view 1 (got %s)", err_name(r));
	EXPECT(!mapped(p + 4 * page, 4 * page), "unmapped in view 1");
	EXPECT(layouts_equal(ids, 3), "one layout after munmap from view 1");
	mmview_migrate(0);
	EXPECT(!mapped(p + 4 * page, 4 * page), "unmapped in the base");
	EXPECT(!probe(p + 5 * page, false), "the base faults on the unmapped range");
	EXPECT(p[8 * page] == 'a' + 8, "the rest stays");

	/* MAP_FIXED over existing pages, from view 2: every view sees the new, empty mapping. */
	mmview_migrate(ids[2]);
	q = mmap(p, 4 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1,
	         0);
	EXPECT(q == p, "MAP_FIXED from view 2 (%s)", q == MAP_FAILED ? strerror(errno) : "ok");
	mmview_migrate(0);
	EXPECT(p[0] == 0 && p[page] == 0, "base sees the fresh mapping (got %d %d)", p[0], p[page]);
	p[0] = 'z';
	mmview_migrate(ids[1]);
	EXPECT(p[0] == 'z', "view 1 sees the base's write to the new mapping");
	EXPECT(layouts_equal(ids, 3), "one layout after MAP_FIXED");

	/* Many mappings and unmappings from a view; the holes agree everywhere. */
	for (i = 0; i < 200; i++) {
		char *m = mmap(NULL, (i % 7 + 1) * page, PROT_READ | PROT_WRITE,
		               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (m == MAP_FAILED) {
			EXPECT(false, "mmap %d failed: %s", i, strerror(errno));
			break;
		}
		m[0] = 1;
		if (i % 3)
			munmap(m, (i % 7 + 1) * page);
	}
	EXPECT(layouts_equal(ids, 3), "one layout after 200 mappings from view 1");
}

/* ---- shared and file mappings ---- */

static void check_one_memory(const char *what, char *p, long view)
{
	uint64_t pfn;

	mmview_migrate(view);
	p[0] = 'v';
	pfn = pfn_of(p);
	mmview_migrate(0);
	EXPECT(p[0] == 'v', "%s: the base reads the view's write", what);
	EXPECT(pfn && pfn_of(p) == pfn, "%s: one page in base and view", what);
	p[page] = 'b';
	mmview_migrate(view);
	EXPECT(p[page] == 'b', "%s: the view reads the base's write", what);
	mmview_migrate(0);
}

static void case_shared_mappings(void)
{
	long ids[2] = {0};
	char path[] = "/tmp/mmview-replay-XXXXXX", path2[] = "/tmp/mmview-replay-XXXXXX";
	char buf[2] = {0};
	char *anon, *zero, *file, *priv;
	int zfd, fd, fd2;

	create_views(ids, 2);
	mmview_migrate(ids[1]);
	anon = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	zfd = open("/dev/zero", O_RDWR);
	zero = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_SHARED, zfd, 0);
	fd = mkstemp(path);
	fd2 = mkstemp(path2);
	EXPECT(fd >= 0 && ftruncate(fd, 2 * page) == 0 && fd2 >= 0 && ftruncate(fd2, 2 * page) == 0,
	       "temporary files");
	file = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	priv = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd2, 0);
	EXPECT(anon != MAP_FAILED && zero != MAP_FAILED && file != MAP_FAILED && priv != MAP_FAILED,
	       "anonymous shared, /dev/zero shared, file shared and private mmaps from a view");
	if (anon == MAP_FAILED || zero == MAP_FAILED || file == MAP_FAILED || priv == MAP_FAILED)
		return;
	mmview_migrate(0);
	check_one_memory("MAP_SHARED|MAP_ANONYMOUS", anon, ids[1]);
	check_one_memory("MAP_SHARED of /dev/zero", zero, ids[1]);
	check_one_memory("MAP_SHARED of a file", file, ids[1]);
	EXPECT(pread(fd, buf, 1, 0) == 1 && buf[0] == 'v', "the file has the view's write");
	check_one_memory("MAP_PRIVATE of a file (its copies are shared too)", priv, ids[1]);
	EXPECT(pread(fd2, buf, 1, 0) == 1 && buf[0] == 0 && pread(fd2, buf, 1, page) == 1 &&
	           buf[0] == 0,
	       "private writes stay out of the file");
	EXPECT(layouts_equal(ids, 2), "one layout");
	unlink(path);
	unlink(path2);
}

/* ---- System V shared memory ---- */

/*
 * shmat() maps through do_mmap(), which is replayed; shmdt() unmaps the segment's VMAs itself
 * (ipc/shm.c), fragments left by mprotect() included, and must do so in every view.
 */
static void case_sysv_shm(void)
{
	long ids[3] = {0};
	char *p;
	int id;

	id = shmget(IPC_PRIVATE, 8 * page, IPC_CREAT | 0600);
	EXPECT(id >= 0, "shmget (%s)", id < 0 ? strerror(errno) : "ok");
	if (id < 0)
		return;
	create_views(ids, 3);
	mmview_migrate(ids[1]);
	p = shmat(id, NULL, 0);
	shmctl(id, IPC_RMID, NULL);
	EXPECT(p != (void *)-1, "shmat from view 1 (%s)", p == (void *)-1 ? strerror(errno) : "ok");
	if (p == (void *)-1)
		return;
	p[0] = 's';
	p[7 * page] = 't';
	EXPECT(layouts_equal(ids, 3), "one layout after shmat from view 1");
	/* Split the segment's VMA: shmdt() then has three fragments to find. */
	EXPECT(mprotect(p + 2 * page, 2 * page, PROT_READ) == 0, "mprotect a fragment (%s)",
	       strerror(errno));
	mmview_migrate(0);
	EXPECT(p[0] == 's' && p[7 * page] == 't', "the base reads the segment view 1 wrote");
	mmview_migrate(ids[2]);
	EXPECT(shmdt(p) == 0, "shmdt from view 2 (%s)", strerror(errno));
	EXPECT(!mapped(p, 8 * page), "detached in view 2");
	EXPECT(layouts_equal(ids, 3), "one layout after shmdt from view 2");
	mmview_migrate(ids[1]);
	EXPECT(!mapped(p, 8 * page), "detached in view 1");
	EXPECT(!probe(p + 6 * page, false), "view 1 faults on the detached segment");
	mmview_migrate(0);
	EXPECT(!mapped(p, 8 * page), "detached in the base");
}

/* ---- mprotect ---- */

static void case_mprotect(void)
{
	long ids[2] = {0}, r;
	char *shared, *unshared;

	shared = map_anon(4);
	unshared = map_anon(4);
	EXPECT(shared && unshared, "mmap");
	if (!shared || !unshared)
		return;
	memset(shared, 1, 4 * page);
	memset(unshared, 1, 4 * page);
	r = mmview_unshare(unshared, 4 * page);
	EXPECT(r == 0, "UNSHARE (got %s)", err_name(r));
	create_views(ids, 2);

	mmview_migrate(ids[1]);
	r = mprotect(shared + page, page, PROT_READ);
	EXPECT(r == 0, "mprotect of a shared range from the view (got %s)", err_name(r));
	EXPECT(!probe(shared + page, true), "the view cannot write it");
	mmview_migrate(0);
	EXPECT(!probe(shared + page, true), "the base cannot write it either");
	EXPECT(probe(shared + page, false) && probe(shared, true), "reads and neighbours work");
	EXPECT(layouts_equal(ids, 2), "one layout after mprotect");
	r = mprotect(shared + page, page, PROT_READ | PROT_WRITE);
	EXPECT(r == 0, "mprotect back from the base (got %s)", err_name(r));
	mmview_migrate(ids[1]);
	EXPECT(probe(shared + page, true), "the view can write again");

	r = mprotect(unshared, 2 * page, PROT_READ);
	EXPECT(r == 0, "mprotect of an unshared range from the view (got %s)", err_name(r));
	EXPECT(!probe(unshared, true), "the view cannot write its unshared page");
	mmview_migrate(0);
	EXPECT(probe(unshared, true), "the base still can: unshared protections diverge");
	mmview_migrate(ids[1]);
	r = mprotect(unshared + 2 * page, 2 * page, PROT_READ);
	EXPECT(r == 0, "a second unshared mprotect (got %s)", err_name(r));

	/* A range that is shared in part: refused before anything changes. */
	if (shared + 4 * page == unshared || unshared + 4 * page == shared) {
		char *lo = shared < unshared ? shared : unshared;

		r = mprotect(lo, 8 * page, PROT_NONE);
		EXPECT(fails_with(r, EACCES), "mixed range fails EACCES (got %s)", err_name(r));
		EXPECT(probe(shared, true), "nothing changed");
	} else {
		printf("# the two mappings are not adjacent: mixed-range check skipped\n");
	}
}

/* ---- brk ---- */

static void case_brk(void)
{
	long ids[3] = {0};
	char *old, *top;
	int i;

	create_views(ids, 3);
	mmview_migrate(ids[1]);
	old = sbrk(0);
	top = sbrk(64 * page);
	EXPECT(top == old, "sbrk grows from view 1 (%s)",
	       top == (void *)-1 ? strerror(errno) : "ok");
	if (top == (void *)-1)
		return;
	for (i = 0; i < 64; i++)
		top[i * page] = (char)i;
	mmview_migrate(ids[2]);
	EXPECT(sbrk(0) == top + 64 * page, "view 2 has the same break");
	for (i = 0; i < 64; i++)
		if (top[i * page] != (char)i)
			break;
	EXPECT(i == 64, "view 2 reads the heap written in view 1 (first difference at %d)", i);
	EXPECT(layouts_equal(ids, 3), "one layout after the heap grew");
	EXPECT(sbrk(-32 * page) != (void *)-1, "sbrk shrinks from view 2");
	mmview_migrate(0);
	EXPECT(sbrk(0) == top + 32 * page, "the base has the same break");
	EXPECT(!probe(top + 40 * page, false), "the base faults past the break");
	EXPECT(top[31 * page] == 31, "below the break stays");
	EXPECT(layouts_equal(ids, 3), "one layout after the heap shrank");
}

/* ---- stack growth ---- */

static uintptr_t deepest; /* the deepest frame's address */

/* Uses about @depth x 256 KiB of the calling thread's stack; marks the deepest frame. */
static void __attribute__((noinline)) grow_stack(int depth)
{
	volatile char frame[256 * 1024];

	frame[0] = (char)depth;
	frame[sizeof(frame) - 1] = (char)depth;
	if (depth > 1)
		grow_stack(depth - 1);
	else
		deepest = (uintptr_t)frame;
	frame[1] = frame[0];
}

static void case_stack_growth(void)
{
	long ids[2] = {0};

	create_views(ids, 2);
	/* The main thread's stack grows in view 1 by about 6 MiB. */
	mmview_migrate(ids[1]);
	grow_stack(24);
	EXPECT(deepest && *(volatile char *)deepest == 1, "the deepest frame was written");
	mmview_migrate(0);
	EXPECT(mapped((void *)(deepest & ~(page - 1)), page), "the stack grew in the base too");
	EXPECT(*(volatile char *)deepest == 1, "the base reads the deepest frame's memory");
	EXPECT(layouts_equal(ids, 2), "one layout after stack growth");
}

/* ---- threads, glibc's stack cache, malloc ---- */

static atomic_long thread_sum;

static void *add_one(void *arg)
{
	char *scratch = malloc(100000);

	(void)arg;
	if (scratch) {
		memset(scratch, 1, 100000);
		free(scratch);
	}
	atomic_fetch_add(&thread_sum, 1);
	return NULL;
}

static void case_thread_churn(void)
{
	long ids[3] = {0};
	pthread_attr_t attr;
	int round, i, failed = 0;

	create_views(ids, 3);
	pthread_attr_init(&attr);
	/* 8 x 16 MiB stacks per round: beyond glibc's 40 MiB cache, so exited stacks are
	 * unmapped (glibc aborts the process if that munmap fails). */
	pthread_attr_setstacksize(&attr, 16 << 20);
	for (round = 0; round < 12; round++) {
		pthread_t t[8];

		mmview_migrate(ids[round % 3]);
		for (i = 0; i < 8; i++)
			if (pthread_create(&t[i], &attr, add_one, NULL))
				t[i] = 0, failed++;
		for (i = 0; i < 8; i++)
			if (t[i])
				pthread_join(t[i], NULL);
	}
	mmview_migrate(0);
	EXPECT(failed == 0, "%d pthread_create calls failed", failed);
	EXPECT(atomic_load(&thread_sum) == 96 - failed, "all threads ran (%ld)",
	       atomic_load(&thread_sum));
	EXPECT(layouts_equal(ids, 3), "one layout after 96 threads came and went");
}

#define MALLOC_WORKERS 4
#define HANDOFF 64

static _Atomic(char *) handoff[HANDOFF];
static atomic_int malloc_errors;

struct malloc_worker {
	long view;
	unsigned seed;
};

/* Allocates, checks and frees blocks of 16 B to 1 MiB; frees other views' blocks too. */
static void *malloc_worker(void *arg)
{
	struct malloc_worker *w = arg;
	int i;

	if (mmview_migrate(w->view) < 0)
		atomic_fetch_add(&malloc_errors, 1);
	for (i = 0; i < 6000; i++) {
		size_t size = 16 + rand_r(&w->seed) % ((i % 10) ? 4096 : (1 << 20));
		unsigned char *b = malloc(size), *old;
		size_t k;

		if (!b) {
			atomic_fetch_add(&malloc_errors, 1);
			continue;
		}
		memset(b, (int)(size & 0xff), size);
		for (k = 0; k < size; k += 509)
			if (b[k] != (unsigned char)(size & 0xff))
				atomic_fetch_add(&malloc_errors, 1);
		/* Keep size in the block so that whoever frees it can check it. */
		if (size >= sizeof(size_t) + 1) {
			memcpy(b, &size, sizeof(size));
			old = (unsigned char *)atomic_exchange(&handoff[rand_r(&w->seed) % HANDOFF],
			                                       (char *)b);
			if (old) {
				size_t osize;

				memcpy(&osize, old, sizeof(osize));
				if (old[osize - 1] != (unsigned char)(osize & 0xff))
					atomic_fetch_add(&malloc_errors, 1);
				free(old);
			}
		} else {
			free(b);
		}
	}
	return NULL;
}

static void case_malloc(void)
{
	long ids[MALLOC_WORKERS] = {0};
	pthread_t t[MALLOC_WORKERS];
	struct malloc_worker w[MALLOC_WORKERS];
	int i;

	create_views(ids, MALLOC_WORKERS);
	for (i = 0; i < MALLOC_WORKERS; i++) {
		w[i] = (struct malloc_worker){.view = ids[i], .seed = 17u * (i + 1)};
		pthread_create(&t[i], NULL, malloc_worker, &w[i]);
	}
	for (i = 0; i < MALLOC_WORKERS; i++)
		pthread_join(t[i], NULL);
	for (i = 0; i < HANDOFF; i++)
		free(atomic_load(&handoff[i]));
	EXPECT(atomic_load(&malloc_errors) == 0, "%d corrupt or failed allocations",
	       atomic_load(&malloc_errors));
	EXPECT(layouts_equal(ids, MALLOC_WORKERS), "one layout after malloc from 4 views");
}

/* ---- refusals ---- */

static void case_refusals(void)
{
	long ids[2] = {0}, r;
	char *buf = map_anon(4);
	void *p;

	create_views(ids, 2);
	p = mmap(NULL, 2 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB,
	         -1, 0);
	EXPECT(p == MAP_FAILED && errno == EOPNOTSUPP, "MAP_HUGETLB with views fails EOPNOTSUPP");
	/* KSM would merge pages behind the views' mirrors. */
	r = madvise(buf, page, MADV_MERGEABLE);
	EXPECT(fails_with(r, EOPNOTSUPP), "MADV_MERGEABLE fails EOPNOTSUPP (got %s)", err_name(r));
	r = mmview_delete(ids[1]);
	EXPECT(r == 0, "DELETE (got %s)", err_name(r));
}

/* ---- SWITCH_BASE after replays ---- */

static void case_switch_base_after_replays(void)
{
	long ids[3] = {0}, r;
	char *a, *b;
	int i;

	create_views(ids, 3);
	/* Mappings made in the base and in a view, adjacent, written from both. */
	a = map_anon(16);
	EXPECT(a != NULL, "mmap in the base");
	if (!a)
		return;
	munmap(a + 8 * page, 8 * page);
	memset(a, 'a', 8 * page);
	mmview_migrate(ids[1]);
	b = mmap(a + 8 * page, 8 * page, PROT_READ | PROT_WRITE,
	         MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	EXPECT(b == a + 8 * page, "mmap in view 1 next to the base's (%s)",
	       b == MAP_FAILED ? strerror(errno) : "ok");
	if (b != a + 8 * page)
		return;
	memset(b, 'b', 8 * page);
	r = mprotect(a + 2 * page, 2 * page, PROT_READ);
	EXPECT(r == 0, "mprotect splits in every view (got %s)", err_name(r));
	r = mmview_switch_base();
	EXPECT(r == ids[1], "SWITCH_BASE from view 1 (got %s)", err_name(r));
	r = mmview_delete(0);
	EXPECT(r == 0, "DELETE of the old base (got %s)", err_name(r));
	for (i = 0; i < 8; i++)
		if (a[i * page] != 'a' || b[i * page] != 'b')
			break;
	EXPECT(i == 8, "contents survive (first difference at page %d)", i);
	mmview_migrate(ids[2]);
	EXPECT(a[0] == 'a' && b[7 * page] == 'b', "view 2 still sees them");
	a[0] = 'x';
	mmview_migrate(ids[1]);
	EXPECT(a[0] == 'x', "one memory after the switch");
	r = munmap(a, 16 * page);
	EXPECT(r == 0, "munmap after the switch (got %s)", err_name(r));
	EXPECT(layouts_equal(&ids[1], 2), "one layout after the switch");
}

/* ---- page tables: kept by views until they die, then freed ---- */

static long meminfo(const char *key)
{
	char line[128];
	long value = -1;
	FILE *f = fopen("/proc/meminfo", "r");

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key)) && line[strlen(key)] == ':')
			value = atol(line + strlen(key) + 1);
	if (f)
		fclose(f);
	return value;
}

static void case_page_tables_freed(void)
{
	long before, after;
	int round, failures = 0;

	before = meminfo("PageTables");
	for (round = 0; round < 20; round++) {
		pid_t pid = fork();
		int status;

		if (pid == 0) {
			long v = mmview_create();
			int i;

			mmview_migrate(v);
			/* 32 MiB mapped and touched a page per 2 MiB, then unmapped, 8 times. */
			for (i = 0; i < 8; i++) {
				char *m = mmap(NULL, 32 << 20, PROT_READ | PROT_WRITE,
				               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
				size_t off;

				if (m == MAP_FAILED)
					_exit(2);
				for (off = 0; off < (32 << 20); off += 2 << 20)
					m[off] = 1;
				if (munmap(m, 32 << 20))
					_exit(3);
			}
			_exit(v > 0 ? 0 : 1);
		}
		waitpid(pid, &status, 0);
		failures += !WIFEXITED(status) || WEXITSTATUS(status) != 0;
	}
	sleep(1);
	after = meminfo("PageTables");
	printf("# PageTables %ld -> %ld kB\n", before, after);
	EXPECT(failures == 0, "%d of 20 processes failed", failures);
	EXPECT(after <= before + 256, "page tables grew by %ld kB", after - before);
}

/*
 * Protection keys: a key allocated in one view is allocated in every view, so a
 * pkey_mprotect() made with it from a view is replayed everywhere (it would otherwise fail
 * in the other views, and the failed replay kill the process); a key freed in one view is
 * free in every view.
 */
static void case_pkeys(void)
{
	long ids[3] = {0};
	char *p = map_anon(4);
	int key, again;
	long r;

	EXPECT(p, "mmap");
	if (!p)
		return;
	key = (int)syscall(SYS_pkey_alloc, 0, 0);
	if (key < 0 && (errno == ENOSPC || errno == EINVAL || errno == ENOSYS)) {
		printf("#   no protection keys here (%s): nothing to test\n", strerror(errno));
		return;
	}
	syscall(SYS_pkey_free, key);
	create_views(ids, 3);
	mmview_migrate(ids[2]);
	key = (int)syscall(SYS_pkey_alloc, 0, 0);
	EXPECT(key > 0, "pkey_alloc in view 2 (got %d, %s)", key, strerror(errno));
	r = syscall(SYS_pkey_mprotect, p, 4 * page, PROT_READ | PROT_WRITE, key);
	EXPECT(r == 0, "pkey_mprotect in view 2 with its key (got %s)", err_name(r));
	mmview_migrate(ids[1]);
	r = syscall(SYS_pkey_mprotect, p, 2 * page, PROT_READ, key);
	EXPECT(r == 0, "pkey_mprotect in view 1 with view 2's key (got %s)", err_name(r));
	EXPECT(layouts_equal(ids, 3), "one layout after pkey_mprotect from two views");
	mmview_migrate(0);
	r = syscall(SYS_pkey_free, key);
	EXPECT(r == 0, "pkey_free in the base of the key view 2 allocated (got %s)", err_name(r));
	mmview_migrate(ids[2]);
	r = syscall(SYS_pkey_mprotect, p, 4 * page, PROT_READ, key);
	EXPECT(fails_with(r, EINVAL), "the freed key is free in view 2 too (got %s)", err_name(r));
	again = (int)syscall(SYS_pkey_alloc, 0, 0);
	EXPECT(again == key, "view 2 gets the same key again (got %d, was %d)", again, key);
	mmview_migrate(0);
}

int main(void)
{
	page = sysconf(_SC_PAGESIZE);
	setvbuf(stdout, NULL, _IOLBF, 0);
	tap_plan(12);
	run_case("mmap, munmap and MAP_FIXED from views: one layout, one memory", case_mmap_munmap);
	run_case("anonymous, /dev/zero and file mappings made in a view are one memory",
	         case_shared_mappings);
	run_case("System V shared memory attached in one view, detached in another", case_sysv_shm);
	run_case("mprotect: shared ranges in every view, unshared per view, mixed EACCES",
	         case_mprotect);
	run_case("brk grows and shrinks in every view", case_brk);
	run_case("stack growth in a view grows every view's stack", case_stack_growth);
	run_case("96 threads with 16 MiB stacks come and go in 3 views", case_thread_churn);
	run_case("malloc and free from 4 views, blocks freed across views", case_malloc);
	run_case("refusals with views: MAP_HUGETLB, MADV_MERGEABLE", case_refusals);
	run_case("protection keys allocated or freed in one view are so in every view", case_pkeys);
	run_case("SWITCH_BASE after replayed changes, then delete of the old base",
	         case_switch_base_after_replays);
	run_case("page tables views kept after munmap are freed when they exit",
	         case_page_tables_freed);
	return tap_finish();
}
