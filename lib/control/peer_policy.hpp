// atlas/control: who may use the control socket (docs/live-patching.md, "Control socket").
//
// The socket loads code into the process, which is what a ptrace attach allows: a peer is
// served exactly when the kernel would let it attach (PTRACE_MODE_ATTACH_REALCREDS) under
// Yama's kernel.yama.ptrace_scope. The decision is a pure function of facts read from /proc
// (decide_peer), so each rule is tested without changing the machine's sysctls.
#ifndef ATLAS_CONTROL_PEER_POLICY_HPP
#define ATLAS_CONTROL_PEER_POLICY_HPP

#include <atlas/error.hpp>

#include <cstdint>
#include <string>
#include <sys/types.h>

namespace atlas::control
{

// What decide_peer looks at: the peer (the connected process) and this process.
struct PeerFacts {
	int ptrace_scope = 0; // Yama: 0 classic, 1 restricted, 2 admin-only, 3 no attach;
	                      // anything else: unknown (refused)
	pid_t peer_pid = 0;
	uid_t peer_uid = 0; // SO_PEERCRED: the peer's effective ids when it connected
	gid_t peer_gid = 0;
	bool peer_is_self = false;            // the peer is this process (a thread of it)
	bool peer_cap_sys_ptrace = false;     // CapEff bit 19 in this process's user namespace
	std::uint64_t peer_cap_permitted = 0; // CapPrm
	bool peer_is_ancestor = false;        // on this process's parent chain
	uid_t uid[3] = {0, 0, 0};             // this process: real, effective, saved
	gid_t gid[3] = {0, 0, 0};
	std::uint64_t cap_permitted = 0; // this process's CapPrm
	bool dumpable = true;            // prctl(PR_GET_DUMPABLE) == 1
};

struct PeerDecision {
	bool allowed = false;
	std::string rule;    // which rule decided: self, ptrace_scope, uid, dumpable, capabilities,
	                     // ancestor, cap_sys_ptrace
	std::string message; // for a refusal: what refused and what to do
};

// The kernel's rules (kernel/ptrace.c __ptrace_may_access, security/commoncap.c, Yama).
PeerDecision decide_peer(const PeerFacts &facts);

// /proc/sys/kernel/yama/ptrace_scope; a missing file (no Yama) is 0. An error when it cannot
// be read (Errc::system) or holds something else than 0-3 (Errc::invalid_format).
Expected<int> read_ptrace_scope();

// Fills `facts` for the peer of the connected socket `fd`, and this process. The peer is
// pinned with SO_PEERPIDFD where the kernel has it (Linux 6.5+): facts read from /proc are
// only used if the peer was still alive after reading them, so a reused pid cannot lend its
// capabilities. Older kernels fall back to SO_PEERCRED's pid (a window: the peer exits and
// its pid is reused by a privileged process between connect and this check).
Expected<PeerFacts> probe_peer(int fd);

} // namespace atlas::control

#endif
