#include "dup.h"

static int counter;

__attribute__((noinline)) static int helper(int x)
{
	counter += 2;
	return x * 2;
}

int b_entry(int x)
{
	return helper(x) + counter;
}
