/* The fix of real_target.c's answer(). real_fix_calls is this patch's own datum: a patch stacked
 * on it (real_stack.c) binds to the instance that is applied. */
extern volatile int answer_calls;
int real_fix_calls;

int answer(int x)
{
	answer_calls++;
	real_fix_calls++;
	return x + 2;
}
