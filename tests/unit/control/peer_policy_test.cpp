// The peer policy as a pure function: one test per rule of the kernel's ptrace attach policy
// (Yama's ptrace_scope 0-3, CAP_SYS_PTRACE, uids/gids, dumpability, capabilities, ancestry).
#include <peer_policy.hpp>

#include <fstream>
#include <gtest/gtest.h>
#include <unistd.h>

using atlas::control::decide_peer;
using atlas::control::PeerFacts;

namespace
{

// This process runs as uid/gid 1000, dumpable, without capabilities; the peer is the same
// user, not an ancestor, without capabilities.
PeerFacts same_user(int scope)
{
	PeerFacts f;
	f.ptrace_scope = scope;
	f.peer_pid = 4242;
	f.peer_uid = 1000;
	f.peer_gid = 1000;
	for (int i = 0; i < 3; i++) {
		f.uid[i] = 1000;
		f.gid[i] = 1000;
	}
	return f;
}

PeerFacts root_peer(int scope)
{
	PeerFacts f = same_user(scope);
	f.peer_uid = 0;
	f.peer_gid = 0;
	f.peer_cap_sys_ptrace = true;
	f.peer_cap_permitted = 0x1ffffffffff;
	return f;
}

void expect_refused(const PeerFacts &f, const std::string &rule, const std::string &text)
{
	auto d = decide_peer(f);
	EXPECT_FALSE(d.allowed);
	EXPECT_EQ(d.rule, rule);
	EXPECT_NE(d.message.find(text), std::string::npos) << d.message;
	EXPECT_EQ(d.message.rfind("refused: ", 0), 0u) << d.message;
}

} // namespace

TEST(PeerPolicy, Scope0SameUserAllowed)
{
	auto d = decide_peer(same_user(0));
	EXPECT_TRUE(d.allowed) << d.message;
	EXPECT_EQ(d.rule, "uid");
}

TEST(PeerPolicy, Scope0OtherUserRefused)
{
	auto f = same_user(0);
	f.peer_uid = 1001;
	expect_refused(f, "uid", "run atlas as uid 1000");
	f = same_user(0);
	f.peer_gid = 1001;
	expect_refused(f, "uid", "lacks CAP_SYS_PTRACE");
}

TEST(PeerPolicy, Scope0EveryUidAndGidMustMatch)
{
	// A setuid program keeps another saved uid: the kernel refuses its real user.
	for (int i = 0; i < 3; i++) {
		auto f = same_user(0);
		f.uid[i] = 0;
		expect_refused(f, "uid", "real/effective/saved uids");
		f = same_user(0);
		f.gid[i] = 0;
		expect_refused(f, "uid", "gids");
	}
}

TEST(PeerPolicy, Scope0CapSysPtraceAllowsAnyUser)
{
	auto d = decide_peer(root_peer(0));
	EXPECT_TRUE(d.allowed) << d.message;
	EXPECT_EQ(d.rule, "cap_sys_ptrace");
	// Even root without CAP_SYS_PTRACE (dropped with capsh) is only its uid.
	auto f = root_peer(0);
	f.peer_cap_sys_ptrace = false;
	expect_refused(f, "uid", "uid 0");
}

TEST(PeerPolicy, NotDumpableNeedsCapSysPtrace)
{
	auto f = same_user(0);
	f.dumpable = false;
	expect_refused(f, "dumpable", "not dumpable");
	f = root_peer(0);
	f.dumpable = false;
	EXPECT_TRUE(decide_peer(f).allowed);
}

TEST(PeerPolicy, ProcessCapabilitiesMustBeCovered)
{
	auto f = same_user(0);
	f.cap_permitted = 1u << 10; // CAP_NET_BIND_SERVICE
	expect_refused(f, "capabilities", "CapPrm 0x400");
	f.peer_cap_permitted = 1u << 10;
	EXPECT_TRUE(decide_peer(f).allowed);
	f = root_peer(0);
	f.cap_permitted = ~0ull;
	EXPECT_TRUE(decide_peer(f).allowed);
}

TEST(PeerPolicy, Scope1NeedsAncestorOrCapSysPtrace)
{
	auto f = same_user(1);
	expect_refused(f, "ancestor", "ptrace_scope is 1");
	f.peer_is_ancestor = true;
	auto d = decide_peer(f);
	EXPECT_TRUE(d.allowed) << d.message;
	EXPECT_EQ(d.rule, "ancestor");
	// An ancestor must still pass rule 0.
	f.peer_uid = 1001;
	expect_refused(f, "uid", "run atlas as uid 1000");
	f = same_user(1);
	f.peer_is_ancestor = true;
	f.dumpable = false;
	expect_refused(f, "dumpable", "not dumpable");
	EXPECT_TRUE(decide_peer(root_peer(1)).allowed);
}

TEST(PeerPolicy, Scope2AdminOnly)
{
	auto f = same_user(2);
	f.peer_is_ancestor = true;
	expect_refused(f, "cap_sys_ptrace",
	               "ptrace_scope is 2 (admin-only): only a process "
	               "with CAP_SYS_PTRACE may load code here");
	auto d = decide_peer(root_peer(2));
	EXPECT_TRUE(d.allowed) << d.message;
}

TEST(PeerPolicy, Scope3Nobody)
{
	expect_refused(root_peer(3), "ptrace_scope", "ptrace_scope is 3");
	expect_refused(same_user(3), "ptrace_scope", "until the next boot");
}

TEST(PeerPolicy, UnknownScopeRefused)
{
	expect_refused(root_peer(-1), "ptrace_scope", "could not be read");
	expect_refused(root_peer(4), "ptrace_scope", "unknown value (4)");
}

TEST(PeerPolicy, SelfAlwaysAllowed)
{
	auto f = same_user(3);
	f.peer_is_self = true;
	f.peer_uid = 5;
	EXPECT_TRUE(decide_peer(f).allowed);
}

TEST(PeerPolicy, ReadsTheMachinesScope)
{
	const auto read_scope = atlas::control::read_ptrace_scope();
	const int scope = read_scope ? *read_scope : -1;
	std::ifstream in("/proc/sys/kernel/yama/ptrace_scope");
	int expect = 0;
	if (in)
		in >> expect;
	EXPECT_EQ(scope, expect) << (read_scope ? "" : read_scope.error().message);
}
