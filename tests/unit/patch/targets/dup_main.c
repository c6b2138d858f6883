// The target the patch tests build patches for: a PIE with two static `helper` functions
// (dup_a.c, dup_b.c), a global `process` and a TLS variable.
#include "dup.h"

#include <stdio.h>

__thread int tls_counter;

__attribute__((noinline)) int process(int x)
{
	tls_counter++;
	return a_entry(x) + b_entry(x);
}

int main(int argc, char **argv)
{
	(void)argv;
	printf("%d\n", process(argc));
	return 0;
}
