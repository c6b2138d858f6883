/* A second fix of real_target.c's answer(), stacked on real_fix.c: real_fix_calls resolves in
 * the earlier patch. Bound to the applied instance of real-fix (whose answer() ran) it returns
 * x + 3; bound to a copy of real-fix that was loaded but never applied, x + 30. */
extern volatile int answer_calls;
extern int real_fix_calls;

int answer(int x)
{
	answer_calls++;
	return real_fix_calls > 0 ? x + 3 : x + 30;
}
