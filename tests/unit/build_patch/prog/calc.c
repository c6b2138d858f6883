/* Arithmetic of the test program: a global with an initial value, a static function, a
 * switch dispatched through a jump table, one turned into a lookup table, and a static
 * function gcc clones (constant propagation) because every caller passes the same factor. */
#include "prog.h"

int calc_limit = 10;

__attribute__((noinline)) static int scale(int x)
{
	return x * 2 + 1;
}

/* Cases that compute: gcc dispatches them through a jump table. */
int classify(int x)
{
	switch (x) {
	case 0:
		return calc_limit + 11;
	case 1:
		return calc_limit * 3;
	case 2:
		return calc_limit - 7;
	case 3:
		return calc_limit * calc_limit;
	case 4:
		return calc_limit << 2;
	case 5:
		return calc_limit / 3;
	case 6:
		return calc_limit ^ 0x55;
	default:
		return -1;
	}
}

/* Constant cases: gcc turns them into a lookup table (a read-only datum, CSWTCH.N). */
int grade(int x)
{
	switch (x) {
	case 0:
		return 11;
	case 1:
		return 23;
	case 2:
		return 37;
	case 3:
		return 41;
	case 4:
		return 59;
	case 5:
		return 61;
	case 6:
		return 73;
	default:
		return -1;
	}
}

int compute(int x)
{
	if (x > calc_limit)
		return 0;
	return scale(x) + classify(x);
}

__attribute__((noinline)) static int weigh(int x, int factor)
{
	return x * factor + (x >> 1);
}

int heavy(int x)
{
	return weigh(x, 9) + weigh(x + 1, 9);
}
