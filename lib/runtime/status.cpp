// Status and events: the snapshot (status()), thread descriptions, the threads left in a
// retired view, the objects loaded while two views exist, and the report and event formatting
// both modes share (docs/live-patching.md, "Event log").
#include "core.hpp"

#include <algorithm>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

namespace atlas::detail
{

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

} // namespace atlas::detail
