/* Runs under libatlas-preload.so: prints "ready <socket>", then "state ..." whenever the
 * state of the patched functions changes, and "bye" on SIGTERM. */
#include "prog.h"

#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static void *reporter(void *arg)
{
	char last[128] = "";
	for (;;) {
		char now[128];
		snprintf(now, sizeof(now), "state %d %d %d %s %d", compute(3), grade(4), heavy(2),
		         label(2), where());
		if (strcmp(now, last) != 0) {
			printf("%s\n", now);
			fflush(stdout);
			strcpy(last, now);
		}
		struct timespec ts = {0, 2 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
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
	int sig;
	while (sigwait(&set, &sig) != 0 || sig != SIGTERM) {
	}
	printf("bye\n");
	fflush(stdout);
	return 0;
}
