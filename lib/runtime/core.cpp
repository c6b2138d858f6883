// The transition state machine (docs/live-patching.md, "Runtime core").
//
// Locking: one mutex (Core::mu_) guards the registry and the transition. Quiescence points
// never touch it unless a transition is in flight; the event log is written after mu_ is
// released, so a sink callback may call status().
#include "core.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <link.h>
#include <linux/membarrier.h>
#include <new>
#include <pthread.h>
#include <set>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <thread>
#include <unistd.h>

namespace atlas::detail
{

std::atomic<unsigned> transitions_in_flight{0};
std::atomic<std::uint64_t> slow_path_entries{0};

namespace
{

// The calling thread's registration. The handle keeps the Core alive, so that a thread exiting
// after its Runtime was destroyed still unregisters safely.
struct ThreadHandle {
	std::shared_ptr<Core> core;
	ThreadRecord *record = nullptr;

	~ThreadHandle()
	{
		if (core && record)
			core->unregister(record);
	}
};

thread_local ThreadHandle tl_handle;

std::string errno_text(int err)
{
	return fmt::format("{} ({})", strerrordesc_np(err) ? strerrordesc_np(err) : "unknown",
	                   strerrorname_np(err) ? strerrorname_np(err) : "?");
}

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

std::string thread_comm(pid_t tid)
{
	return read_small_file(fmt::format("/proc/self/task/{}/comm", tid));
}

// Thread ids in /proc/self/task; empty on error (the caller reports it).
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

// Every object dl_iterate_phdr reports, as {name, load address}; empty on allocation failure.
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

// x86-64 numbers of the system calls a lagging thread is most often found in.
const char *syscall_name(long nr)
{
	switch (nr) {
	case 0:
		return "read";
	case 1:
		return "write";
	case 7:
		return "poll";
	case 17:
		return "pread64";
	case 18:
		return "pwrite64";
	case 19:
		return "readv";
	case 20:
		return "writev";
	case 23:
		return "select";
	case 34:
		return "pause";
	case 35:
		return "nanosleep";
	case 42:
		return "connect";
	case 43:
		return "accept";
	case 44:
		return "sendto";
	case 45:
		return "recvfrom";
	case 46:
		return "sendmsg";
	case 47:
		return "recvmsg";
	case 61:
		return "wait4";
	case 65:
		return "semop";
	case 70:
		return "msgrcv";
	case 72:
		return "fcntl";
	case 73:
		return "flock";
	case 128:
		return "rt_sigtimedwait";
	case 130:
		return "rt_sigsuspend";
	case 202:
		return "futex";
	case 220:
		return "semtimedop";
	case 230:
		return "clock_nanosleep";
	case 232:
		return "epoll_wait";
	case 247:
		return "waitid";
	case 270:
		return "pselect6";
	case 271:
		return "ppoll";
	case 281:
		return "epoll_pwait";
	case 288:
		return "accept4";
	case 426:
		return "io_uring_enter";
	case 441:
		return "epoll_pwait2";
	default:
		return nullptr;
	}
}

// What the kernel says thread `tid` of this process is doing (/proc/self/task/<tid>/syscall
// and wchan): the system call it is in and where it waits, or that it runs user code.
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

void annotate_where(std::vector<ThreadInfo> &threads)
{
	for (auto &t : threads)
		t.where = kernel_state_of(t.tid);
}

std::string describe(const std::vector<ThreadInfo> &threads)
{
	std::vector<std::string> parts;
	for (const auto &t : threads)
		parts.push_back(fmt::format("{} ({}, {}, view {}{}{}{}{})", t.tid, t.name,
		                            to_string(t.state), t.view, t.where.empty() ? "" : ", ",
		                            t.where, t.note.empty() ? "" : ": ", t.note));
	return fmt::format("{}", fmt::join(parts, ", "));
}

nlohmann::json threads_json(const std::vector<ThreadInfo> &threads)
{
	nlohmann::json list = nlohmann::json::array();
	for (const auto &t : threads)
		list.push_back({{"tid", t.tid},
		                {"name", t.name},
		                {"state", to_string(t.state)},
		                {"view", t.view},
		                {"where", t.where},
		                {"note", t.note}});
	return list;
}

Result call_change(CodeChange &change, Operation op) noexcept
{
	try {
		return op == Operation::apply ? change.apply() : change.revert();
	} catch (const std::exception &e) {
		return Result::failure(fmt::format("the change threw: {}", e.what()));
	} catch (...) {
		return Result::failure("the change threw a non-standard exception");
	}
}

const char *op_name(Operation op)
{
	return op == Operation::apply ? "apply" : "revert";
}

bool overlaps(const std::vector<AddressRange> &a, const std::vector<AddressRange> &b)
{
	for (const auto &x : a)
		for (const auto &y : b)
			if (x.start < y.end && y.start < x.end)
				return true;
	return false;
}

// Blocks every signal while parked: a handler running on a parked thread could execute code
// that is being rewritten (design sec. 4).
class SignalsBlocked
{
public:
	SignalsBlocked() noexcept
	{
		sigset_t all;
		sigfillset(&all);
		blocked_ = pthread_sigmask(SIG_BLOCK, &all, &old_) == 0;
	}
	~SignalsBlocked()
	{
		if (blocked_)
			pthread_sigmask(SIG_SETMASK, &old_, nullptr);
	}
	SignalsBlocked(const SignalsBlocked &) = delete;
	SignalsBlocked &operator=(const SignalsBlocked &) = delete;

private:
	sigset_t old_;
	bool blocked_ = false;
};

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
	// Views are probed once; without them the runtime works in global mode only.
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

	// Parked threads resume through a kernel exit that is not architecturally serialising
	// (sysret); SYNC_CORE makes every thread serialise before it runs rewritten code again.
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

	log_.emit("runtime_started", {{"pid", getpid()},
	                              {"views", views_available_},
	                              {"views_note", views_note_},
	                              {"base_view", base_view_},
	                              {"membarrier_sync_core", membarrier_},
	                              {"membarrier_note", membarrier_note_}});
}

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

// Wait-free mode writes redirects into the new view's private copy of the text (design sec.
// 4): the text of the program and of every loaded object is unshared once, now, while the
// process has a single view. If any of it cannot be, wait-free mode is off: patching shared
// text in a new view would change every view at once.
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

Result Core::register_current_thread(std::string_view name)
{
	ThreadHandle &handle = tl_handle;
	if (handle.record) {
		return Result::failure(
		    fmt::format("thread {} is already registered{}; unregister it first", gettid(),
		                handle.core.get() == this ? "" : " with another runtime"));
	}
	auto record = std::make_unique<ThreadRecord>();
	record->tid = gettid();
	record->name = name.empty() ? thread_comm(record->tid) : std::string(name);
	// Programs often name their threads after creating them (pthread_setname_np): a thread
	// registered on creation (the preload library) is reported by its current comm.
	record->comm_name = name.empty();
	if (views_available_) {
		// A new thread runs in its creator's view (which may already be the target).
		ViewResult cur = views_->current();
		if (!cur.ok())
			return Result::failure(
			    fmt::format("registering thread {}: mmview current failed: {}",
			                record->tid, errno_text(cur.error)));
		record->view = cur.value;
	}

	std::unique_lock lock(mu_);
	// Nobody joins while the patcher writes: a thread born now waits here until release.
	cv_workers_.wait(lock, [&] {
		return !(tr_ && tr_->mode == Mode::global && tr_->phase == Phase::applying);
	});
	// Born during a transition: not acknowledged yet, so it parks or migrates at its first
	// point; otherwise up to date, and in the base (an unregistered creator may still be in
	// a view a transition retired: the new thread leaves it now, on itself).
	record->acked_gen = tr_ ? 0 : gen_counter_;
	if (!tr_)
		follow_base_locked(*record);
	handle.record = record.get();
	handle.core = shared_from_this();
	records_.push_back(std::move(record));
	cv_patcher_.notify_all();
	return Result::success();
}

Result Core::unregister_current_thread()
{
	ThreadHandle &handle = tl_handle;
	if (!handle.record || handle.core.get() != this)
		return Result::failure(
		    fmt::format("thread {} is not registered with this runtime", gettid()));
	unregister(handle.record);
	handle.record = nullptr;
	handle.core.reset();
	return Result::success();
}

void Core::unregister(ThreadRecord *record) noexcept
{
	std::lock_guard lock(mu_);
	auto it = std::find_if(records_.begin(), records_.end(),
	                       [&](const auto &r) { return r.get() == record; });
	if (it == records_.end())
		return;
	// A dying thread stops counting; the patcher logs it.
	if (tr_) {
		try {
			exited_during_.emplace_back(record->tid, name_locked(*record));
		} catch (...) {
		}
	}
	records_.erase(it);
	cv_patcher_.notify_all();
}

Result Core::exempt_thread(pid_t tid, bool follows_base)
{
	if (tid <= 0)
		return Result::failure(fmt::format("exempt_thread: invalid thread id {}", tid));
	// Where it runs: known for the calling thread; another thread is taken to be in the base
	// (a process has one view outside transitions).
	ViewId view = base_view_;
	if (views_available_ && tid == gettid()) {
		ViewResult cur = views_->current();
		if (cur.ok())
			view = cur.value;
	}
	std::lock_guard lock(mu_);
	if (std::find(exempt_.begin(), exempt_.end(), tid) == exempt_.end())
		exempt_.push_back(tid);
	if (views_available_) {
		auto [it, added] = outside_.try_emplace(tid, Outside{view, follows_base});
		if (!added)
			it->second.follows_base = it->second.follows_base || follows_base;
		if (!added && tid == gettid())
			it->second.view = view;
	}
	return Result::success();
}

Result Core::follow_base()
{
	if (!views_available_)
		return Result::success();
	if (tl_handle.record)
		return Result::failure(
		    "follow_base: called from a registered thread, which migrates "
		    "at its quiescence points; call it from exempt threads only");
	// Under mu_ with no patcher busy: no transition can start (and move the base) before the
	// migration is done.
	std::lock_guard lock(mu_);
	if (patcher_busy_ || tr_)
		return Result::success(); // the base is about to change: call again afterwards
	ViewResult here = views_->current();
	if (!(here.ok() && here.value == base_view_)) {
		ViewResult moved = views_->migrate(base_view_);
		if (!moved.ok())
			return Result::failure(
			    fmt::format("follow_base: migrating thread {} into base view "
			                "{} failed: {}",
			                gettid(), base_view_, errno_text(moved.error)));
	}
	try {
		outside_[gettid()].view = base_view_;
	} catch (...) {
	}
	return Result::success();
}

std::string Core::left_behind_locked(ViewId old_view, ViewId new_base, nlohmann::json &threads)
{
	const pid_t self = gettid();
	outside_[self].view = new_base; // the patcher ends in the new base
	const auto tids = task_ids();
	auto alive = [&](pid_t tid) {
		return !tids || std::find(tids->begin(), tids->end(), tid) != tids->end();
	};
	if (!options_.refuse_unknown_threads && tids) {
		// Unknown threads were allowed: nobody migrated them either.
		for (pid_t tid : *tids) {
			const bool registered =
			    std::any_of(records_.begin(), records_.end(),
			                [&](const auto &r) { return r->tid == tid; });
			if (!registered && !outside_.count(tid))
				outside_.emplace(tid, Outside{old_view, false});
		}
	}
	std::vector<std::string> named;
	for (auto it = outside_.begin(); it != outside_.end();) {
		if (!alive(it->first)) {
			it = outside_.erase(it);
			continue;
		}
		if (it->second.view == old_view && !it->second.follows_base) {
			const std::string name = thread_comm(it->first);
			threads.push_back({{"tid", it->first}, {"name", name}});
			named.push_back(fmt::format("{} ({})", it->first, name));
		}
		++it;
	}
	if (named.empty())
		return {};
	return fmt::format("; not registered, so not migrated, and still in the retired view {}, "
	                   "which stays live until they leave it: {}; call "
	                   "Runtime::follow_base() (atlas_follow_base()) on them, or register "
	                   "them",
	                   old_view, fmt::join(named, ", "));
}

std::vector<ThreadInfo> Core::left_behind_infos_locked() const
{
	std::vector<ThreadInfo> out;
	const auto tids = task_ids();
	for (auto it = outside_.begin(); it != outside_.end();) {
		const pid_t tid = it->first;
		if (tids && std::find(tids->begin(), tids->end(), tid) == tids->end()) {
			it = outside_.erase(it); // exited
			continue;
		}
		if (it->second.view != base_view_ && !(tr_ && it->second.view == tr_->old_view)) {
			ThreadInfo info;
			info.tid = tid;
			info.name = thread_comm(tid);
			info.view = it->second.view;
			info.note = fmt::format(
			    "not registered and still in retired view {}, which stays live until "
			    "it "
			    "leaves: {}",
			    it->second.view,
			    it->second.follows_base
			        ? "it follows the base when it wakes (Runtime::follow_base())"
			        : "call Runtime::follow_base() on it, or register it");
			out.push_back(std::move(info));
		}
		++it;
	}
	return out;
}

void Core::set_generation_locked(std::uint64_t gen)
{
	gen_counter_ = gen;
	gen_published_.store(gen, std::memory_order_release);
}

void Core::handshake(ThreadRecord &record) noexcept
{
	// Both ways in count: a quiescence point's slow path and a wrapped call's exit (the
	// preload's threads meet transitions only there).
	slow_path_entries.fetch_add(1, std::memory_order_relaxed);
	// Unlocked check: this thread already handled the newest generation. Then it is where it
	// must run: an acknowledged thread is in the base or the target, and one left blocked in
	// a retired view has not acknowledged the generation that retired it.
	if (gen_published_.load(std::memory_order_acquire) == record.acked_gen)
		return;
	std::unique_lock lock(mu_);
	for (;;) {
		if (!tr_ || record.acked_gen >= tr_->gen) {
			// Done with every transition so far; woken in a retired view, it moves to
			// the base first (during a global transition only once released: the base
			// is written until then, and this thread has parked for it).
			if (!tr_ || tr_->mode == Mode::global)
				follow_base_locked(record);
			if (record.view == base_view_ || (tr_ && tr_->mode == Mode::wait_free))
				record.acked_gen = gen_counter_;
			return;
		}
		const std::uint64_t gen = tr_->gen;
		// The quiescence check (the preload's stack check). Skipped when nothing is left to
		// do in wait-free mode, and once a global transition writes: then this thread was
		// counted as blocked (after its own check) and must park, not run.
		const bool needs_move =
		    tr_->mode == Mode::global || record.view != tr_->target_view;
		if (options_.may_complete && needs_move &&
		    !(tr_->mode == Mode::global && tr_->phase == Phase::applying)) {
			std::shared_ptr<CodeChange> change = tr_->change;
			// Unlocked: the check may unwind the stack, which takes the loader's lock.
			lock.unlock();
			std::string refusal;
			try {
				refusal = options_.may_complete(*change);
			} catch (...) {
				refusal = "the quiescence check threw";
			}
			lock.lock();
			if (!tr_ || tr_->gen != gen)
				continue;
			if (!refusal.empty()) {
				// Not acknowledged: lagging, and asked again at the next point.
				record.error = std::move(refusal);
				cv_patcher_.notify_all();
				return;
			}
			record.error.clear();
		}
		const std::int64_t now = monotonic_ns();
		record.last_quiescence_ns.store(now, std::memory_order_relaxed);

		if (tr_->mode == Mode::global) {
			record.acked_gen = gen;
			record.arrived_ns = now;
			record.state.store(ThreadState::parked, std::memory_order_seq_cst);
			cv_patcher_.notify_all();
			{
				SignalsBlocked no_signals;
				cv_workers_.wait(lock, [&] { return released_gen_ >= gen; });
			}
			record.state.store(ThreadState::running, std::memory_order_seq_cst);
			// Back to the application, even if the patcher's next attempt has begun
			// meanwhile (it parks again at its next point, after running). A thread
			// that parked in a retired view follows the base first.
			follow_base_locked(record);
			return;
		}

		const ViewId target = tr_->target_view;
		if (record.view != target) {
			// The syscall runs unlocked: it never waits for other threads.
			lock.unlock();
			ViewResult moved = views_->migrate(target);
			lock.lock();
			if (!moved.ok()) {
				// The target changed meanwhile (a revert deleted it): look again.
				if (tr_ && tr_->gen != gen)
					continue;
				// Stays lagging, listed with the error, and tries again at its next
				// point.
				record.error = fmt::format("migrate to view {} failed: {}", target,
				                           errno_text(moved.error));
				cv_patcher_.notify_all();
				return;
			}
			record.view = target;
			record.error.clear();
			// The target may have changed meanwhile (revert): look again.
			if (!tr_ || tr_->gen != gen)
				continue;
		}
		record.acked_gen = gen;
		record.arrived_ns = monotonic_ns();
		cv_patcher_.notify_all();
		return;
	}
}

void Core::follow_base_locked(ThreadRecord &record) noexcept
{
	if (!views_available_ || record.view == base_view_)
		return;
	// Under mu_: the base cannot be retired meanwhile (a wait-free transition publishes its
	// new base under mu_ before it ends). O(1), and it never waits for other threads.
	ViewResult moved = views_->migrate(base_view_);
	if (!moved.ok()) {
		// Runs on in the retired view (old code, same memory) and tries again at its
		// next wrapped call; status shows the error.
		record.error = fmt::format("woke in retired view {}; migrating to the base view "
		                           "{} failed: {}",
		                           record.view, base_view_, errno_text(moved.error));
		return;
	}
	record.view = base_view_;
	record.error.clear();
	migrated_on_wake_++;
}

void Core::blocking_enter(ThreadRecord &record) noexcept
{
	// A new call: the patcher's check of an earlier one no longer holds
	// (blocked_counts_locked).
	record.blocked_calls.store(record.blocked_calls.load(std::memory_order_relaxed) + 1,
	                           std::memory_order_relaxed);
	// seq_cst pairs with the patcher's increment of transitions_in_flight and its seq_cst
	// load of the state; see blocking_exit().
	record.state.store(ThreadState::blocked, std::memory_order_seq_cst);
	// A transition may be waiting for this thread, which now may count as quiescent and may
	// block for long: wake the patcher, or it would sleep until its deadline.
	if (transitions_in_flight.load(std::memory_order_seq_cst) != 0) {
		std::lock_guard lock(mu_);
		cv_patcher_.notify_all();
	}
}

void Core::blocking_exit(ThreadRecord &record) noexcept
{
	record.last_quiescence_ns.store(monotonic_ns(), std::memory_order_relaxed);
	// Dekker-style handshake with the patcher, which increments transitions_in_flight and
	// then reads each thread's state. Both sides are seq_cst (store then load), so either the
	// patcher sees "running" and waits for this thread, or this thread sees the transition and
	// completes the handshake before returning to application code. A transition that
	// finished while this thread was blocked in its old view published the new base before
	// leaving transitions_in_flight: then this thread sees that base and follows it.
	record.state.store(ThreadState::running, std::memory_order_seq_cst);
	if (transitions_in_flight.load(std::memory_order_seq_cst) == 0 &&
	    record.view == base_published_.load(std::memory_order_seq_cst)) [[likely]]
		return;
	handshake(record);
}

Core::Deadline Core::deadline_of(std::chrono::milliseconds deadline) const
{
	if (deadline.count() <= 0)
		deadline = options_.default_deadline;
	return std::chrono::steady_clock::now() + deadline;
}

std::string Core::name_locked(const ThreadRecord &record) const
{
	if (record.comm_name) {
		std::string comm = thread_comm(record.tid);
		if (!comm.empty())
			return comm;
	}
	return record.name;
}

ThreadInfo Core::info_locked(const ThreadRecord &record) const
{
	ThreadInfo info;
	info.tid = record.tid;
	info.name = name_locked(record);
	info.view = record.view;
	info.state = record.state.load(std::memory_order_seq_cst);
	info.last_quiescence_ns = record.last_quiescence_ns.load(std::memory_order_relaxed);
	if (tr_ || !record.error.empty())
		info.note = record.error;
	if (info.state == ThreadState::running && tr_ && tr_->mode == Mode::wait_free &&
	    record.view == tr_->target_view && record.view != tr_->old_view)
		info.state = ThreadState::migrated;
	if (info.state == ThreadState::blocked && views_available_) {
		if (tr_ && tr_->mode == Mode::wait_free)
			info.migrates_on_wake =
			    record.view != tr_->target_view && record.quiescent_gen == tr_->gen &&
			    record.quiescent_call ==
			        record.blocked_calls.load(std::memory_order_seq_cst);
		else
			info.migrates_on_wake = record.view != base_view_;
	}
	return info;
}

bool Core::blocked_counts_locked(ThreadRecord &record) const
{
	if (!options_.blocked_may_count)
		return true; // bracketed by the program itself: quiescent by contract
	// After the state was read as blocked: at least the call that made it so.
	const std::uint64_t call = record.blocked_calls.load(std::memory_order_seq_cst);
	if (record.quiescent_gen == tr_->gen && record.quiescent_call == call)
		return true; // checked in this call already: its stack has not changed since
	std::string refusal;
	try {
		refusal = options_.blocked_may_count(record.tid, *tr_->change);
	} catch (...) {
		refusal = "the blocked-thread quiescence check threw";
	}
	if (!refusal.empty()) {
		record.error = std::move(refusal);
		return false;
	}
	// If the thread left `call` before the check, the check saw it running and refused; if
	// it entered a later call, `call` never matches again. Either way nothing stale counts.
	record.quiescent_gen = tr_->gen;
	record.quiescent_call = call;
	record.error.clear();
	return true;
}

// Threads the transition in progress still waits for. A thread blocked in a bracketed call
// whose check passes counts in both modes: in global mode it parks if it returns before the
// change is written, in wait-free mode it migrates when it returns (blocking_exit()).
std::vector<ThreadInfo> Core::lagging_locked() const
{
	std::vector<ThreadInfo> lagging;
	if (!tr_)
		return lagging;
	for (const auto &r : records_) {
		const ThreadState state = r->state.load(std::memory_order_seq_cst);
		bool done;
		if (tr_->mode == Mode::global)
			done = state == ThreadState::parked && r->acked_gen == tr_->gen;
		else
			done = r->view == tr_->target_view;
		if (!done && state == ThreadState::blocked)
			done = blocked_counts_locked(*r);
		if (!done)
			lagging.push_back(info_locked(*r));
	}
	return lagging;
}

Result Core::unknown_threads_check()
{
	if (!options_.refuse_unknown_threads)
		return Result::success();
	// A thread that has just unregistered on its way out is still listed for a moment;
	// only threads that stay listed are unknown. No notification exists for that: poll.
	std::vector<pid_t> unknown;
	for (int attempt = 0; attempt < 10; attempt++) {
		std::set<pid_t> known;
		{
			std::lock_guard lock(mu_);
			for (const auto &r : records_)
				known.insert(r->tid);
			known.insert(exempt_.begin(), exempt_.end());
		}
		known.insert(gettid());
		auto tids = task_ids();
		if (!tids)
			return Result::failure(
			    fmt::format("cannot list /proc/self/task: {}; is /proc mounted?",
			                errno_text(errno)));
		unknown.clear();
		for (pid_t tid : *tids)
			if (!known.count(tid))
				unknown.push_back(tid);
		if (unknown.empty())
			return Result::success();
		std::this_thread::sleep_for(std::chrono::milliseconds(5));
	}
	std::vector<std::string> names;
	for (pid_t tid : unknown)
		names.push_back(fmt::format("{} ({})", tid, thread_comm(tid)));
	return Result::failure(fmt::format(
	    "/proc/self/task lists threads the runtime does not know: {}; register them "
	    "(atlas_thread_register) or, if they never run code a change replaces, exempt them "
	    "(atlas_thread_exempt)",
	    fmt::join(names, ", ")));
}

void Core::remember(const Report &report)
{
	std::lock_guard lock(mu_);
	last_report_ = report;
}

Report Core::apply(std::shared_ptr<CodeChange> change, Request request)
{
	Report report;
	if (!change) {
		report.message = "apply: no change given";
		return report;
	}
	std::string identity;
	try {
		identity = change->identity();
	} catch (...) {
		report.message = "apply: the change's identity() threw";
		return report;
	}
	{
		std::lock_guard lock(mu_);
		if (!admissible_locked(Operation::apply, change, identity, report))
			return report;
	}
	return start(Operation::apply, std::move(change), std::move(identity), request);
}

Report Core::revert(std::string_view identity, Request request)
{
	Report report;
	std::shared_ptr<CodeChange> change;
	{
		std::lock_guard lock(mu_);
		if (!admissible_locked(Operation::revert, change, identity, report))
			return report;
	}
	return start(Operation::revert, std::move(change), std::string(identity), request);
}

bool Core::admissible_locked(Operation op, std::shared_ptr<CodeChange> &change,
                             std::string_view identity, Report &report) const
{
	report.change = std::string(identity);
	try {
		if (op == Operation::apply) {
			for (const auto &a : applied_) {
				if (a.info.identity == identity) {
					report.mode = a.info.mode;
					report.outcome = Outcome::already_applied;
					report.message =
					    fmt::format("{} is already applied (transition {})",
					                identity, a.info.transition);
					return false;
				}
			}
			// Stacking: what this change uses of earlier ones must still be there.
			for (const auto &base : change->stacked_on()) {
				if (!base)
					continue;
				auto same = [&](const AppliedEntry &a) {
					return a.change.get() == base.get();
				};
				if (std::any_of(applied_.begin(), applied_.end(), same))
					continue;
				const std::string name = base->identity();
				auto by_name = [&](const AppliedEntry &a) {
					return a.info.identity == name;
				};
				const bool again =
				    std::any_of(applied_.begin(), applied_.end(), by_name);
				report.message = fmt::format(
				    "apply: {} was loaded on top of {} and uses its code or data, "
				    "but {}; nothing changed. Load {} again (atlas apply loads it "
				    "anew, against the patches applied then){}",
				    identity, name,
				    again ? "that copy of it was reverted and unmapped since (it "
				            "is applied again as another copy)"
				          : "it is no longer applied (it was reverted after " +
				                std::string(identity) + " was loaded)",
				    identity,
				    again ? ""
				          : fmt::format(", after applying {} again if {} needs it",
				                        name, identity));
				return false;
			}
			return true;
		}
		auto it = std::find_if(applied_.begin(), applied_.end(),
		                       [&](const auto &a) { return a.info.identity == identity; });
		if (it == applied_.end()) {
			report.message = fmt::format("revert: {} is not applied", identity);
			return false;
		}
		// Last in, first out per function: a later change of the same function goes first;
		// so does a later change stacked on this one (it uses its code or data).
		auto mine = it->change->replaced_functions();
		for (auto later = it + 1; later != applied_.end(); ++later) {
			if (overlaps(mine, later->change->replaced_functions())) {
				report.message = fmt::format(
				    "revert: {} replaces functions that the later change {} also "
				    "replaces; revert {} first",
				    identity, later->info.identity, later->info.identity);
				return false;
			}
			for (const auto &base : later->change->stacked_on()) {
				if (base.get() == it->change.get()) {
					report.message = fmt::format(
					    "revert: the later change {} stacks on {} (it uses its "
					    "code or data); revert {} first",
					    later->info.identity, identity, later->info.identity);
					return false;
				}
			}
		}
		change = it->change;
		return true;
	} catch (const std::exception &e) {
		report.message = fmt::format("{}: checking {} against the applied changes failed: "
		                             "{}; nothing changed, retry",
		                             op_name(op), identity, e.what());
	} catch (...) {
		report.message = fmt::format("{}: checking {} against the applied changes failed; "
		                             "nothing changed, retry",
		                             op_name(op), identity);
	}
	return false;
}

Report Core::start(Operation op, std::shared_ptr<CodeChange> change, std::string identity,
                   Request request)
{
	Report report;
	report.change = identity;
	if (tl_handle.record) {
		report.message = fmt::format(
		    "{}: called from registered thread {}; a transition waits for every registered "
		    "thread, so call it from an unregistered control thread",
		    op_name(op), gettid());
		return report;
	}
	bool global_required = false;
	try {
		global_required = change->requires_global();
	} catch (...) {
		report.message = "the change's requires_global() threw";
		return report;
	}
	Mode mode = request.mode;
	if (mode == Mode::automatic)
		mode = views_available_ && !global_required ? Mode::wait_free : Mode::global;
	report.mode = mode;
	if (mode == Mode::wait_free && !views_available_) {
		report.message =
		    fmt::format("wait-free mode unavailable: {}; use global mode", views_note_);
		return report;
	}
	if (mode == Mode::wait_free && global_required) {
		report.message = fmt::format("{} requires global mode (it changes a protocol "
		                             "between threads); request global or automatic mode",
		                             identity);
		return report;
	}
	{
		std::lock_guard lock(mu_);
		if (patcher_busy_ || tr_) {
			report.message =
			    tr_ ? fmt::format("busy: transition {} is {}; wait() or "
			                      "revert_pending() first",
			                      tr_->id,
			                      tr_->phase == Phase::reverting ? "reverting"
			                                                     : "pending")
			        : "busy: another transition is running; retry when it "
			          "has finished";
			return report;
		}
		// applied_ changes only while a patcher is busy: checked again now, so that a
		// transition that ended since the caller's check cannot slip through (a patch
		// stacked on one that was reverted meanwhile, an apply of the same identity).
		Report again = report;
		if (!admissible_locked(op, change, identity, again))
			return again;
		patcher_busy_ = true;
	}
	Deadline deadline = deadline_of(request.deadline);
	log_.emit("request", {{"op", op_name(op)},
	                      {"change", identity},
	                      {"mode", to_string(mode)},
	                      {"deadline_ms", std::chrono::duration_cast<std::chrono::milliseconds>(
	                                          deadline - std::chrono::steady_clock::now())
	                                          .count()}});
	Result known = unknown_threads_check();
	if (!known) {
		report.message = fmt::format("refused, unchanged: {}", known.message());
		log_.emit("refused", {{"change", identity}, {"reason", report.message}});
		std::lock_guard lock(mu_);
		patcher_busy_ = false;
		last_report_ = report;
		return report;
	}
	report = mode == Mode::global
	             ? run_global(op, std::move(change), identity, deadline, std::move(report))
	             : run_wait_free(op, std::move(change), identity, deadline, std::move(report));
	remember(report);
	return report;
}

void Core::finish_locked(Report &report)
{
	if (tr_) {
		report.transition = tr_->id;
		report.duration = std::chrono::nanoseconds(monotonic_ns() - tr_->started_ns);
		tr_.reset();
		transitions_in_flight.fetch_sub(1, std::memory_order_seq_cst);
	}
	// Notes explain lagging in one transition only.
	for (auto &r : records_)
		r->error.clear();
	exited_during_.clear();
	// One view remains (or none was created): nothing is loaded "while split" any more.
	objects_at_split_.clear();
	loaded_while_split_.clear();
	split_seen_.clear();
	patcher_busy_ = false;
}

Report Core::run_global(Operation op, std::shared_ptr<CodeChange> change, std::string identity,
                        Deadline deadline, Report report)
{
	// With views, all registered threads are in the base view between transitions: write there.
	if (views_available_) {
		ViewResult to_base = views_->migrate(base_view_);
		if (!to_base.ok()) {
			std::lock_guard lock(mu_);
			patcher_busy_ = false;
			report.message = fmt::format(
			    "refused, unchanged: patcher could not enter base view {}: {}",
			    base_view_, errno_text(to_base.error));
			return report;
		}
	}

	Events events;
	std::unique_lock lock(mu_);
	Transition tr;
	tr.id = ++transition_counter_;
	tr.mode = Mode::global;
	tr.phase = Phase::gathering;
	tr.op = op;
	tr.change = change;
	tr.identity = identity;
	tr.started_ns = tr.gen_started_ns = monotonic_ns();
	tr.target_view = tr.old_view = tr.new_view = base_view_;
	tr_ = tr;
	set_generation_locked(gen_counter_ + 1);
	tr_->gen = gen_counter_;
	std::uint64_t gen = tr_->gen; // this attempt's: a new one after each release
	report.transition = tr_->id;
	// seq_cst: the Dekker pairing with blocking_exit() (state store, then this load).
	transitions_in_flight.fetch_add(1, std::memory_order_seq_cst);

	auto release = [&](bool applied) {
		const std::int64_t now = monotonic_ns();
		for (const auto &r : records_) {
			if (r->acked_gen == gen &&
			    r->state.load(std::memory_order_seq_cst) == ThreadState::parked)
				events.emplace_back(
				    "thread_parked",
				    nlohmann::json{{"transition", tr_->id},
				                   {"tid", r->tid},
				                   {"name", name_locked(*r)},
				                   {"latency_ns", r->arrived_ns - tr_->started_ns},
				                   {"wait_ns", now - r->arrived_ns}});
			else if (r->state.load(std::memory_order_seq_cst) == ThreadState::blocked)
				events.emplace_back("thread_blocked",
				                    nlohmann::json{{"transition", tr_->id},
				                                   {"tid", r->tid},
				                                   {"name", name_locked(*r)}});
		}
		for (const auto &[tid, name] : exited_during_)
			events.emplace_back(
			    "thread_exited",
			    nlohmann::json{{"transition", tr_->id}, {"tid", tid}, {"name", name}});
		released_gen_ = gen;
		finish_locked(report);
		cv_workers_.notify_all();
		events.emplace_back(applied ? "finished" : "refused",
		                    nlohmann::json{{"transition", report.transition},
		                                   {"op", op_name(op)},
		                                   {"change", identity},
		                                   {"mode", "global"},
		                                   {"duration_ns", report.duration.count()},
		                                   {"message", report.message}});
	};

	const auto park_bound = std::max(options_.park_bound, std::chrono::milliseconds(1));
	auto attempt_end = std::min(deadline, std::chrono::steady_clock::now() + park_bound);
	unsigned attempts = 1;
	std::vector<ThreadInfo> last_lagging;
	for (;;) {
		report.lagging = lagging_locked();
		if (report.lagging.empty())
			break;
		const auto now = std::chrono::steady_clock::now();
		if (now >= attempt_end && now < deadline) {
			// Nobody stays parked longer than the bound: release this attempt's
			// threads, let the program run as long again, then gather anew.
			last_lagging = report.lagging;
			released_gen_ = gen;
			cv_workers_.notify_all();
			cv_patcher_.wait_until(lock, std::min(deadline, now + park_bound));
			if (std::chrono::steady_clock::now() >= deadline) {
				report.lagging = std::move(last_lagging);
			} else {
				set_generation_locked(gen_counter_ + 1);
				tr_->gen = gen = gen_counter_;
				tr_->gen_started_ns = monotonic_ns();
				attempt_end = std::min(deadline, std::chrono::steady_clock::now() +
				                                     park_bound);
				attempts++;
				continue;
			}
		}
		if (std::chrono::steady_clock::now() >= deadline) {
			report.outcome = Outcome::refused;
			annotate_where(report.lagging);
			// A thread with a note reached points but a check (e.g. the preload's stack
			// check) held it back: adding points would not help it.
			const bool all_held_back =
			    std::all_of(report.lagging.begin(), report.lagging.end(),
			                [](const ThreadInfo &t) { return !t.note.empty(); });
			report.message = fmt::format(
			    "refused, unchanged: deadline expired before every thread reached a "
			    "quiescence point ({} attempt{} of at most {} ms parked); lagging: {}; "
			    "{}",
			    attempts, attempts == 1 ? "" : "s", park_bound.count(),
			    describe(report.lagging),
			    all_held_back ? "each note says why the thread could not complete; "
			                    "retry when they "
			                    "have left that code, or with a longer deadline"
			                  : "make them call atlas_quiescence_point() or bracket "
			                    "their blocking "
			                    "calls, or retry with a longer deadline");
			nlohmann::json refused_threads = threads_json(report.lagging);
			release(false);
			events.back().second["lagging"] = std::move(refused_threads);
			lock.unlock();
			log_.emit_all(events);
			return report;
		}
		cv_patcher_.wait_until(lock, attempt_end);
	}
	tr_->phase = Phase::applying;
	lock.unlock();

	// Everyone registered is parked or blocked, and nobody can register: the authoritative
	// check for threads outside the registry.
	Result known = unknown_threads_check();
	Result changed = known ? call_change(*change, op) : Result::success();
	bool barrier_ok = true;
	if (known && changed && membarrier_) {
		barrier_ok =
		    syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE, 0, 0) == 0;
	}

	lock.lock();
	if (!known) {
		report.outcome = Outcome::refused;
		report.message = fmt::format("refused, unchanged: {}", known.message());
	} else if (!changed) {
		report.outcome = Outcome::failed;
		report.message = fmt::format("{} of {} failed, nothing changed: {}", op_name(op),
		                             identity, changed.message());
	} else {
		report.outcome = Outcome::finished;
		report.message = fmt::format("{} {}: done in global mode", op_name(op), identity);
		if (!barrier_ok)
			report.message += "; warning: membarrier SYNC_CORE failed";
		if (op == Operation::apply) {
			AppliedEntry entry;
			entry.info.identity = identity;
			entry.info.mode = Mode::global;
			entry.info.transition = tr_->id;
			entry.change = change;
			applied_.push_back(std::move(entry));
		} else {
			std::erase_if(applied_,
			              [&](const auto &a) { return a.info.identity == identity; });
		}
		events.emplace_back("change_applied", nlohmann::json{{"transition", tr_->id},
		                                                     {"op", op_name(op)},
		                                                     {"change", identity},
		                                                     {"view", base_view_}});
		events.emplace_back("membarrier",
		                    nlohmann::json{{"transition", tr_->id},
		                                   {"sync_core", membarrier_},
		                                   {"ok", membarrier_ && barrier_ok}});
	}
	report.lagging.clear();
	release(report.outcome == Outcome::finished);
	if (report.outcome == Outcome::finished && !applied_.empty() &&
	    applied_.back().info.identity == identity)
		applied_.back().info.duration = report.duration;
	lock.unlock();
	log_.emit_all(events);
	if (report.outcome == Outcome::finished && op == Operation::revert)
		change->unreachable();
	return report;
}

Report Core::run_wait_free(Operation op, std::shared_ptr<CodeChange> change, std::string identity,
                           Deadline deadline, Report report)
{
	auto refuse = [&](Outcome outcome, std::string message) {
		std::lock_guard lock(mu_);
		patcher_busy_ = false;
		report.outcome = outcome;
		report.message = std::move(message);
		log_.emit(outcome == Outcome::failed ? "failed" : "refused",
		          {{"change", identity}, {"message", report.message}});
		return report;
	};
	const std::int64_t started = monotonic_ns();
	// The new view is a copy of the caller's: start from the base.
	ViewResult to_base = views_->migrate(base_view_);
	if (!to_base.ok())
		return refuse(Outcome::refused,
		              fmt::format("refused, unchanged: patcher could not enter base view "
		                          "{}: {}",
		                          base_view_, errno_text(to_base.error)));
	// The kernel holds the views' shared mmap lock for writing through CREATE, SWITCH_BASE
	// and DELETE: each call's duration (an upper bound on that hold) goes into its event.
	std::int64_t call_started = monotonic_ns();
	ViewResult created = views_->create();
	const std::int64_t create_ns = monotonic_ns() - call_started;
	if (!created.ok())
		return refuse(Outcome::refused,
		              fmt::format("refused, unchanged: creating a view failed: {}",
		                          errno_text(created.error)));
	const ViewId fresh = created.value;
	log_.emit("view_created", {{"view", fresh}, {"change", identity}, {"call_ns", create_ns}});
	{
		// From here on several views exist: objects loaded now cannot be unshared.
		auto objects = loaded_objects();
		std::lock_guard lock(mu_);
		objects_at_split_ = std::move(objects);
		loaded_while_split_.clear();
		split_seen_.clear();
	}
	ViewResult entered = views_->migrate(fresh);
	if (!entered.ok()) {
		views_->remove(fresh);
		return refuse(Outcome::refused,
		              fmt::format("refused, unchanged: entering new view {} failed: {}",
		                          fresh, errno_text(entered.error)));
	}
	// Only this thread runs in the new view: its private text copy is ours to write.
	Result changed = call_change(*change, op);
	if (!changed) {
		// Nothing outside the new view was touched: drop it.
		views_->migrate(base_view_);
		views_->remove(fresh);
		return refuse(Outcome::failed,
		              fmt::format("{} of {} failed in view {}, nothing changed: {}",
		                          op_name(op), identity, fresh, changed.message()));
	}
	log_.emit("change_applied", {{"op", op_name(op)}, {"change", identity}, {"view", fresh}});

	std::unique_lock lock(mu_);
	Transition tr;
	tr.id = ++transition_counter_;
	tr.mode = Mode::wait_free;
	tr.phase = Phase::migrating;
	tr.op = op;
	tr.change = change;
	tr.identity = identity;
	tr.started_ns = started;
	tr.gen_started_ns = monotonic_ns();
	tr.target_view = tr.new_view = fresh;
	tr.old_view = base_view_;
	tr_ = tr;
	set_generation_locked(gen_counter_ + 1);
	tr_->gen = gen_counter_;
	report.transition = tr_->id;
	// Publishing: threads see it at their next point (relaxed loads on the fast path; the
	// slow path takes mu_, which orders everything the patcher wrote before).
	transitions_in_flight.fetch_add(1, std::memory_order_seq_cst);
	return wait_wait_free(lock, deadline, std::move(report));
}

Report Core::wait_wait_free(std::unique_lock<std::mutex> &lock, Deadline deadline, Report report)
{
	Events events;
	for (;;) {
		const std::uint64_t gen = tr_->gen;
		for (auto &r : records_) {
			if (r->acked_gen == gen && r->reported_gen != gen &&
			    r->view == tr_->target_view) {
				r->reported_gen = gen;
				events.emplace_back(
				    "thread_migrated",
				    nlohmann::json{
				        {"transition", tr_->id},
				        {"tid", r->tid},
				        {"name", name_locked(*r)},
				        {"view", r->view},
				        {"latency_ns", r->arrived_ns - tr_->gen_started_ns}});
			}
		}
		for (const auto &[tid, name] : exited_during_)
			events.emplace_back(
			    "thread_exited",
			    nlohmann::json{{"transition", tr_->id}, {"tid", tid}, {"name", name}});
		exited_during_.clear();
		report.lagging = lagging_locked();
		// Blocked threads counted as quiescent in the old view: once each per generation.
		for (auto &r : records_) {
			if (r->reported_gen == gen || r->view == tr_->target_view ||
			    r->quiescent_gen != gen ||
			    r->state.load(std::memory_order_seq_cst) != ThreadState::blocked)
				continue;
			r->reported_gen = gen;
			events.emplace_back(
			    "thread_migrates_on_wake",
			    nlohmann::json{{"transition", tr_->id},
			                   {"tid", r->tid},
			                   {"name", name_locked(*r)},
			                   {"view", r->view},
			                   {"latency_ns", monotonic_ns() - tr_->gen_started_ns}});
		}
		if (report.lagging.empty())
			break;
		if (std::chrono::steady_clock::now() >= deadline) {
			const bool reverting = tr_->phase == Phase::reverting;
			annotate_where(report.lagging);
			report.outcome = reverting ? Outcome::reverting : Outcome::pending;
			report.transition = tr_->id;
			report.duration =
			    std::chrono::nanoseconds(monotonic_ns() - tr_->started_ns);
			report.message = fmt::format(
			    "{}: {} of {} is in view {}; waiting for threads to reach a quiescence "
			    "point and migrate: {}; call wait() to keep waiting{}",
			    reverting ? "reverting" : "pending", op_name(tr_->op), tr_->identity,
			    tr_->target_view, describe(report.lagging),
			    reverting ? "" : " or revert_pending() to go back");
			events.emplace_back(
			    reverting ? "reverting" : "pending",
			    nlohmann::json{{"transition", tr_->id},
			                   {"lagging", threads_json(report.lagging)}});
			patcher_busy_ = false;
			lock.unlock();
			log_.emit_all(events);
			return report;
		}
		lock.unlock();
		log_.emit_all(events);
		scan_loaded_objects();
		lock.lock();
		// Re-check before sleeping: the log was written unlocked.
		if (!lagging_locked().empty())
			cv_patcher_.wait_until(lock, deadline);
	}

	// Every registered thread is in the target view or blocked, checked, in the other one:
	// retire it (the kernel keeps it for its sleepers until the last one leaves).
	Transition tr = *tr_;
	lock.unlock();
	log_.emit_all(events);
	std::string problems;
	bool base_switched = false;
	if (tr.phase == Phase::migrating) {
		ViewResult in = views_->migrate(tr.new_view);
		std::int64_t call_started = monotonic_ns();
		ViewResult based = in.ok() ? views_->switch_base() : in;
		const std::int64_t switch_ns = monotonic_ns() - call_started;
		base_switched = based.ok();
		if (based.ok()) {
			log_.emit(
			    "base_switched",
			    {{"transition", tr.id}, {"view", tr.new_view}, {"call_ns", switch_ns}});
			call_started = monotonic_ns();
			ViewResult removed = views_->remove(tr.old_view);
			const std::int64_t remove_ns = monotonic_ns() - call_started;
			if (removed.ok())
				log_.emit("view_deleted", {{"transition", tr.id},
				                           {"view", tr.old_view},
				                           {"call_ns", remove_ns}});
			else
				problems = fmt::format("; deleting old view {} failed: {}",
				                       tr.old_view, errno_text(removed.error));
		} else {
			problems =
			    fmt::format("; switching the base to view {} failed: {}; old view "
			                "{} kept",
			                tr.new_view, errno_text(based.error), tr.old_view);
		}
	} else {
		ViewResult back = views_->migrate(tr.old_view);
		const std::int64_t call_started = monotonic_ns();
		ViewResult removed = back.ok() ? views_->remove(tr.new_view) : back;
		const std::int64_t remove_ns = monotonic_ns() - call_started;
		if (removed.ok())
			log_.emit(
			    "view_deleted",
			    {{"transition", tr.id}, {"view", tr.new_view}, {"call_ns", remove_ns}});
		else
			problems = fmt::format("; deleting view {} failed: {}", tr.new_view,
			                       errno_text(removed.error));
	}

	lock.lock();
	nlohmann::json behind = nlohmann::json::array();
	// Registered threads asleep outside the base: in the view just retired or in one an
	// earlier transition retired. Each keeps its view live and moves when its call returns.
	const ViewId base_now =
	    tr.phase == Phase::migrating && base_switched ? tr.new_view : base_view_;
	nlohmann::json sleepers = nlohmann::json::array();
	std::vector<std::string> sleeper_names;
	for (const auto &r : records_) {
		if (!views_available_ || r->view == base_now)
			continue;
		const std::string name = name_locked(*r);
		sleepers.push_back({{"tid", r->tid}, {"name", name}, {"view", r->view}});
		sleeper_names.push_back(fmt::format("{} ({}, view {})", r->tid, name, r->view));
	}
	if (!sleeper_names.empty())
		problems += fmt::format("; asleep in retired views, which stay live until they "
		                        "leave them, and moving to the base when their calls "
		                        "return: {}",
		                        fmt::join(sleeper_names, ", "));
	if (tr.phase == Phase::migrating) {
		if (base_switched) {
			base_view_ = tr.new_view;
			// Before finish_locked() leaves transitions_in_flight: see blocking_exit().
			base_published_.store(base_view_, std::memory_order_seq_cst);
			try {
				problems += left_behind_locked(tr.old_view, tr.new_view, behind);
			} catch (...) {
			}
		}
		report.outcome = Outcome::finished;
		report.message = fmt::format("{} {}: done in wait-free mode, view {}{}",
		                             op_name(tr.op), tr.identity, tr.new_view, problems);
		if (tr.op == Operation::apply) {
			AppliedEntry entry;
			entry.info.identity = tr.identity;
			entry.info.mode = Mode::wait_free;
			entry.info.transition = tr.id;
			entry.info.duration =
			    std::chrono::nanoseconds(monotonic_ns() - tr.started_ns);
			entry.change = tr.change;
			applied_.push_back(std::move(entry));
		} else {
			std::erase_if(applied_, [&](const auto &a) {
				return a.info.identity == tr.identity;
			});
		}
	} else {
		report.outcome = Outcome::reverted;
		report.message = fmt::format("{} of {} reverted: every thread is back in view {}, "
		                             "nothing changed{}",
		                             op_name(tr.op), tr.identity, tr.old_view, problems);
	}
	report.lagging.clear();
	finish_locked(report);
	lock.unlock();
	if (!behind.empty())
		log_.emit("threads_left_behind", {{"transition", tr.id},
		                                  {"view", tr.old_view},
		                                  {"base_view", tr.new_view},
		                                  {"threads", behind}});
	log_.emit(report.outcome == Outcome::finished ? "finished" : "reverted",
	          {{"transition", tr.id},
	           {"op", op_name(tr.op)},
	           {"change", tr.identity},
	           {"mode", "wait_free"},
	           {"migrate_on_wake", std::move(sleepers)},
	           {"duration_ns", report.duration.count()},
	           {"message", report.message}});
	// The new code can no longer run anywhere: either the reverted change after its view
	// was deleted, or an undone apply.
	if ((report.outcome == Outcome::finished && tr.op == Operation::revert) ||
	    (report.outcome == Outcome::reverted && tr.op == Operation::apply))
		tr.change->unreachable();
	return report;
}

bool Core::begin_pending_call(const char *verb, std::unique_lock<std::mutex> &lock, Report &report)
{
	if (tl_handle.record) {
		report.message = fmt::format("{}: called from a registered thread; call it from an "
		                             "unregistered control thread",
		                             verb);
		return false;
	}
	lock = std::unique_lock(mu_);
	if (!tr_ || tr_->mode != Mode::wait_free || patcher_busy_) {
		report.message = patcher_busy_
		                     ? fmt::format("{}: another patcher call is running", verb)
		                     : fmt::format("{}: no pending wait-free transition", verb);
		lock.unlock();
		return false;
	}
	patcher_busy_ = true;
	report.mode = Mode::wait_free;
	report.change = tr_->identity;
	report.transition = tr_->id;
	return true;
}

Report Core::wait(std::chrono::milliseconds deadline)
{
	Report report;
	std::unique_lock<std::mutex> lock;
	if (!begin_pending_call("wait", lock, report))
		return report;
	report = wait_wait_free(lock, deadline_of(deadline), std::move(report));
	if (lock.owns_lock())
		lock.unlock();
	remember(report);
	return report;
}

Report Core::revert_pending(std::chrono::milliseconds deadline)
{
	Report report;
	std::unique_lock<std::mutex> lock;
	if (!begin_pending_call("revert_pending", lock, report))
		return report;
	const std::uint64_t id = tr_->id;
	const ViewId old_view = tr_->old_view;
	if (tr_->phase != Phase::reverting) {
		// The old view, never modified, becomes the target again.
		tr_->phase = Phase::reverting;
		tr_->target_view = old_view;
		set_generation_locked(gen_counter_ + 1);
		tr_->gen = gen_counter_;
		tr_->gen_started_ns = monotonic_ns();
	}
	lock.unlock();
	log_.emit("reverting", {{"transition", id}, {"view", old_view}});
	lock.lock();
	report = wait_wait_free(lock, deadline_of(deadline), std::move(report));
	if (lock.owns_lock())
		lock.unlock();
	remember(report);
	return report;
}

void Core::scan_loaded_objects() const
{
	{
		std::lock_guard lock(mu_);
		if (!tr_ || tr_->mode != Mode::wait_free || objects_at_split_.empty())
			return;
	}
	// Without mu_: dl_iterate_phdr takes the dynamic loader's lock, and a library's
	// constructor running under that lock may reach a quiescence point (which takes mu_).
	auto now = loaded_objects();
	std::lock_guard lock(mu_);
	if (!tr_ || tr_->mode != Mode::wait_free || objects_at_split_.empty())
		return;
	for (const auto &o : now) {
		if (std::binary_search(objects_at_split_.begin(), objects_at_split_.end(), o) ||
		    std::find(split_seen_.begin(), split_seen_.end(), o) != split_seen_.end())
			continue;
		split_seen_.push_back(o);
		StatusSnapshot::LoadedWhileSplit entry;
		entry.name = o.first.empty() ? fmt::format("object at {:#x}", o.second) : o.first;
		entry.transition = tr_->id;
		entry.note = fmt::format(
		    "{} was loaded (dlopen) while views {} and {} both exist (transition {}): its "
		    "text is shared between them and cannot be unshared until one view "
		    "remains",
		    entry.name, tr_->old_view, tr_->new_view, tr_->id);
		loaded_while_split_.push_back(std::move(entry));
	}
}

StatusSnapshot Core::status() const
{
	StatusSnapshot s;
	s.views_available = views_available_;
	s.views_note = views_note_;
	s.membarrier_sync_core = membarrier_;
	s.membarrier_note = membarrier_note_;
	s.slow_path_entries = slow_path_entries.load(std::memory_order_relaxed);
	if (probe_page_) {
		ViewResult probe = views_->share(probe_page_, 4096);
		if (probe.ok())
			s.single_view = true;
		else if (probe.error == EPERM)
			s.single_view = false;
	}
	scan_loaded_objects();
	std::lock_guard lock(mu_);
	s.migrated_on_wake = migrated_on_wake_;
	s.loaded_while_split = loaded_while_split_;
	s.base_view = base_view_;
	if (tr_) {
		s.transition = tr_->id;
		s.target_view = tr_->target_view;
		if (tr_->mode == Mode::wait_free)
			s.transition_state =
			    tr_->phase == Phase::reverting ? Outcome::reverting : Outcome::pending;
	}
	for (const auto &r : records_)
		s.threads.push_back(info_locked(*r));
	s.exempt_threads = exempt_;
	if (views_available_) {
		try {
			s.left_behind = left_behind_infos_locked();
		} catch (...) {
		}
	}
	for (const auto &a : applied_)
		s.applied.push_back(a.info);
	s.last_report = last_report_;
	return s;
}

std::vector<std::shared_ptr<CodeChange>> Core::applied_changes() const
{
	std::lock_guard lock(mu_);
	std::vector<std::shared_ptr<CodeChange>> out;
	out.reserve(applied_.size());
	for (const auto &a : applied_)
		out.push_back(a.change);
	return out;
}

void forget_runtime_after_fork() noexcept
{
	ThreadHandle &handle = tl_handle;
	// Leaked on purpose: destroying the parent's Core could take a lock copied in the locked
	// state. A static slot, no allocation; a later fork overwrites it (leaking again).
	alignas(
	    std::shared_ptr<Core>) static unsigned char graveyard[sizeof(std::shared_ptr<Core>)];
	if (handle.core)
		new (graveyard) std::shared_ptr<Core>(std::move(handle.core));
	handle.record = nullptr;
	transitions_in_flight.store(0, std::memory_order_seq_cst);
}

void quiescence_slow_path() noexcept
{
	ThreadHandle &handle = tl_handle;
	if (handle.record)
		handle.core->handshake(*handle.record);
}

} // namespace atlas::detail

namespace atlas
{

void blocking_enter() noexcept
{
	auto &handle = detail::tl_handle;
	if (handle.record)
		handle.core->blocking_enter(*handle.record);
}

void blocking_exit() noexcept
{
	auto &handle = detail::tl_handle;
	if (handle.record)
		handle.core->blocking_exit(*handle.record);
}

} // namespace atlas
