// A hand-written patch for the dup target: replaces dup_a.c's helper and process, and
// references dup_a.c's static counter, a TLS variable and libc.
#include <stdio.h>

extern int a_counter; // dup_a.c's `static int counter` (manifest "references")
extern __thread int tls_counter;
int a_entry(int x);
int b_entry(int x);

static const char *const messages[] = {"small", "large"};

int helper_fixed(int x)
{
	a_counter++;
	return x + 2;
}

int process(int x)
{
	tls_counter += 2;
	if (x > 1000)
		fprintf(stderr, "%s\n", messages[x > 2000]);
	return a_entry(x) + b_entry(x) + 1;
}
