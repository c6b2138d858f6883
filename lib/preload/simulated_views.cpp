// Simulated views (see simulated_views.hpp).
#include "simulated_views.hpp"

#include <cerrno>
#include <unistd.h>

namespace atlas::preload
{

ViewResult SimulatedViews::create()
{
	std::lock_guard lock(mu_);
	try {
		live_.insert(next_);
	} catch (...) {
		return {0, ENOMEM};
	}
	return {next_++, 0};
}

ViewResult SimulatedViews::remove(ViewId id)
{
	std::lock_guard lock(mu_);
	if (id == base_)
		return {0, EPERM};
	if (!live_.erase(id))
		return {0, EINVAL};
	return {0, 0};
}

ViewResult SimulatedViews::migrate(ViewId id)
{
	std::lock_guard lock(mu_);
	if (!live_.count(id))
		return {0, EINVAL};
	try {
		ViewId &here = where_.try_emplace(gettid(), 0).first->second;
		ViewId previous = here;
		here = id;
		return {previous, 0};
	} catch (...) {
		return {0, ENOMEM};
	}
}

ViewResult SimulatedViews::current()
{
	std::lock_guard lock(mu_);
	auto it = where_.find(gettid());
	return {it == where_.end() ? 0 : it->second, 0};
}

ViewResult SimulatedViews::switch_base()
{
	std::lock_guard lock(mu_);
	auto it = where_.find(gettid());
	const ViewId here = it == where_.end() ? 0 : it->second;
	if (!live_.count(here))
		return {0, EINVAL};
	base_ = here;
	return {here, 0};
}

void SimulatedViews::place_caller(ViewId view) noexcept
{
	std::lock_guard lock(mu_);
	try {
		where_[gettid()] = view;
	} catch (...) {
	}
}

} // namespace atlas::preload
