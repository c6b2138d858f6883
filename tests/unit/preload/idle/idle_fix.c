/* A patch of idle_target.c's failed(): the same count, a message that says it is patched. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

extern atomic_long idle_errors;

void failed(const char *what)
{
	atomic_fetch_add(&idle_errors, 1);
	fprintf(stderr, "idle_target (patched): %s: %s\n", what, strerror(errno));
}
