/* A shared library the runtime tests dlopen while a wait-free transition has two views. */
int atlas_dlopen_probe(void);
int atlas_dlopen_probe(void)
{
	return 42;
}
