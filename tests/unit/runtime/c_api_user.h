#ifndef ATLAS_TESTS_C_API_USER_H
#define ATLAS_TESTS_C_API_USER_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Registers two C workers, applies, re-applies, reverts and fails a change through the C API
 * of an initialised runtime. 0 on success, else -1 with a reason in @failure. */
int c_api_scenario(char *failure, size_t failure_size);

#ifdef __cplusplus
}
#endif

#endif
