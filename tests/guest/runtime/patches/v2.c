/* Patch A of guest.wait_free: code_version() returns 2. */
int code_version(int salt)
{
	return 2 + salt * 0;
}
