// SPDX-License-Identifier: MIT
// Target code linked into the (PIE) test executable itself: its patches call libc, which lies
// more than 2 GiB away (branch stubs, GOT slots), and use the executable's TLS with the
// initial-exec and local-exec models.
#include <string.h>

__thread int exe_tls = 0;
__thread int exe_tls2 = 0;
int exe_data = 5;

__attribute__((noinline)) int exe_add(int a, int b)
{
	return a + b + exe_data;
}

__attribute__((noinline)) unsigned long exe_len(const char *s)
{
	return strlen(s) + exe_data;
}

__attribute__((noinline)) int exe_tls_bump(void)
{
	exe_tls2++;
	return ++exe_tls;
}

int exe_tls2_get(void)
{
	return exe_tls2;
}

int exe_call_add(int a, int b)
{
	return exe_add(a, b) + 0 * exe_data;
}
