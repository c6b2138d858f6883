// SPDX-License-Identifier: MIT
// Refused: lib_tiny is 1 byte, lib_loop branches into its first 5 bytes.
int lib_tiny(void)
{
	return 1;
}

int lib_loop(int n)
{
	return n;
}
