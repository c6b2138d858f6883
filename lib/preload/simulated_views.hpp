// Simulated address-space views for the preload library's tests (ATLAS_PRELOAD_TEST_SIMULATED_
// VIEWS=1, off by default): the same simulation the runtime's unit tests use, so that
// wait-free mode and the dlopen note run natively, on a kernel without views. Nothing
// is unshared: every "view" runs the same code; only the bookkeeping (which thread is in
// which view, which views exist, which is the base) is simulated.
#ifndef ATLAS_PRELOAD_SIMULATED_VIEWS_HPP
#define ATLAS_PRELOAD_SIMULATED_VIEWS_HPP

#include <atlas/runtime.hpp>

#include <map>
#include <mutex>
#include <set>
#include <sys/types.h>

namespace atlas::preload
{

class SimulatedViews final : public ViewOps
{
public:
	ViewResult create() override;
	ViewResult remove(ViewId id) override;
	ViewResult migrate(ViewId id) override;
	ViewResult current() override;
	ViewResult switch_base() override;

	// The calling thread starts in `view` (a new thread runs in its creator's view).
	void place_caller(ViewId view) noexcept;

private:
	std::mutex mu_;
	std::map<pid_t, ViewId> where_;
	std::set<ViewId> live_{0};
	ViewId base_ = 0;
	ViewId next_ = 1;
};

} // namespace atlas::preload

#endif
