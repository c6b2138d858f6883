/* A replacement of real_target.c's serve() event loop. */
#include <sys/epoll.h>

extern volatile int answer_calls;

void serve(int epfd)
{
	struct epoll_event ev;
	for (;;)
		if (epoll_wait(epfd, &ev, 1, 1000) < 0)
			answer_calls -= 2;
}
