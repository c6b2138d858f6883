// SPDX-License-Identifier: MIT
// A patch of lib_add stacked on lib_fix: it calls lib_fix's own new function lib_fix_bonus
// (resolved through the earlier patch, so it cannot be loaded without lib_fix applied).
extern int lib_zero;
int lib_fix_bonus(int x);

int lib_add(int a, int b)
{
	return lib_fix_bonus(a + b) + lib_zero;
}
