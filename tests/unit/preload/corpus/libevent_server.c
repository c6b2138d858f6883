// A server written the way libevent's own examples and memcached write one (no atlas in it but
// the "ready" line the tests read): the main thread's event base accepts with an
// evconnlistener and hands each connection to one of four worker threads, each running its
// own event base; connections are bufferevents with a line-reading callback; a timer ticks on
// every worker. A request is a line "<n>"; the reply is the line "<reply_for(n)>".
//
// Prints "ready <control socket> <port>" once listening; on SIGTERM prints "served N" and exits.
#include <dlfcn.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WORKERS 4

static atomic_long served;

struct worker {
	struct event_base *base;
	struct event *tick;
	pthread_t thread;
};
static struct worker workers[WORKERS];
static unsigned next_worker;

// What the patch replaces (corpus_fix.c): the reply to request n.
__attribute__((noinline)) long reply_for(long n)
{
	return 2 * n;
}

static void on_read(struct bufferevent *bev, void *arg)
{
	(void)arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	char *line;
	size_t len;
	while ((line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF))) {
		evbuffer_add_printf(bufferevent_get_output(bev), "%ld\n",
		                    reply_for(strtol(line, NULL, 10)));
		free(line);
		atomic_fetch_add(&served, 1);
	}
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	(void)arg;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		bufferevent_free(bev);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

static void *run_worker(void *arg)
{
	struct worker *w = arg;
	event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY);
	return NULL;
}

static void on_accept(struct evconnlistener *listener, evutil_socket_t fd, struct sockaddr *addr,
                      int len, void *arg)
{
	(void)listener;
	(void)addr;
	(void)len;
	(void)arg;
	struct worker *w = &workers[next_worker++ % WORKERS];
	struct bufferevent *bev =
	    bufferevent_socket_new(w->base, fd, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_THREADSAFE);
	bufferevent_setcb(bev, on_read, NULL, on_event, NULL);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

static void on_term(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	printf("served %ld\n", atomic_load(&served));
	fflush(stdout);
	event_base_loopbreak(arg);
}

int main(void)
{
	evthread_use_pthreads();
	struct event_base *base = event_base_new();
	struct timeval second = {1, 0};
	for (int i = 0; i < WORKERS; i++) {
		workers[i].base = event_base_new();
		workers[i].tick = event_new(workers[i].base, -1, EV_PERSIST, on_tick, NULL);
		event_add(workers[i].tick, &second);
		pthread_create(&workers[i].thread, NULL, run_worker, &workers[i]);
	}
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct evconnlistener *listener = evconnlistener_new_bind(
	    base, on_accept, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 64,
	    (struct sockaddr *)&sin, sizeof(sin));
	if (!base || !listener) {
		perror("libevent_server: listen");
		return 1;
	}
	struct sockaddr_in bound;
	socklen_t bound_len = sizeof(bound);
	getsockname(evconnlistener_get_fd(listener), (struct sockaddr *)&bound, &bound_len);
	struct event *term = evsignal_new(base, SIGTERM, on_term, base);
	event_add(term, NULL);
	const char *(*socket_path)(void) =
	    (const char *(*)(void))dlsym(RTLD_DEFAULT, "atlas_preload_socket_path");
	printf("ready %s %d\n", socket_path ? socket_path() : "(not preloaded)",
	       ntohs(bound.sin_port));
	fflush(stdout);
	event_base_dispatch(base);
	_exit(0);
}
