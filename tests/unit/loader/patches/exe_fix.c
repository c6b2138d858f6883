// SPDX-License-Identifier: MIT
// Patch of exe_target.c (in the PIE test executable): libc from a patch placed near the
// executable (stubs and GOT slots bridge the distance), extern data, initial-exec and
// local-exec TLS.
#include <stdio.h>
#include <string.h>

extern int exe_data;
extern __thread int exe_tls __attribute__((tls_model("initial-exec")));
extern __thread int exe_tls2 __attribute__((tls_model("local-exec")));

int exe_add(int a, int b)
{
	return a + b + exe_data * 100;
}

unsigned long exe_len(const char *s)
{
	// stderr: libc's datum (or the executable's copy of it) through a GOT slot.
	return strlen(s) * 2 + exe_data + (stderr ? 0 : 1000);
}

int exe_tls_bump(void)
{
	exe_tls2 += 100;
	exe_tls += 10;
	return exe_tls;
}
