// SPDX-License-Identifier: MIT
// A patch of lib_add with a constructor and a destructor (.init_array, .fini_array): the
// constructor runs at load, the destructor when the patch becomes unreachable, before its text
// is unmapped (it runs from that text). Both record themselves in the library's lib_counter.
extern int lib_zero;
extern int lib_counter;

int lib_add(int a, int b)
{
	return a + b + 300 + lib_zero;
}

__attribute__((constructor)) static void patch_up(void)
{
	lib_counter += 1000;
}

__attribute__((destructor)) static void patch_down(void)
{
	lib_counter += 1;
}
