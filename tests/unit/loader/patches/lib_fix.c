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

// A switch dense enough for a jump table in .rodata (PC-relative entries relocated against
// this function's section), and -fstack-protector-strong for a canary and __stack_chk_fail.
int lib_format(char *buf, int n)
{
	char tmp[32];
	switch (n) {
	case 1:
		return snprintf(buf, 64, "one");
	case 2:
		return snprintf(buf, 64, "two:%d", n * 2);
	case 3:
		snprintf(tmp, sizeof tmp, "%d%d%d", n, n, n);
		return snprintf(buf, 64, "three:%s", tmp);
	case 4:
		return snprintf(buf, 64, "four:%x", n * 255);
	case 5:
		return snprintf(buf, 64, "five:%c", 'a' + n);
	case 6:
		return snprintf(buf, 64, "six:%s", "vi");
	default:
		return snprintf(buf, 64, "v2:%d", n);
	}
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

// A new function of this patch (not a replacement): lib_on_fix calls it, so that patch stacks
// on this one.
int lib_fix_bonus(int x)
{
	return x + 1000 + lib_zero;
}
