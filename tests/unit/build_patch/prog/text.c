/* Text of the test program: string literals, a function-local static, and __LINE__. */
#include "prog.h"

const char *label(int x)
{
	static int uses;

	uses++;
	if (x > 3)
		return "big";
	return uses > 0 ? "small" : "none";
}

/* Where this function is: a diff that only moves it must not change it. */
int where(void)
{
	return __LINE__;
}
