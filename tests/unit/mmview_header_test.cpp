// The wrappers of atlas/mmview.h must pass syscall 1000 the op code and arguments of the ABI
// (docs/mmview.2). No views kernel is needed to check that: a child process installs
// a seccomp filter that fails syscall 1000 with an errno carrying one argument's low bits, and
// everything else is allowed. A wrapper using the wrong number would reach the real kernel and
// get ENOSYS instead.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstddef>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mmview_c_abi.h"

namespace
{

// errno returned by the filter: 1 + the low 11 bits of argument `arg` (0 would mean success).
constexpr unsigned kEchoMask = 0x7ff;

void install_echo_filter(unsigned arg)
{
	const unsigned arg_low = offsetof(struct seccomp_data, args) + arg * sizeof(__u64);
	struct sock_filter insns[] = {
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_mmview, 1, 0),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, arg_low), // x86-64 is little-endian
	    BPF_STMT(BPF_ALU | BPF_AND | BPF_K, kEchoMask),
	    BPF_STMT(BPF_ALU | BPF_ADD | BPF_K, 1),
	    BPF_STMT(BPF_ALU | BPF_OR | BPF_K, SECCOMP_RET_ERRNO),
	    BPF_STMT(BPF_RET | BPF_A, 0),
	};
	struct sock_fprog prog = {static_cast<unsigned short>(sizeof(insns) / sizeof(insns[0])),
	                          insns};
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
		_exit(100);
}

using Caller = long (*)(int op, long a, long b);

long cxx_call(int op, long a, long b)
{
	switch (op) {
	case MMVIEW_CREATE:
		return mmview_create();
	case MMVIEW_DELETE:
		return mmview_delete(a);
	case MMVIEW_CURRENT:
		return mmview_current();
	case MMVIEW_MIGRATE:
		return mmview_migrate(a);
	case MMVIEW_UNSHARE:
		return mmview_unshare(reinterpret_cast<void *>(a), static_cast<size_t>(b));
	case MMVIEW_SHARE:
		return mmview_share(reinterpret_cast<void *>(a), static_cast<size_t>(b));
	case MMVIEW_SWITCH_BASE:
		return mmview_switch_base();
	}
	return -2;
}

// Runs caller(op, a, b) in a child under the echo filter for argument `arg`; returns the value
// the filter saw in that argument (its low 11 bits), or -1 if the call did not fail as expected.
long seen_argument(Caller caller, int op, long a, long b, unsigned arg)
{
	int fds[2];
	if (pipe(fds) != 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		close(fds[0]);
		install_echo_filter(arg);
		errno = 0;
		long ret = caller(op, a, b);
		long seen = (ret == -1 && errno > 0) ? errno - 1 : -1;
		(void)!write(fds[1], &seen, sizeof(seen));
		_exit(0);
	}
	close(fds[1]);
	long seen = -1;
	if (read(fds[0], &seen, sizeof(seen)) != static_cast<ssize_t>(sizeof(seen)))
		seen = -1;
	close(fds[0]);
	int status = 0;
	waitpid(pid, &status, 0);
	return (WIFEXITED(status) && WEXITSTATUS(status) == 0) ? seen : -1;
}

struct OpCase {
	const char *name;
	int op;
	int expected_value; // the ABI value of the op (design table)
	int args;           // arguments after the op
};

constexpr OpCase kOps[] = {
    {"create", MMVIEW_CREATE, 0, 0},           {"delete", MMVIEW_DELETE, 1, 1},
    {"current", MMVIEW_CURRENT, 2, 0},         {"migrate", MMVIEW_MIGRATE, 3, 1},
    {"unshare", MMVIEW_UNSHARE, 4, 2},         {"share", MMVIEW_SHARE, 5, 2},
    {"switch_base", MMVIEW_SWITCH_BASE, 6, 0},
};

constexpr long kArgA = 0x321; // an id or an address (fits the echo mask)
constexpr long kArgB = 0x456; // a length

void check_all_ops(Caller caller)
{
	for (const OpCase &c : kOps) {
		SCOPED_TRACE(c.name);
		EXPECT_EQ(c.op, c.expected_value);
		EXPECT_EQ(seen_argument(caller, c.op, kArgA, kArgB, 0), c.expected_value);
		if (c.args >= 1) {
			EXPECT_EQ(seen_argument(caller, c.op, kArgA, kArgB, 1), kArgA);
		}
		if (c.args >= 2) {
			EXPECT_EQ(seen_argument(caller, c.op, kArgA, kArgB, 2), kArgB);
		}
	}
}

TEST(MmviewHeader, SyscallNumberIs1000)
{
	EXPECT_EQ(__NR_mmview, 1000);
}

TEST(MmviewHeader, CxxWrappersPassOpAndArguments)
{
	check_all_ops(cxx_call);
}

TEST(MmviewHeader, CWrappersPassOpAndArguments)
{
	check_all_ops(c_mmview_call);
}

TEST(MmviewHeader, EchoFilterDetectsAWrongSyscallNumber)
{
	// The method's own check: a call on another number is not answered by the filter.
	Caller wrong = [](int op, long, long) {
		return syscall(__NR_mmview + 1, static_cast<long>(op));
	};
	EXPECT_EQ(seen_argument(wrong, MMVIEW_CURRENT, 0, 0, 0), ENOSYS - 1);
}

} // namespace
