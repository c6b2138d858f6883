// SPDX-License-Identifier: MIT
// Refused: references a symbol nothing defines.
extern int atlas_no_such_symbol;

int lib_add(int a, int b)
{
	return a + b + atlas_no_such_symbol;
}
