// SPDX-License-Identifier: MIT
// A second patch of lib_add, stacked on lib_fix.
extern int lib_zero;

int lib_add(int a, int b)
{
	return a + b + 200 + lib_zero;
}
