// SPDX-License-Identifier: MIT
// A C shared library the loader tests patch after dlopen'ing it: calls into libc, extern and
// static data, a static local, TLS in a shared library, a function pointer, and two functions
// the loader must refuse to redirect (too short; a branch into the bytes the jump overwrites).
#include <stdio.h>

int lib_counter = 0;      // extern data
int lib_zero = 0;         // keeps lib_add longer than the 5-byte jump
__thread int lib_tls = 0; // TLS of a dlopen'ed library (dynamic TLS: general-dynamic access)
static int lib_hidden = 10;

__attribute__((noinline)) int lib_add(int a, int b)
{
	return a + b + lib_zero;
}

int lib_call_add(int a, int b)
{
	return lib_add(a, b) * 1; // through the PLT: reaches lib_add's entry
}

int lib_format(char *buf, int n)
{
	return snprintf(buf, 64, "v1:%d", n);
}

int lib_count(void)
{
	static int calls;
	calls++;
	lib_counter++;
	return calls;
}

int lib_tls_bump(void)
{
	return ++lib_tls;
}

void lib_static_set(int v)
{
	lib_hidden = v;
}

int lib_static_get(void)
{
	return lib_hidden;
}

typedef int (*add_fn)(int, int);
add_fn lib_add_ptr(void)
{
	return lib_add;
}

// 1 byte: too short for a 5-byte jump.
__asm__(".text\n"
        ".globl lib_tiny\n"
        ".type lib_tiny, @function\n"
        "lib_tiny:\n"
        "	ret\n"
        ".size lib_tiny, .-lib_tiny\n");
// Counts up to its argument; the loop branches back to offset 2, inside the first 5 bytes.
__asm__(".text\n"
        ".globl lib_loop\n"
        ".type lib_loop, @function\n"
        "lib_loop:\n"
        "	xor %eax, %eax\n"
        "1:	inc %eax\n"
        "	cmp %edi, %eax\n"
        "	jl 1b\n"
        "	ret\n"
        ".size lib_loop, .-lib_loop\n");
