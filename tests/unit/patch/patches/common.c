// Not a valid patch when compiled with -fcommon: `shared` becomes a common symbol.
int shared;

int process(int x)
{
	return x + shared;
}
