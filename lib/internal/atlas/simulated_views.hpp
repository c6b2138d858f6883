// Simulated address-space views: the one model of the kernel's view semantics (docs/mmview.2)
// that the runtime's unit tests (tests/unit/runtime/helpers.hpp) and the preload library's
// test hook (ATLAS_PRELOAD_TEST_SIMULATED_VIEWS=1) run wait-free mode on, on a kernel without
// views. Only the bookkeeping is simulated: which views exist, which are deleted, which is the
// base and which view each thread is in; nothing is unshared, every view runs the same code.
// As the kernel:
// - CREATE copies the caller's view, a deleted one included; ids are never reused;
// - DELETE of the base is EPERM, of no view or a deleted one EINVAL; a deleted view lives on
//   while a thread is in it (current() still names it, the thread may migrate away or create);
// - MIGRATE into no view or a deleted one is EINVAL; it returns the view left; into the
//   caller's own view it does nothing and returns its id, also when that view is deleted;
// - SWITCH_BASE from a deleted view is EINVAL, else it returns the caller's view;
// - SHARE and UNSHARE are EPERM while more than one view is live: a view that is not deleted,
//   or a deleted one a living thread is still in.
// A thread the simulation has not seen is in the base view it started in (view 0) unless
// place_caller() put it elsewhere (a new thread starts in its creator's view).
// Checked against the kernel: tests/contract/view_semantics.hpp states these rules as test
// cases, run natively on this simulation (unit.contract.SimulatedViews.*) and in the guest on
// the views kernel and on this simulation side by side (guest.view_semantics, which fails
// where the two disagree). The kernel is the truth.
#ifndef ATLAS_SIMULATED_VIEWS_HPP
#define ATLAS_SIMULATED_VIEWS_HPP

#include <atlas/runtime.hpp>

#include <cerrno>
#include <csignal>
#include <map>
#include <mutex>
#include <set>
#include <sys/syscall.h>
#include <unistd.h>

namespace atlas
{

class SimulatedViews : public ViewOps
{
public:
	// Test knobs: every call fails ENOSYS (no views), CREATE fails ENOMEM.
	bool unavailable = false;
	bool fail_create = false;

	ViewResult create() override
	{
		std::lock_guard lock(mu_);
		if (unavailable)
			return {0, ENOSYS};
		if (fail_create)
			return {0, ENOMEM};
		try {
			views_.insert(next_);
		} catch (...) {
			return {0, ENOMEM};
		}
		creates_++;
		return {next_++, 0};
	}
	ViewResult remove(ViewId id) override
	{
		std::lock_guard lock(mu_);
		if (unavailable)
			return {0, ENOSYS};
		if (id == base_)
			return {0, EPERM};
		if (!views_.count(id) || deleted_.count(id))
			return {0, EINVAL};
		try {
			deleted_.insert(id);
		} catch (...) {
			return {0, ENOMEM};
		}
		return {0, 0};
	}
	ViewResult migrate(ViewId id) override
	{
		std::lock_guard lock(mu_);
		if (unavailable)
			return {0, ENOSYS};
		if (id == view_of(gettid()))
			return {id, 0}; // nothing to do, even in a deleted view
		if (!views_.count(id) || deleted_.count(id))
			return {0, EINVAL};
		try {
			ViewId &here = where_.try_emplace(gettid(), 0).first->second;
			const ViewId previous = here;
			here = id;
			return {previous, 0};
		} catch (...) {
			return {0, ENOMEM};
		}
	}
	ViewResult current() override
	{
		if (unavailable)
			return {0, ENOSYS};
		return {current_of(gettid()), 0};
	}
	ViewResult switch_base() override
	{
		std::lock_guard lock(mu_);
		if (unavailable)
			return {0, ENOSYS};
		const ViewId here = view_of(gettid());
		if (deleted_.count(here))
			return {0, EINVAL};
		base_ = here;
		return {here, 0};
	}
	ViewResult unshare(std::uintptr_t, std::size_t) override
	{
		return one_view_or_eperm();
	}
	ViewResult share(std::uintptr_t, std::size_t) override
	{
		return one_view_or_eperm();
	}

	// The calling thread is in `view` (a new thread in its creator's view).
	void place_caller(ViewId view) noexcept
	{
		std::lock_guard lock(mu_);
		try {
			where_[gettid()] = view;
		} catch (...) {
		}
	}
	// The calling thread is about to exit: it no longer keeps a deleted view live. (A thread
	// that has exited is not counted either; this covers the moment before it is gone.)
	void forget_caller() noexcept
	{
		std::lock_guard lock(mu_);
		try {
			exited_.insert(gettid());
		} catch (...) {
		}
	}

	ViewId current_of(pid_t tid)
	{
		std::lock_guard lock(mu_);
		return view_of(tid);
	}
	ViewId current_of_caller()
	{
		return current_of(gettid());
	}
	ViewId base()
	{
		std::lock_guard lock(mu_);
		return base_;
	}
	// Exists and is not deleted.
	bool live(ViewId view)
	{
		std::lock_guard lock(mu_);
		return views_.count(view) && !deleted_.count(view);
	}
	int creates()
	{
		std::lock_guard lock(mu_);
		return creates_;
	}

private:
	ViewId view_of(pid_t tid) const
	{
		auto it = where_.find(tid);
		return it == where_.end() ? 0 : it->second;
	}
	ViewResult one_view_or_eperm()
	{
		std::lock_guard lock(mu_);
		if (unavailable)
			return {0, ENOSYS};
		std::size_t live = 0;
		for (ViewId v : views_)
			if (!deleted_.count(v))
				live++;
		std::set<ViewId> occupied; // deleted views a living thread is in
		try {
			for (const auto &[tid, v] : where_)
				if (deleted_.count(v) && !exited_.count(tid) &&
				    syscall(SYS_tgkill, getpid(), tid, 0) == 0)
					occupied.insert(v);
		} catch (...) {
			return {0, ENOMEM};
		}
		return live + occupied.size() > 1 ? ViewResult{0, EPERM} : ViewResult{0, 0};
	}

	std::mutex mu_;
	std::map<pid_t, ViewId> where_;
	std::set<ViewId> views_{0};
	std::set<ViewId> deleted_;
	std::set<pid_t> exited_;
	ViewId base_ = 0;
	ViewId next_ = 1;
	int creates_ = 0;
};

} // namespace atlas

#endif
