/* A plain C program patched for real through libatlas-preload.so, the control socket and
 * atlas apply: prints "ready <socket>", then "answer N" whenever answer(0) changes. */
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <time.h>

volatile int answer_calls;

/* The function the patch replaces (long enough for the 5-byte jump). */
__attribute__((noinline)) int answer(int x)
{
	answer_calls++;
	return x + 1;
}

static void *reporter(void *arg)
{
	int last = -1;
	for (;;) {
		int v = answer(0);
		if (v != last) {
			printf("answer %d\n", v);
			fflush(stdout);
			last = v;
		}
		struct timespec ts = {0, 5 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	return arg;
}

/* An event loop that never returns: a patch replacing it can never be applied while this
 * thread idles in it (the stack check refuses the thread). */
__attribute__((noinline)) void serve(int epfd)
{
	struct epoll_event ev;
	for (;;)
		if (epoll_wait(epfd, &ev, 1, -1) < 0)
			answer_calls--;
}

static void *idler(void *arg)
{
	serve(epoll_create1(0));
	return arg;
}

int main(void)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	const char *(*socket_path)(void) =
	    (const char *(*)(void))dlsym(RTLD_DEFAULT, "atlas_preload_socket_path");
	if (!socket_path || !socket_path()) {
		fprintf(stderr, "not running under libatlas-preload.so\n");
		return 1;
	}
	printf("ready %s\n", socket_path());
	fflush(stdout);
	pthread_t t;
	pthread_create(&t, NULL, reporter, NULL);
	pthread_create(&t, NULL, idler, NULL);
	int sig;
	while (sigwait(&set, &sig) != 0 || sig != SIGTERM) {
	}
	printf("bye\n");
	fflush(stdout);
	return 0;
}
