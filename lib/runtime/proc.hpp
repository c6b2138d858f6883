// What the kernel and the dynamic loader say about this process: thread ids and names, what
// a thread is doing, the loaded objects. Used by the registry, the transitions and status.
#ifndef ATLAS_RUNTIME_PROC_HPP
#define ATLAS_RUNTIME_PROC_HPP

#include "atlas/error_util.hpp" // errno_text()

#include <cstdint>
#include <optional>
#include <string>
#include <sys/types.h>
#include <utility>
#include <vector>

namespace atlas::detail
{

// The thread's comm (/proc/self/task/<tid>/comm); empty on error.
std::string thread_comm(pid_t tid);
// Thread ids in /proc/self/task; nullopt on error (the caller reports it).
std::optional<std::vector<pid_t>> task_ids();
// Every object dl_iterate_phdr reports, as {name, load address}, sorted; empty on allocation
// failure.
std::vector<std::pair<std::string, std::uintptr_t>> loaded_objects() noexcept;
// What the kernel says thread `tid` of this process is doing (/proc/self/task/<tid>/syscall
// and wchan): the system call it is in and where it waits, or that it runs user code.
std::string kernel_state_of(pid_t tid);

} // namespace atlas::detail

#endif
