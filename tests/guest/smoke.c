// SPDX-License-Identifier: MIT
/*
 * First in-guest test: proves the path from the host build to a TAP result inside the guest.
 * A dynamically linked program (its shared libraries brought by guest/run) checks that it runs
 * on the kernel and machine the runner was asked for, and that the basics the suite relies on
 * work there: threads meeting on a futex-backed mutex, fork and exit status, tmpfs, loopback.
 *
 *   smoke --cpus N [--debug]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tap.h"

#define THREADS 4
#define ROUNDS 20000

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static long counter;

static void *increment(void *arg)
{
	(void)arg;
	for (int i = 0; i < ROUNDS; i++) {
		pthread_mutex_lock(&lock);
		counter++;
		pthread_mutex_unlock(&lock);
	}
	return NULL;
}

static int loopback_roundtrip(void)
{
	struct sockaddr_in addr = {.sin_family = AF_INET,
	                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(addr);
	int srv = socket(AF_INET, SOCK_STREAM, 0), cli = socket(AF_INET, SOCK_STREAM, 0), conn;
	char buf[5] = {0};
	int ok;

	if (srv < 0 || cli < 0 || bind(srv, (struct sockaddr *)&addr, sizeof(addr)) ||
	    listen(srv, 1) || getsockname(srv, (struct sockaddr *)&addr, &len) ||
	    connect(cli, (struct sockaddr *)&addr, sizeof(addr)))
		return 0;
	conn = accept(srv, NULL, NULL);
	ok = conn >= 0 && write(cli, "ping", 4) == 4 && read(conn, buf, 4) == 4 &&
	     !strcmp(buf, "ping");
	close(conn);
	close(cli);
	close(srv);
	return ok;
}

int main(int argc, char **argv)
{
	long want_cpus = -1;
	int want_debug = 0;
	struct utsname uts;
	pthread_t threads[THREADS];
	FILE *f;
	pid_t pid;
	int status = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--cpus") && i + 1 < argc)
			want_cpus = strtol(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--debug"))
			want_debug = 1;
		else {
			fprintf(stderr, "usage: smoke --cpus N [--debug]\n");
			return 2;
		}
	}

	tap_plan(7);

	uname(&uts);
	tap_check(!strncmp(uts.release, "6.12.", 5), "kernel release %s is 6.12.y", uts.release);
	tap_check(sysconf(_SC_NPROCESSORS_ONLN) == want_cpus, "%ld CPUs online, %ld requested",
	          sysconf(_SC_NPROCESSORS_ONLN), want_cpus);
	/* /proc/lockdep exists only with CONFIG_LOCKDEP: the suite must run on the debug kernel. */
	tap_check((access("/proc/lockdep", R_OK) == 0) == want_debug, "lockdep %s, debug kernel %s",
	          access("/proc/lockdep", R_OK) == 0 ? "present" : "absent",
	          want_debug ? "expected" : "not expected");

	for (int i = 0; i < THREADS; i++)
		pthread_create(&threads[i], NULL, increment, NULL);
	for (int i = 0; i < THREADS; i++)
		pthread_join(threads[i], NULL);
	tap_check(counter == (long)THREADS * ROUNDS, "%d threads counted %ld of %ld under a mutex",
	          THREADS, counter, (long)THREADS * ROUNDS);

	pid = fork();
	if (pid == 0)
		_exit(42);
	waitpid(pid, &status, 0);
	tap_check(pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 42,
	          "fork: child's exit status 42 reaches the parent");

	f = fopen("/tmp/smoke", "w+");
	tap_check(f && fputs("atlas", f) >= 0 && !fflush(f) && !fseek(f, 0, SEEK_SET) &&
	              fgetc(f) == 'a',
	          "tmpfs /tmp is writable");
	if (f)
		fclose(f);

	tap_check(loopback_roundtrip(), "TCP round trip on loopback");
	return tap_finish();
}
