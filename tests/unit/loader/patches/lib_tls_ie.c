// SPDX-License-Identifier: MIT
// Refused: initial-exec access to the TLS of a dlopen'ed library, whose block is allocated
// dynamically (no fixed offset from the thread pointer).
extern __thread int lib_tls __attribute__((tls_model("initial-exec")));

int lib_tls_bump(void)
{
	return lib_tls += 1000;
}
