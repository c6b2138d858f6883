/*
 * The kernel's uapi header (kernel/src/include/uapi/linux/mmview.h) and the user-space header
 * (atlas/mmview.h) define the same MMVIEW_* macros. Including both is legal only if every
 * value agrees: a redefinition with another value is a warning, an error under -Werror, so a
 * divergence fails the build.
 */
#include <linux/mmview.h> /* resolved to kernel/src/include/uapi first, see CMakeLists.txt */

#include <atlas/mmview.h>

_Static_assert(MMVIEW_CREATE == 0 && MMVIEW_DELETE == 1 && MMVIEW_CURRENT == 2 &&
                   MMVIEW_MIGRATE == 3 && MMVIEW_UNSHARE == 4 && MMVIEW_SHARE == 5 &&
                   MMVIEW_SWITCH_BASE == 6,
               "op codes of docs/mmview.2");
