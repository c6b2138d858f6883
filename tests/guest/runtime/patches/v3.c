/* Patch B of guest.wait_free, stacked on A: code_version() returns 3. */
int code_version(int salt)
{
	return 3 + salt * 0;
}
