// What /proc and the dynamic loader say about this process (proc.hpp).
#include "proc.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <iterator>
#include <link.h>
#include <unistd.h>

namespace atlas::detail
{

namespace
{

// A small file of /proc whole (up to 255 bytes), without its final newline; empty on error.
std::string read_small_file(const std::string &path)
{
	char buf[256];
	const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return {};
	const ssize_t n = ::read(fd, buf, sizeof(buf) - 1);
	::close(fd);
	if (n <= 0)
		return {};
	std::string text(buf, static_cast<std::size_t>(n));
	if (!text.empty() && text.back() == '\n')
		text.pop_back();
	return text;
}

// x86-64 numbers of the system calls a lagging thread is most often found in.
struct SyscallName {
	long nr;
	const char *name;
};
constexpr SyscallName syscall_names[] = {
    {0, "read"},
    {1, "write"},
    {7, "poll"},
    {17, "pread64"},
    {18, "pwrite64"},
    {19, "readv"},
    {20, "writev"},
    {23, "select"},
    {34, "pause"},
    {35, "nanosleep"},
    {42, "connect"},
    {43, "accept"},
    {44, "sendto"},
    {45, "recvfrom"},
    {46, "sendmsg"},
    {47, "recvmsg"},
    {61, "wait4"},
    {65, "semop"},
    {70, "msgrcv"},
    {72, "fcntl"},
    {73, "flock"},
    {128, "rt_sigtimedwait"},
    {130, "rt_sigsuspend"},
    {202, "futex"},
    {220, "semtimedop"},
    {230, "clock_nanosleep"},
    {232, "epoll_wait"},
    {247, "waitid"},
    {270, "pselect6"},
    {271, "ppoll"},
    {281, "epoll_pwait"},
    {288, "accept4"},
    {426, "io_uring_enter"},
    {441, "epoll_pwait2"},
};

const char *syscall_name(long nr)
{
	auto it = std::find_if(std::begin(syscall_names), std::end(syscall_names),
	                       [&](const SyscallName &s) { return s.nr == nr; });
	return it == std::end(syscall_names) ? nullptr : it->name;
}

} // namespace

std::string thread_comm(pid_t tid)
{
	return read_small_file(fmt::format("/proc/self/task/{}/comm", tid));
}

std::optional<std::vector<pid_t>> task_ids()
{
	DIR *dir = opendir("/proc/self/task");
	if (!dir)
		return std::nullopt;
	std::vector<pid_t> tids;
	while (struct dirent *entry = readdir(dir)) {
		char *end = nullptr;
		long tid = std::strtol(entry->d_name, &end, 10);
		if (end != entry->d_name && *end == '\0' && tid > 0)
			tids.push_back(static_cast<pid_t>(tid));
	}
	closedir(dir);
	return tids;
}

std::vector<std::pair<std::string, std::uintptr_t>> loaded_objects() noexcept
{
	std::vector<std::pair<std::string, std::uintptr_t>> out;
	try {
		dl_iterate_phdr(
		    [](struct dl_phdr_info *info, size_t, void *data) {
			    auto *list =
			        static_cast<std::vector<std::pair<std::string, std::uintptr_t>> *>(
			            data);
			    try {
				    list->emplace_back(
				        info->dlpi_name ? info->dlpi_name : "",
				        static_cast<std::uintptr_t>(info->dlpi_addr));
			    } catch (...) {
				    return 1;
			    }
			    return 0;
		    },
		    &out);
	} catch (...) {
	}
	std::sort(out.begin(), out.end());
	return out;
}

std::string kernel_state_of(pid_t tid)
{
	const std::string dir = fmt::format("/proc/self/task/{}/", tid);
	const std::string syscall = read_small_file(dir + "syscall");
	const std::string wchan = read_small_file(dir + "wchan");
	const std::string waiting =
	    wchan.empty() || wchan == "0" ? std::string() : ", waiting in " + wchan;
	if (syscall == "running")
		return "running user code";
	if (syscall.empty())
		return waiting.empty() ? std::string() : waiting.substr(2);
	char *end = nullptr;
	const long nr = std::strtol(syscall.c_str(), &end, 10);
	if (end == syscall.c_str())
		return {};
	if (nr < 0) // blocked, but not in a system call (a page fault, for instance)
		return "in the kernel, not in a system call" + waiting;
	const char *name = syscall_name(nr);
	return (name ? fmt::format("in {}", name) : fmt::format("in system call {}", nr)) + waiting;
}

} // namespace atlas::detail
