// SPDX-License-Identifier: MIT
// Patch of libtarget.c: libc calls, extern data, a static and a static local of the library
// (bound by references), TLS of a dlopen'ed library, and &lib_add (the original's address).
#include <stdio.h>

extern int lib_counter;
extern int lib_zero;
extern __thread int lib_tls;
extern int hidden_ref;  // lib_hidden
extern int count_calls; // lib_count's static local

int lib_add(int a, int b)
{
	return a + b + 100 + lib_zero;
}

int lib_format(char *buf, int n)
{
	return snprintf(buf, 64, "v2:%d", n);
}

int lib_count(void)
{
	count_calls += 10;
	lib_counter += 10;
	return count_calls;
}

int lib_tls_bump(void)
{
	lib_tls += 10;
	return lib_tls;
}

int lib_static_get(void)
{
	return hidden_ref * 2;
}

typedef int (*add_fn)(int, int);
add_fn lib_add_ptr(void)
{
	return lib_add;
}
