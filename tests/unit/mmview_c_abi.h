#ifndef ATLAS_TESTS_MMVIEW_C_ABI_H
#define ATLAS_TESTS_MMVIEW_C_ABI_H
#include <atlas/mmview.h>
#ifdef __cplusplus
extern "C" {
#endif
/* Calls the wrapper for operation @which from C, passing @a and @b where it takes arguments. */
long c_mmview_call(int which, long a, long b);
#ifdef __cplusplus
}
#endif
#endif
