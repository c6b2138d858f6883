// Applied-change bookkeeping: which changes are applied, oldest first, and whether a request
// may start against them (already applied, stacking, last in first out); docs/live-patching.md,
// "Stacking".
#include "core.hpp"

#include <algorithm>
#include <fmt/format.h>

namespace atlas::detail
{

namespace
{

bool overlaps(const std::vector<AddressRange> &a, const std::vector<AddressRange> &b)
{
	for (const auto &x : a)
		for (const auto &y : b)
			if (x.start < y.end && y.start < x.end)
				return true;
	return false;
}

} // namespace

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
		return op == Operation::apply ? admissible_apply_locked(*change, identity, report)
		                              : admissible_revert_locked(change, identity, report);
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

bool Core::admissible_apply_locked(const CodeChange &change, std::string_view identity,
                                   Report &report) const
{
	for (const auto &a : applied_) {
		if (a.info.identity == identity) {
			report.mode = a.info.mode;
			report.outcome = Outcome::already_applied;
			report.message = fmt::format("{} is already applied (transition {})",
			                             identity, a.info.transition);
			return false;
		}
	}
	// Stacking: what this change uses of earlier ones must still be there.
	for (const auto &base : change.stacked_on()) {
		if (!base)
			continue;
		auto same = [&](const AppliedEntry &a) { return a.change.get() == base.get(); };
		if (std::any_of(applied_.begin(), applied_.end(), same))
			continue;
		const std::string name = base->identity();
		auto by_name = [&](const AppliedEntry &a) { return a.info.identity == name; };
		const bool again = std::any_of(applied_.begin(), applied_.end(), by_name);
		report.message = fmt::format(
		    "apply: {} was loaded on top of {} and uses its code or data, but {}; nothing "
		    "changed. Load {} again (atlas apply loads it anew, against the patches "
		    "applied then){}",
		    identity, name,
		    again ? "that copy of it was reverted and unmapped since (it is applied again "
		            "as another copy)"
		          : "it is no longer applied (it was reverted after " +
		                std::string(identity) + " was loaded)",
		    identity,
		    again
		        ? ""
		        : fmt::format(", after applying {} again if {} needs it", name, identity));
		return false;
	}
	return true;
}

bool Core::admissible_revert_locked(std::shared_ptr<CodeChange> &change, std::string_view identity,
                                    Report &report) const
{
	auto it = std::find_if(applied_.begin(), applied_.end(),
	                       [&](const auto &a) { return a.info.identity == identity; });
	if (it == applied_.end()) {
		report.message = fmt::format("revert: {} is not applied", identity);
		return false;
	}
	// Last in, first out per function: a later change of the same function goes first; so
	// does a later change stacked on this one (it uses its code or data).
	auto mine = it->change->replaced_functions();
	for (auto later = it + 1; later != applied_.end(); ++later) {
		if (overlaps(mine, later->change->replaced_functions())) {
			report.message =
			    fmt::format("revert: {} replaces functions that the later "
			                "change {} also replaces; revert {} first",
			                identity, later->info.identity, later->info.identity);
			return false;
		}
		for (const auto &base : later->change->stacked_on()) {
			if (base.get() == it->change.get()) {
				report.message = fmt::format(
				    "revert: the later change {} stacks on {} (it uses its code or "
				    "data); revert {} first",
				    later->info.identity, identity, later->info.identity);
				return false;
			}
		}
	}
	change = it->change;
	return true;
}

void Core::record_change_locked(Operation op, const std::string &identity, Mode mode,
                                std::uint64_t transition, std::shared_ptr<CodeChange> change,
                                std::chrono::nanoseconds duration)
{
	if (op == Operation::revert) {
		std::erase_if(applied_, [&](const auto &a) { return a.info.identity == identity; });
		return;
	}
	AppliedEntry entry;
	entry.info.identity = identity;
	entry.info.mode = mode;
	entry.info.transition = transition;
	entry.info.duration = duration;
	entry.change = std::move(change);
	applied_.push_back(std::move(entry));
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

} // namespace atlas::detail
