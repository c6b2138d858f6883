// Capability probing, once at creation: views (and the text they need unshared), membarrier
// SYNC_CORE. Neither is required: without them the runtime degrades and says why
// (docs/live-patching.md, "Runtime core").
#include "core.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <link.h>
#include <linux/membarrier.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace atlas::detail
{

namespace
{

struct TextRange {
	std::uintptr_t start, end;
	std::string object;
};

int collect_text(dl_phdr_info *info, size_t, void *data)
{
	auto *ranges = static_cast<std::vector<TextRange> *>(data);
	const std::string name =
	    info->dlpi_name && *info->dlpi_name ? info->dlpi_name : "main program";
	// The vdso is a special mapping: one object for all views, never patched.
	if (name.find("linux-vdso") != std::string::npos)
		return 0;
	const auto page = static_cast<std::uintptr_t>(sysconf(_SC_PAGESIZE));
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) &ph = info->dlpi_phdr[i];
		if (ph.p_type != PT_LOAD || !(ph.p_flags & PF_X) || ph.p_memsz == 0)
			continue;
		const std::uintptr_t start = info->dlpi_addr + ph.p_vaddr;
		ranges->push_back(
		    {start & ~(page - 1), (start + ph.p_memsz + page - 1) & ~(page - 1), name});
	}
	return 0;
}

} // namespace

Core::Core(RuntimeOptions options)
    : options_{nullptr,
               {},
               options.default_deadline,
               options.park_bound,
               options.refuse_unknown_threads,
               std::move(options.may_complete),
               std::move(options.blocked_may_count)},
      views_(options.views ? std::move(options.views) : kernel_view_ops()),
      log_(std::move(options.events))
{
	probe_views();
	probe_membarrier();
	log_.emit("runtime_started", {{"pid", getpid()},
	                              {"views", views_available_},
	                              {"views_note", views_note_},
	                              {"base_view", base_view_},
	                              {"membarrier_sync_core", membarrier_},
	                              {"membarrier_note", membarrier_note_}});
}

// Views are probed once; without them the runtime works in global mode only.
void Core::probe_views()
{
	ViewResult cur = views_->current();
	if (cur.ok()) {
		views_available_ = true;
		base_view_ = cur.value;
		base_published_.store(base_view_, std::memory_order_seq_cst);
		unshare_text();
		// The single-view probe: a page of our own, shared, never unshared.
		void *page = views_available_ ? mmap(nullptr, 4096, PROT_READ,
		                                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
		                              : MAP_FAILED;
		if (page != MAP_FAILED)
			probe_page_ = reinterpret_cast<std::uintptr_t>(page);
	} else if (cur.error == ENOSYS) {
		views_note_ =
		    "kernel without address-space views (mmview: ENOSYS): global mode only";
	} else {
		views_note_ =
		    fmt::format("mmview probe failed: {}: global mode only", errno_text(cur.error));
	}
}

// Parked threads resume through a kernel exit that is not architecturally serialising
// (sysret); SYNC_CORE makes every thread serialise before it runs rewritten code again.
void Core::probe_membarrier()
{
	long cmds = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
	if (cmds < 0) {
		membarrier_note_ = fmt::format("membarrier unavailable: {}", errno_text(errno));
	} else if (!(cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE)) {
		membarrier_note_ = "kernel lacks MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE";
	} else if (syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE, 0,
	                   0) != 0) {
		membarrier_note_ =
		    fmt::format("membarrier SYNC_CORE registration failed: {}", errno_text(errno));
	} else {
		membarrier_ = true;
	}
	if (!membarrier_)
		membarrier_note_ += "; global mode relies on the kernel's return path to serialise "
		                    "parked threads' instruction streams";
}

// Wait-free mode writes redirects into the new view's private copy of the text: the text of
// the program and of every loaded object is unshared once, now, while the process has a
// single view. If any of it cannot be, wait-free mode is off: patching shared text in a new
// view would change every view at once.
void Core::unshare_text()
{
	std::vector<TextRange> ranges;
	dl_iterate_phdr(collect_text, &ranges);
	std::vector<std::string> failed;
	for (const TextRange &r : ranges) {
		ViewResult done = views_->unshare(r.start, r.end - r.start);
		if (!done.ok())
			failed.push_back(fmt::format("{} [{:#x}, {:#x}): {}", r.object, r.start,
			                             r.end, errno_text(done.error)));
	}
	if (failed.empty())
		return;
	views_available_ = false;
	views_note_ = fmt::format("text could not be unshared ({}): global mode only; start the "
	                          "runtime before the process creates views",
	                          fmt::join(failed, "; "));
}

Core::~Core()
{
	// Only reached when no thread is registered any more: nobody is left to migrate.
	if (tr_)
		transitions_in_flight.fetch_sub(1, std::memory_order_seq_cst);
	if (probe_page_)
		munmap(reinterpret_cast<void *>(probe_page_), 4096);
}

} // namespace atlas::detail
