// Not a valid patch: defines a new TLS variable (refused by the format).
__thread int fresh;

int process(int x)
{
	return x + fresh++;
}
