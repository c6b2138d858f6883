// Not a valid patch when compiled with -fno-pic: the address of `value` becomes an
// R_X86_64_32 absolute relocation (refused: compile with -fPIC).
int value;

int *process(void)
{
	return &value;
}
