// SPDX-License-Identifier: MIT
/*
 * NUMA memory policies in a process with views (docs/kernel.md, "Replays"): the
 * guest has two nodes (guest/run --numa 2, one vCPU each). mbind() and
 * set_mempolicy_home_node() are replayed: a policy set from any view is the policy of that
 * range in every view, VMA splits included, and pages faulted from any view are placed by it.
 * Errors are the same in every view. MPOL_MF_MOVE from the base moves the pages every view
 * maps.
 *
 * Each case runs in a child process of its own (views_case.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/mempolicy.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atlas/mmview.h>

#include "views_case.h"

#define NPAGES 8
#define MAXNODE 64

static long mbind_nodes(void *addr, size_t len, int mode, unsigned long nodes, unsigned flags)
{
	return syscall(SYS_mbind, addr, len, mode, &nodes, MAXNODE, flags);
}

static long set_home_node(void *addr, size_t len, unsigned long node)
{
	return syscall(__NR_set_mempolicy_home_node, addr, len, node, 0);
}

/* The policy of the calling thread's view at @addr: mode, and nodes in *@nodes. */
static int policy_at(void *addr, unsigned long *nodes)
{
	int mode = -1;

	*nodes = 0;
	if (syscall(SYS_get_mempolicy, &mode, nodes, MAXNODE, addr, MPOL_F_ADDR))
		return -1;
	return mode;
}

/* The node of the page at @addr (faulting it in, as get_mempolicy() does); -1 on error. */
static int node_of(void *addr)
{
	int node = -1;

	if (syscall(SYS_get_mempolicy, &node, NULL, 0, addr, MPOL_F_NODE | MPOL_F_ADDR))
		return -1;
	return node;
}

static bool run_on_cpu(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set) == 0;
}

static bool two_nodes(void)
{
	int mode;
	unsigned long allowed = 0;

	if (syscall(SYS_get_mempolicy, &mode, &allowed, MAXNODE, NULL, MPOL_F_MEMS_ALLOWED)) {
		EXPECT(false, "get_mempolicy(MPOL_F_MEMS_ALLOWED): %s", strerror(errno));
		return false;
	}
	EXPECT(allowed == 3, "the guest has nodes 0 and 1 (allowed mask %#lx)", allowed);
	return allowed == 3;
}

/*
 * From view 1, bind the middle of a range to node 1: every view has the policy, on the same
 * split VMAs, and pages faulted from view 2 and from the base land on node 1.
 */
static void case_mbind_in_every_view(void)
{
	long ids[3], r;
	char *p = map_anon(NPAGES);
	unsigned long nodes;
	int v, i, mode;

	if (!two_nodes() || !p || !create_views(ids, 3))
		return;
	mmview_migrate(ids[1]);
	r = mbind_nodes(p + 2 * page, 4 * page, MPOL_BIND, 1UL << 1, 0);
	mmview_migrate(0);
	EXPECT(r == 0, "mbind(MPOL_BIND, node 1) from view 1 (got %s)", err_name(r));
	for (v = 0; v < 3; v++) {
		mmview_migrate(ids[v]);
		mode = policy_at(p + 3 * page, &nodes);
		EXPECT(mode == MPOL_BIND && nodes == 2,
		       "view %ld: bind to node 1 (mode %d, nodes %#lx)", ids[v], mode, nodes);
		mode = policy_at(p, &nodes);
		EXPECT(mode == MPOL_DEFAULT,
		       "view %ld: the range's first page keeps the default (%d)", ids[v], mode);
		EXPECT(vmas_in(p, NPAGES * page) == 3, "view %ld: 3 VMAs after the split (got %d)",
		       ids[v], vmas_in(p, NPAGES * page));
	}
	/* Faults: pages 2-3 from view 2, pages 4-5 from the base; both on node 1. */
	for (i = 2; i < 6; i++) {
		mmview_migrate(i < 4 ? ids[2] : 0);
		p[i * page] = 1;
		EXPECT(node_of(p + i * page) == 1,
		       "page %d (faulted from view %ld) is on node 1 (%d)", i, i < 4 ? ids[2] : 0L,
		       node_of(p + i * page));
	}
	mmview_migrate(0);
}

/* An mbind() that fails fails the same in every view and changes none. */
static void case_mbind_errors(void)
{
	long ids[2], r;
	char *p = map_anon(NPAGES);
	unsigned long nodes;
	int v, mode;

	if (!two_nodes() || !p || !create_views(ids, 2))
		return;
	munmap(p + 4 * page, page);
	mmview_migrate(ids[1]);
	r = mbind_nodes(p, NPAGES * page, MPOL_BIND, 1UL << 1, 0);
	EXPECT(fails_with(r, EFAULT), "mbind over a hole fails EFAULT (got %s)", err_name(r));
	r = set_home_node(p, 4 * page, 1);
	EXPECT(fails_with(r, ENOENT), "home node without a policy fails ENOENT (got %s)",
	       err_name(r));
	r = mbind_nodes(p, 2 * page, MPOL_INTERLEAVE, 3, 0);
	EXPECT(r == 0, "mbind(MPOL_INTERLEAVE) (got %s)", err_name(r));
	r = set_home_node(p, 2 * page, 1);
	EXPECT(fails_with(r, EOPNOTSUPP), "home node on interleave fails EOPNOTSUPP (got %s)",
	       err_name(r));
	mmview_migrate(0);
	for (v = 0; v < 2; v++) {
		mmview_migrate(ids[v]);
		mode = policy_at(p + 5 * page, &nodes);
		EXPECT(mode == MPOL_DEFAULT, "view %ld: the failed mbind changed nothing (mode %d)",
		       ids[v], mode);
		mode = policy_at(p, &nodes);
		EXPECT(mode == MPOL_INTERLEAVE && nodes == 3,
		       "view %ld: interleave on 0-1 (%d, %#lx)", ids[v], mode, nodes);
	}
	mmview_migrate(0);
}

/*
 * A home node set from view 2 on a range bound to both nodes decides placement for faults
 * from view 1 on node 0's CPU; a range without a home node gets the local node 0.
 */
static void case_home_node(void)
{
	long ids[3], r;
	char *p = map_anon(NPAGES);
	int i;

	if (!two_nodes() || !p || !create_views(ids, 3))
		return;
	r = mbind_nodes(p, NPAGES * page, MPOL_BIND, 3, 0);
	EXPECT(r == 0, "mbind(MPOL_BIND, nodes 0-1) (got %s)", err_name(r));
	mmview_migrate(ids[2]);
	r = set_home_node(p + 4 * page, 4 * page, 1);
	EXPECT(r == 0, "set_mempolicy_home_node(1) from view 2 (got %s)", err_name(r));
	mmview_migrate(ids[1]);
	EXPECT(run_on_cpu(0), "pinned to CPU 0 (node 0)");
	for (i = 0; i < NPAGES; i++) {
		int want = i < 4 ? 0 : 1;

		p[i * page] = 1;
		EXPECT(node_of(p + i * page) == want, "page %d is on node %d (got %d)", i, want,
		       node_of(p + i * page));
	}
	mmview_migrate(0);
}

/*
 * MPOL_MF_MOVE from the base migrates the base's pages, which views mirror: view 1 then maps
 * the moved pages (same PFN as the base, on the new node).
 */
static void case_move_from_the_base(void)
{
	long ids[2], r;
	char *p = map_anon(NPAGES);
	uint64_t base_pfn[NPAGES];
	int i;

	if (!two_nodes() || !p)
		return;
	r = mbind_nodes(p, NPAGES * page, MPOL_BIND, 1UL << 0, 0);
	EXPECT(r == 0, "mbind(MPOL_BIND, node 0) (got %s)", err_name(r));
	memset(p, 7, NPAGES * page);
	if (!create_views(ids, 2))
		return;
	mmview_migrate(ids[1]);
	for (i = 0; i < NPAGES; i++)
		EXPECT(node_of(p + i * page) == 0, "before: page %d on node 0", i);
	mmview_migrate(0);
	r = mbind_nodes(p, NPAGES * page, MPOL_BIND, 1UL << 1, MPOL_MF_MOVE | MPOL_MF_STRICT);
	EXPECT(r == 0, "mbind(MPOL_BIND, node 1, MOVE|STRICT) from the base (got %s)", err_name(r));
	for (i = 0; i < NPAGES; i++)
		base_pfn[i] = pfn_of(p + i * page);
	mmview_migrate(ids[1]);
	for (i = 0; i < NPAGES; i++) {
		EXPECT(node_of(p + i * page) == 1, "after: page %d on node 1 in view 1 (got %d)", i,
		       node_of(p + i * page));
		EXPECT(p[i * page] == 7 && pfn_of(p + i * page) == base_pfn[i],
		       "view 1 maps the base's moved page %d", i);
	}
	mmview_migrate(0);
}

int main(void)
{
	page = sysconf(_SC_PAGESIZE);
	setvbuf(stdout, NULL, _IOLBF, 0);
	tap_plan(4);
	run_case("mbind from a view: the policy and its VMA split in every view, faults obey it",
	         case_mbind_in_every_view);
	run_case(
	    "mbind and set_mempolicy_home_node errors: the same in every view, nothing changed",
	    case_mbind_errors);
	run_case("set_mempolicy_home_node from a view: faults from another view obey it",
	         case_home_node);
	run_case("mbind MPOL_MF_MOVE from the base: views map the moved pages",
	         case_move_from_the_base);
	return tap_finish();
}
