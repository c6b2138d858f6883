// A C program with one thread per way of idling that real servers use, written the way they
// write it (no atlas in it, but the "ready" line the tests read): pacing with usleep() and
// sleep(), workers blocked in read() on a pipe and a producer in write(), a contended mutex,
// a reader-writer lock, pthread_join, waitpid on a child, pause(), a barrier nobody completes,
// flock on a file another descriptor holds, fcntl(F_SETLKW) on a record the child holds,
// sem_timedwait, readv on an idle pipe, a futex of its own (syscall), a System V message queue
// and semaphore nobody posts to, sigsuspend.
// Run under LD_PRELOAD=libatlas-preload.so, every one of its threads must reach a quiescence
// point within a global transition's deadline. With IDLE_TARGET_USER=<name> it drops to that
// user after setting up, as a server started by root does (memcached -u): the process is then
// not dumpable. On SIGTERM it prints "errors N" (calls that failed unexpectedly, EINTR
// included) and exits.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/futex.h>
#include <pthread.h>
#include <pwd.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/msg.h>
#include <sys/prctl.h>
#include <sys/sem.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

// Not static: idle_fix.c, the patch the test applies, replaces failed() and counts here.
atomic_long idle_errors;
static int work_pipe[2], idle_pipe[2];
static pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_rwlock_t rwlock = PTHREAD_RWLOCK_INITIALIZER;
static pthread_barrier_t barrier;
static sem_t sem;
static char lock_path[64];
static pid_t child;
static int lock_fd;
static int queue = -1, semaphore = -1; // System V: removed at exit

__attribute__((noinline)) void failed(const char *what)
{
	atomic_fetch_add(&idle_errors, 1);
	fprintf(stderr, "idle_target: %s: %s\n", what, strerror(errno));
}

// The producer paces itself with usleep() and hands work to the readers through the pipe.
static void *producer(void *arg)
{
	(void)arg;
	for (;;) {
		if (usleep(20000) != 0)
			failed("usleep");
		if (write(work_pipe[1], "w", 1) != 1)
			failed("write");
	}
	return NULL;
}

static void *reader(void *arg)
{
	(void)arg;
	char c;
	for (;;)
		if (read(work_pipe[0], &c, 1) != 1)
			failed("read");
	return NULL;
}

// Holds the mutex most of the time, sleeping with it (as a slow critical section would).
static void *holder(void *arg)
{
	(void)arg;
	for (;;) {
		pthread_mutex_lock(&mutex);
		pthread_rwlock_wrlock(&rwlock);
		if (sleep(1) != 0)
			failed("sleep");
		pthread_rwlock_unlock(&rwlock);
		pthread_mutex_unlock(&mutex);
		usleep(1000);
	}
	return NULL;
}

static void *mutex_waiter(void *arg)
{
	(void)arg;
	for (;;) {
		if (pthread_mutex_lock(&mutex) != 0)
			failed("pthread_mutex_lock");
		pthread_mutex_unlock(&mutex);
		usleep(1000);
	}
	return NULL;
}

static void *rwlock_reader(void *arg)
{
	(void)arg;
	for (;;) {
		if (pthread_rwlock_rdlock(&rwlock) != 0)
			failed("pthread_rwlock_rdlock");
		pthread_rwlock_unlock(&rwlock);
		usleep(1000);
	}
	return NULL;
}

static void *pauser(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return NULL;
}

static void *joiner(void *arg)
{
	pthread_t forever;
	(void)arg;
	if (pthread_create(&forever, NULL, pauser, NULL) != 0)
		failed("pthread_create");
	else if (pthread_join(forever, NULL) != 0)
		failed("pthread_join");
	return NULL;
}

static void *child_waiter(void *arg)
{
	int status;
	(void)arg;
	if (waitpid(child, &status, 0) < 0 && errno != ECHILD)
		failed("waitpid");
	return NULL;
}

static void *barrier_waiter(void *arg)
{
	(void)arg;
	pthread_barrier_wait(&barrier); // a barrier of two that only this thread reaches
	return NULL;
}

static void *flocker(void *arg)
{
	(void)arg;
	int fd = open(lock_path, O_RDWR | O_CLOEXEC);
	if (fd < 0 || flock(fd, LOCK_EX) != 0)
		failed("flock");
	return NULL;
}

static void *sem_poller(void *arg)
{
	(void)arg;
	for (;;) {
		struct timespec at;
		clock_gettime(CLOCK_REALTIME, &at);
		at.tv_nsec += 100 * 1000 * 1000;
		if (at.tv_nsec >= 1000000000) {
			at.tv_sec++;
			at.tv_nsec -= 1000000000;
		}
		if (sem_timedwait(&sem, &at) != 0 && errno != ETIMEDOUT)
			failed("sem_timedwait");
	}
	return NULL;
}

static void *vector_reader(void *arg)
{
	(void)arg;
	char a[4], b[4];
	struct iovec iov[2] = {{a, sizeof(a)}, {b, sizeof(b)}};
	for (;;)
		if (readv(idle_pipe[0], iov, 2) < 0)
			failed("readv");
	return NULL;
}

static void *record_locker(void *arg)
{
	(void)arg;
	struct flock record = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
	if (fcntl(lock_fd, F_SETLKW, &record) != 0) // the child holds byte 0
		failed("fcntl F_SETLKW");
	return NULL;
}

static void *futex_waiter(void *arg)
{
	(void)arg;
	static _Atomic int word;
	for (;;)
		if (syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0) != 0 &&
		    errno != EAGAIN)
			failed("futex");
	return NULL;
}

static void *message_receiver(void *arg)
{
	(void)arg;
	struct {
		long type;
		char text[16];
	} message;
	if (msgrcv(queue, &message, sizeof(message.text), 0, 0) < 0 && errno != EIDRM)
		failed("msgrcv");
	return NULL;
}

static void *semaphore_taker(void *arg)
{
	(void)arg;
	struct sembuf take = {.sem_num = 0, .sem_op = -1, .sem_flg = 0};
	if (semop(semaphore, &take, 1) != 0 && errno != EIDRM)
		failed("semop");
	return NULL;
}

static void *suspender(void *arg)
{
	(void)arg;
	sigset_t mask;
	pthread_sigmask(SIG_BLOCK, NULL, &mask);
	sigaddset(&mask, SIGTERM); // main takes SIGTERM; this thread waits for nothing else
	for (;;)
		sigsuspend(&mask);
	return NULL;
}

static void on_term(int sig)
{
	(void)sig;
	char line[64];
	int n = snprintf(line, sizeof(line), "errors %ld\n", atomic_load(&idle_errors));
	if (child > 0)
		kill(child, SIGKILL);
	unlink(lock_path);
	msgctl(queue, IPC_RMID, NULL);
	semctl(semaphore, 0, IPC_RMID);
	(void)!write(STDOUT_FILENO, line, (size_t)n);
	_exit(0);
}

int main(void)
{
	static void *(*const threads[])(void *) = {
	    producer,      reader,        holder,         mutex_waiter,     rwlock_reader,
	    joiner,        child_waiter,  barrier_waiter, flocker,          sem_poller,
	    vector_reader, record_locker, futex_waiter,   message_receiver, semaphore_taker,
	    suspender,     reader,
	};
	const char *(*socket_path)(void) =
	    (const char *(*)(void))dlsym(RTLD_DEFAULT, "atlas_preload_socket_path");
	int locked[2];

	signal(SIGTERM, on_term);
	if (pipe(work_pipe) || pipe(idle_pipe) || sem_init(&sem, 0, 0) ||
	    pthread_barrier_init(&barrier, NULL, 2)) {
		perror("idle_target: setup");
		return 1;
	}
	snprintf(lock_path, sizeof(lock_path), "/tmp/idle_target.%d.lock", (int)getpid());
	lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lock_fd < 0 || flock(lock_fd, LOCK_EX) != 0) {
		perror("idle_target: lock file");
		return 1;
	}
	// Readable and writable by the user it may drop to.
	queue = msgget(IPC_PRIVATE, IPC_CREAT | 0666);
	semaphore = semget(IPC_PRIVATE, 1, IPC_CREAT | 0666);
	if (queue < 0 || semaphore < 0 || pipe(locked) != 0) {
		perror("idle_target: System V queue and semaphore");
		return 1;
	}
	const char *user = getenv("IDLE_TARGET_USER");
	if (user && *user) {
		struct passwd *pw = getpwnam(user);
		if (!pw || fchmod(lock_fd, 0666) != 0 || setgroups(0, NULL) != 0 ||
		    setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0) {
			perror("idle_target: dropping privileges");
			return 1;
		}
	}
	child = fork();
	if (child == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL); // never outlive a killed parent
		struct flock record = {
		    .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
		if (fcntl(lock_fd, F_SETLK, &record) != 0)
			perror("idle_target: child: fcntl F_SETLK");
		(void)!write(locked[1], "l", 1);
		for (;;)
			pause();
	}
	char byte;
	if (child < 0 || read(locked[0], &byte, 1) != 1) {
		perror("idle_target: child");
		return 1;
	}
	for (size_t i = 0; i < sizeof(threads) / sizeof(threads[0]); i++) {
		pthread_t t;
		if (pthread_create(&t, NULL, threads[i], NULL) != 0) {
			perror("idle_target: pthread_create");
			return 1;
		}
	}
	printf("ready %s\n", socket_path ? socket_path() : "(not preloaded)");
	fflush(stdout);
	for (;;)
		pause();
}
