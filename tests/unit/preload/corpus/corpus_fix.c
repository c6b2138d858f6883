/* The patch every corpus server gets: reply_for(n) answers 3n instead of 2n. */
long reply_for(long n)
{
	return 3 * n;
}
