/* The fix of real_target.c's answer(). */
extern volatile int answer_calls;

int answer(int x)
{
	answer_calls++;
	return x + 2;
}
