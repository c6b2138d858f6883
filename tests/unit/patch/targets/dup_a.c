// A translation unit of the duplicate-local-names test target: dup_b.c defines a static
// function and a static variable with the same names.
#include "dup.h"

static int counter;

__attribute__((noinline)) static int helper(int x)
{
	counter++;
	return x + 1;
}

int a_entry(int x)
{
	return helper(x) + counter;
}
