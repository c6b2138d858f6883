/* Compiled as strict C99: proves atlas/mmview.h is usable from C servers and kernel tests. */
#include "mmview_c_abi.h"

long c_mmview_call(int which, long a, long b)
{
	switch (which) {
	case MMVIEW_CREATE:
		return mmview_create();
	case MMVIEW_DELETE:
		return mmview_delete(a);
	case MMVIEW_CURRENT:
		return mmview_current();
	case MMVIEW_MIGRATE:
		return mmview_migrate(a);
	case MMVIEW_UNSHARE:
		return mmview_unshare((void *)a, (size_t)b);
	case MMVIEW_SHARE:
		return mmview_share((void *)a, (size_t)b);
	case MMVIEW_SWITCH_BASE:
		return mmview_switch_base();
	}
	return -2;
}
