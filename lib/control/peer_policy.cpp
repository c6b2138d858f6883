// Who may use the control socket: the kernel's ptrace attach rules (peer_policy.hpp).
#include "peer_policy.hpp"

#include "atlas/error_util.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <string_view>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77 // Linux 6.5
#endif

namespace atlas::control
{

namespace
{

constexpr int cap_sys_ptrace = 19;

using detail::errno_text;
using detail::system_error;

bool read_small_file(const std::string &path, std::string &out, int &err)
{
	int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err = errno;
		return false;
	}
	out.clear();
	char buf[4096];
	for (;;) {
		ssize_t n = ::read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = errno;
			::close(fd);
			return false;
		}
		if (n == 0)
			break;
		out.append(buf, static_cast<std::size_t>(n));
	}
	::close(fd);
	return true;
}

// The value of "Key:" in a /proc status text, or empty.
std::string_view field(std::string_view status, std::string_view key)
{
	std::size_t pos = 0;
	while (pos < status.size()) {
		std::size_t end = status.find('\n', pos);
		if (end == std::string_view::npos)
			end = status.size();
		std::string_view line = status.substr(pos, end - pos);
		if (line.size() > key.size() && line.starts_with(key) && line[key.size()] == ':') {
			line.remove_prefix(key.size() + 1);
			while (!line.empty() && (line.front() == ' ' || line.front() == '\t'))
				line.remove_prefix(1);
			return line;
		}
		pos = end + 1;
	}
	return {};
}

bool parse_hex(std::string_view text, std::uint64_t &value)
{
	if (text.empty())
		return false;
	std::string s(text);
	char *end = nullptr;
	errno = 0;
	value = std::strtoull(s.c_str(), &end, 16);
	return errno == 0 && end && *end == '\0';
}

long long parse_int(std::string_view text)
{
	std::string s(text.substr(0, text.find_first_of(" \t")));
	char *end = nullptr;
	errno = 0;
	long long v = std::strtoll(s.c_str(), &end, 10);
	if (errno != 0 || s.empty() || !end || *end != '\0')
		return -1;
	return v;
}

std::string ids(const uid_t (&v)[3])
{
	return fmt::format("{}/{}/{}", v[0], v[1], v[2]);
}

// The same user namespace as this process: capabilities in /proc are relative to the peer's
// own namespace, so a peer in another one (a container's root) counts as without them. A
// process that may not inspect the peer's namespace (a peer more privileged than a process
// that dropped privileges) compares the id maps instead, which a namespace other than ours
// shows as ours only if a privileged process made it so.
bool same_user_ns(pid_t pid)
{
	struct stat mine, theirs;
	if (stat("/proc/self/ns/user", &mine) != 0)
		return true; // no user namespaces: there is only one
	if (stat(fmt::format("/proc/{}/ns/user", pid).c_str(), &theirs) == 0)
		return mine.st_dev == theirs.st_dev && mine.st_ino == theirs.st_ino;
	if (errno != EACCES && errno != EPERM)
		return false;
	for (const char *map : {"uid_map", "gid_map"}) {
		std::string a, b;
		int err = 0;
		if (!read_small_file(fmt::format("/proc/self/{}", map), a, err) ||
		    !read_small_file(fmt::format("/proc/{}/{}", pid, map), b, err) || a != b)
			return false;
	}
	return true;
}

// Whether `ancestor` is on the parent chain of this process (Yama's task_is_descendant).
bool is_ancestor(pid_t ancestor)
{
	pid_t p = getppid();
	for (int depth = 0; p > 0 && depth < 4096; depth++) {
		if (p == ancestor)
			return true;
		std::string status;
		int err = 0;
		if (!read_small_file(fmt::format("/proc/{}/status", p), status, err))
			return false;
		long long pp = parse_int(field(status, "PPid"));
		if (pp < 0 || pp == p)
			return false;
		p = static_cast<pid_t>(pp);
	}
	return false;
}

} // namespace

PeerDecision decide_peer(const PeerFacts &f)
{
	PeerDecision d;
	const bool cap = f.peer_cap_sys_ptrace;
	const std::string who =
	    fmt::format("the peer (pid {}, uid {}, gid {})", f.peer_pid, f.peer_uid, f.peer_gid);
	// A process may always attach to itself (same thread group).
	if (f.peer_is_self) {
		d.allowed = true;
		d.rule = "self";
		return d;
	}
	if (f.ptrace_scope < 0 || f.ptrace_scope > 3) {
		d.rule = "ptrace_scope";
		d.message = fmt::format(
		    "refused: kernel.yama.ptrace_scope could not be read or has an unknown value "
		    "({}), so the kernel's attach policy is unknown and nobody may load code here; "
		    "check /proc/sys/kernel/yama/ptrace_scope",
		    f.ptrace_scope);
		return d;
	}
	if (f.ptrace_scope == 3) {
		d.rule = "ptrace_scope";
		d.message =
		    "refused: kernel.yama.ptrace_scope is 3 (no attach): the kernel lets no "
		    "process attach to another, so nobody may load code here; the setting "
		    "holds until the next boot (boot with it at 2 or lower to patch)";
		return d;
	}
	if (f.ptrace_scope == 2 && !cap) {
		d.rule = "cap_sys_ptrace";
		d.message = fmt::format(
		    "refused: kernel.yama.ptrace_scope is 2 (admin-only): only a process with "
		    "CAP_SYS_PTRACE may load code here, and {} lacks it; run atlas as root",
		    who);
		return d;
	}
	if (!cap) {
		const bool uids =
		    f.peer_uid == f.uid[0] && f.peer_uid == f.uid[1] && f.peer_uid == f.uid[2];
		const bool gids =
		    f.peer_gid == f.gid[0] && f.peer_gid == f.gid[1] && f.peer_gid == f.gid[2];
		if (!uids || !gids) {
			d.rule = "uid";
			d.message = fmt::format(
			    "refused: {} is not this process's user (real/effective/saved uids {}, "
			    "gids {}) and lacks CAP_SYS_PTRACE, so the kernel would not let it "
			    "ptrace this process and it may not load code here; run atlas as uid "
			    "{} "
			    "(gid {}) or as root",
			    who, ids(f.uid), fmt::format("{}/{}/{}", f.gid[0], f.gid[1], f.gid[2]),
			    f.uid[1], f.gid[1]);
			return d;
		}
		if (!f.dumpable) {
			d.rule = "dumpable";
			d.message = fmt::format(
			    "refused: this process is not dumpable (it changed credentials, e.g. "
			    "dropped privileges with setuid, or called prctl(PR_SET_DUMPABLE, 0)), "
			    "so only a process with CAP_SYS_PTRACE may load code here, and {} "
			    "lacks it; run atlas as root",
			    who);
			return d;
		}
		if ((f.cap_permitted & ~f.peer_cap_permitted) != 0) {
			d.rule = "capabilities";
			d.message = fmt::format(
			    "refused: this process holds capabilities (CapPrm {:#x}) that {} does "
			    "not (CapPrm {:#x}), and it lacks CAP_SYS_PTRACE; run atlas as root",
			    f.cap_permitted, who, f.peer_cap_permitted);
			return d;
		}
		if (f.ptrace_scope == 1 && !f.peer_is_ancestor) {
			d.rule = "ancestor";
			d.message = fmt::format(
			    "refused: kernel.yama.ptrace_scope is 1 (restricted): only an ancestor "
			    "of this process or a process with CAP_SYS_PTRACE may load code here, "
			    "and {} is neither; run atlas as root, or from the process that "
			    "started "
			    "this program (e.g. its shell)",
			    who);
			return d;
		}
	}
	d.allowed = true;
	d.rule = cap ? "cap_sys_ptrace" : (f.ptrace_scope == 1 ? "ancestor" : "uid");
	return d;
}

Expected<int> read_ptrace_scope()
{
	std::string text;
	int err = 0;
	if (!read_small_file("/proc/sys/kernel/yama/ptrace_scope", text, err)) {
		if (err == ENOENT)
			return 0; // no Yama: the classic rules
		return system_error(
		    err, fmt::format("cannot read /proc/sys/kernel/yama/ptrace_scope: {}",
		                     errno_text(err)));
	}
	while (!text.empty() && (text.back() == '\n' || text.back() == ' '))
		text.pop_back();
	long long v = parse_int(text);
	if (v < 0 || v > 3)
		return make_error(
		    Errc::invalid_format,
		    fmt::format("/proc/sys/kernel/yama/ptrace_scope holds \"{}\", not 0-3", text));
	return static_cast<int>(v);
}

Expected<PeerFacts> probe_peer(int fd)
{
	PeerFacts f;
	ucred cred{};
	socklen_t len = sizeof(cred);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
		const int e = errno;
		return system_error(
		    e, fmt::format("refused: cannot read the peer's credentials (SO_PEERCRED): {}",
		                   errno_text(e)));
	}
	f.peer_pid = cred.pid;
	f.peer_uid = cred.uid;
	f.peer_gid = cred.gid;
	f.peer_is_self = cred.pid == getpid();
	if (getresuid(&f.uid[0], &f.uid[1], &f.uid[2]) != 0 ||
	    getresgid(&f.gid[0], &f.gid[1], &f.gid[2]) != 0) {
		const int e = errno;
		return system_error(
		    e, fmt::format("refused: cannot read this process's ids: {}", errno_text(e)));
	}
	f.dumpable = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 1;
	// Unreadable: -1, a scope decide_peer() refuses.
	const Expected<int> scope = read_ptrace_scope();
	f.ptrace_scope = scope ? *scope : -1;

	std::string self;
	int err = 0;
	if (!read_small_file("/proc/self/status", self, err) ||
	    !parse_hex(field(self, "CapPrm"), f.cap_permitted))
		return system_error(err ? err : EINVAL,
		                    fmt::format("refused: cannot read this process's capabilities "
		                                "from /proc/self/status: {}; is /proc mounted?",
		                                errno_text(err ? err : EINVAL)));
	if (f.peer_is_self)
		return f;

	// Pin the peer: with a pidfd, facts read while it is still alive are its own.
	int pidfd = -1;
	socklen_t pidfd_len = sizeof(pidfd);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &pidfd_len) != 0)
		pidfd = -1; // ENOPROTOOPT before Linux 6.5: SO_PEERCRED's pid alone
	auto gone = [&] {
		if (pidfd < 0)
			return false;
		pollfd p{pidfd, POLLIN, 0};
		return poll(&p, 1, 0) > 0 && (p.revents & (POLLIN | POLLHUP)) != 0;
	};
	auto fail = [&](std::string message, int e = 0) -> Error {
		if (pidfd >= 0)
			::close(pidfd);
		return system_error(e, std::move(message), e ? Errc::system : Errc::refused);
	};
	if (gone())
		return fail(fmt::format("refused: the peer (pid {}) exited before its credentials "
		                        "could be checked",
		                        cred.pid));
	std::string peer;
	if (!read_small_file(fmt::format("/proc/{}/status", cred.pid), peer, err))
		return fail(fmt::format("refused: cannot read /proc/{}/status for the peer's "
		                        "capabilities: {}; if /proc is mounted with hidepid, run "
		                        "atlas as root",
		                        cred.pid, errno_text(err)),
		            err);
	std::uint64_t eff = 0;
	if (!parse_hex(field(peer, "CapEff"), eff) ||
	    !parse_hex(field(peer, "CapPrm"), f.peer_cap_permitted))
		return fail(fmt::format("refused: /proc/{}/status has no readable CapEff/CapPrm "
		                        "line",
		                        cred.pid));
	const bool same_ns = same_user_ns(cred.pid);
	f.peer_cap_sys_ptrace = same_ns && (eff >> cap_sys_ptrace & 1) != 0;
	if (!same_ns)
		f.peer_cap_permitted = 0;
	f.peer_is_ancestor = is_ancestor(cred.pid);
	if (gone())
		return fail(fmt::format("refused: the peer (pid {}) exited while its credentials "
		                        "were checked; its pid may have been reused",
		                        cred.pid));
	if (pidfd >= 0)
		::close(pidfd);
	return f;
}

} // namespace atlas::control
