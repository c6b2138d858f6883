// Wait-free mode: the change is written in a new view, every registered thread migrates
// there at its own quiescence point (migrating), or back (reverting), and the view left
// behind is deleted (docs/live-patching.md, "Wait-free mode"). A patcher call that reaches
// its deadline first returns pending (or reverting) and the transition stays.
#include "core.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace atlas::detail
{

bool Core::migrate_locked(ThreadRecord &record, std::uint64_t gen,
                          std::unique_lock<std::mutex> &lock) noexcept
{
	const ViewId target = tr_->target_view;
	if (record.view != target) {
		// The syscall runs unlocked: it never waits for other threads.
		lock.unlock();
		ViewResult moved = views_->migrate(target);
		lock.lock();
		if (!moved.ok()) {
			// The target changed meanwhile (a revert deleted it): look again.
			if (tr_ && tr_->gen != gen)
				return true;
			// Stays lagging, listed with the error, and tries again at its next point.
			record.error = fmt::format("migrate to view {} failed: {}", target,
			                           errno_text(moved.error));
			cv_patcher_.notify_all();
			return false;
		}
		record.view = target;
		record.error.clear();
		// The target may have changed meanwhile (revert): look again.
		if (!tr_ || tr_->gen != gen)
			return true;
	}
	record.acked_gen = gen;
	record.arrived_ns = monotonic_ns();
	cv_patcher_.notify_all();
	return false;
}

Core::Prepared Core::prepare_view(Operation op, CodeChange &change, const std::string &identity)
{
	Prepared out;
	// The new view is a copy of the caller's: start from the base.
	ViewResult to_base = views_->migrate(base_view_);
	if (!to_base.ok()) {
		out.message = fmt::format("refused, unchanged: patcher could not enter base view "
		                          "{}: {}",
		                          base_view_, errno_text(to_base.error));
		return out;
	}
	// The kernel holds the views' shared mmap lock for writing through CREATE, SWITCH_BASE
	// and DELETE: each call's duration (an upper bound on that hold) goes into its event.
	const std::int64_t call_started = monotonic_ns();
	ViewResult created = views_->create();
	const std::int64_t create_ns = monotonic_ns() - call_started;
	if (!created.ok()) {
		out.message = fmt::format("refused, unchanged: creating a view failed: {}",
		                          errno_text(created.error));
		return out;
	}
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
		out.message = fmt::format("refused, unchanged: entering new view {} failed: {}",
		                          fresh, errno_text(entered.error));
		return out;
	}
	// Only this thread runs in the new view: its private text copy is ours to write.
	Expected<void> changed = call_change(change, op);
	if (!changed) {
		// Nothing outside the new view was touched: drop it.
		views_->migrate(base_view_);
		views_->remove(fresh);
		out.outcome = Outcome::failed;
		out.message = fmt::format("{} of {} failed in view {}, nothing changed: {}",
		                          op_name(op), identity, fresh, changed.error().message);
		return out;
	}
	log_.emit("change_applied", {{"op", op_name(op)}, {"change", identity}, {"view", fresh}});
	out.view = fresh;
	return out;
}

Report Core::run_wait_free(Operation op, std::shared_ptr<CodeChange> change, std::string identity,
                           Deadline deadline, Report report)
{
	const std::int64_t started = monotonic_ns();
	Prepared prepared = prepare_view(op, *change, identity);
	if (!prepared.message.empty()) {
		report.outcome = prepared.outcome;
		report.message = std::move(prepared.message);
		// Written before mu_ is taken: an event sink may call status(), which takes it.
		log_.emit(prepared.outcome == Outcome::failed ? "failed" : "refused",
		          {{"change", identity}, {"message", report.message}});
		std::lock_guard lock(mu_);
		patcher_busy_ = false;
		return report;
	}

	std::unique_lock lock(mu_);
	// Publishing: threads see it at their next point (relaxed loads on the fast path; the
	// slow path takes mu_, which orders everything the patcher wrote before).
	publish_locked(Mode::wait_free, op, change, identity, started, base_view_, prepared.view);
	report.transition = tr_->id;
	return wait_wait_free(lock, deadline, std::move(report));
}

Report Core::wait_wait_free(std::unique_lock<std::mutex> &lock, Deadline deadline, Report report)
{
	Events events;
	for (;;) {
		log_arrivals_locked(events);
		report.lagging = lagging_locked();
		log_sleepers_locked(events);
		if (report.lagging.empty())
			break;
		if (std::chrono::steady_clock::now() >= deadline) {
			pending_locked(report, events);
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
	const Transition tr = *tr_;
	lock.unlock();
	log_.emit_all(events);
	bool base_switched = false;
	std::string problems = retire_view(tr, base_switched);

	lock.lock();
	nlohmann::json behind = nlohmann::json::array();
	nlohmann::json sleepers = nlohmann::json::array();
	end_wait_free_locked(tr, base_switched, std::move(problems), behind, sleepers, report);
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

// A thread event of this generation: the thread, its view and the time from the target's
// publication to `at`.
nlohmann::json Core::moved_fields_locked(const ThreadRecord &r, std::int64_t at) const
{
	return {{"transition", tr_->id},
	        {"tid", r.tid},
	        {"name", name_locked(r)},
	        {"view", r.view},
	        {"latency_ns", at - tr_->gen_started_ns}};
}

// Threads that reached the target for this generation, and those that exited: once each.
void Core::log_arrivals_locked(Events &events)
{
	const std::uint64_t gen = tr_->gen;
	for (auto &r : records_) {
		if (r->acked_gen == gen && r->reported_gen != gen && r->view == tr_->target_view) {
			r->reported_gen = gen;
			events.emplace_back("thread_migrated",
			                    moved_fields_locked(*r, r->arrived_ns));
		}
	}
	for (const auto &[tid, name] : exited_during_)
		events.emplace_back(
		    "thread_exited",
		    nlohmann::json{{"transition", tr_->id}, {"tid", tid}, {"name", name}});
	exited_during_.clear();
}

// Blocked threads counted as quiescent in the old view (by lagging_locked()): once each per
// generation.
void Core::log_sleepers_locked(Events &events)
{
	const std::uint64_t gen = tr_->gen;
	for (auto &r : records_) {
		if (r->reported_gen == gen || r->view == tr_->target_view ||
		    r->quiescent_gen != gen ||
		    r->state.load(std::memory_order_seq_cst) != ThreadState::blocked)
			continue;
		r->reported_gen = gen;
		events.emplace_back("thread_migrates_on_wake",
		                    moved_fields_locked(*r, monotonic_ns()));
	}
}

// The deadline expired with threads lagging: the transition stays, the patcher returns.
void Core::pending_locked(Report &report, Events &events)
{
	const bool reverting = tr_->phase == Phase::reverting;
	annotate_where(report.lagging);
	report.outcome = reverting ? Outcome::reverting : Outcome::pending;
	report.transition = tr_->id;
	report.duration = std::chrono::nanoseconds(monotonic_ns() - tr_->started_ns);
	report.message = fmt::format("{}: {} of {} is in view {}; waiting for threads to reach a "
	                             "quiescence point and migrate: {}; call wait() to keep "
	                             "waiting{}",
	                             reverting ? "reverting" : "pending", op_name(tr_->op),
	                             tr_->identity, tr_->target_view, describe(report.lagging),
	                             reverting ? "" : " or revert_pending() to go back");
	events.emplace_back(
	    reverting ? "reverting" : "pending",
	    nlohmann::json{{"transition", tr_->id}, {"lagging", threads_json(report.lagging)}});
	patcher_busy_ = false;
}

std::string Core::retire_view(const Transition &tr, bool &base_switched)
{
	std::string problems;
	if (tr.phase == Phase::reverting) {
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
		return problems;
	}
	ViewResult in = views_->migrate(tr.new_view);
	std::int64_t call_started = monotonic_ns();
	ViewResult based = in.ok() ? views_->switch_base() : in;
	const std::int64_t switch_ns = monotonic_ns() - call_started;
	base_switched = based.ok();
	if (!based.ok())
		return fmt::format("; switching the base to view {} failed: {}; old view {} kept",
		                   tr.new_view, errno_text(based.error), tr.old_view);
	log_.emit("base_switched",
	          {{"transition", tr.id}, {"view", tr.new_view}, {"call_ns", switch_ns}});
	call_started = monotonic_ns();
	ViewResult removed = views_->remove(tr.old_view);
	const std::int64_t remove_ns = monotonic_ns() - call_started;
	if (removed.ok())
		log_.emit("view_deleted",
		          {{"transition", tr.id}, {"view", tr.old_view}, {"call_ns", remove_ns}});
	else
		problems = fmt::format("; deleting old view {} failed: {}", tr.old_view,
		                       errno_text(removed.error));
	return problems;
}

void Core::end_wait_free_locked(const Transition &tr, bool base_switched, std::string problems,
                                nlohmann::json &behind, nlohmann::json &sleepers, Report &report)
{
	// Registered threads asleep outside the base: in the view just retired or in one an
	// earlier transition retired. Each keeps its view live and moves when its call returns.
	const ViewId base_now =
	    tr.phase == Phase::migrating && base_switched ? tr.new_view : base_view_;
	problems += sleepers_locked(base_now, sleepers);
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
		record_change_locked(tr.op, tr.identity, Mode::wait_free, tr.id, tr.change,
		                     std::chrono::nanoseconds(monotonic_ns() - tr.started_ns));
	} else {
		report.outcome = Outcome::reverted;
		report.message = fmt::format("{} of {} reverted: every thread is back in view {}, "
		                             "nothing changed{}",
		                             op_name(tr.op), tr.identity, tr.old_view, problems);
	}
	report.lagging.clear();
	finish_locked(report);
}

std::string Core::sleepers_locked(ViewId base, nlohmann::json &sleepers) const
{
	std::vector<std::string> names;
	for (const auto &r : records_) {
		if (!views_available_ || r->view == base)
			continue;
		const std::string name = name_locked(*r);
		sleepers.push_back({{"tid", r->tid}, {"name", name}, {"view", r->view}});
		names.push_back(fmt::format("{} ({}, view {})", r->tid, name, r->view));
	}
	if (names.empty())
		return {};
	return fmt::format("; asleep in retired views, which stay live until they leave them, "
	                   "and moving to the base when their calls return: {}",
	                   fmt::join(names, ", "));
}

bool Core::begin_pending_call(const char *verb, std::unique_lock<std::mutex> &lock, Report &report)
{
	if (on_registered_thread()) {
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

Report Core::end_pending_call(std::unique_lock<std::mutex> &lock,
                              std::chrono::milliseconds deadline, Report report)
{
	report = wait_wait_free(lock, deadline_of(deadline), std::move(report));
	if (lock.owns_lock())
		lock.unlock();
	remember(report);
	return report;
}

Report Core::wait(std::chrono::milliseconds deadline)
{
	Report report;
	std::unique_lock<std::mutex> lock;
	if (!begin_pending_call("wait", lock, report))
		return report;
	return end_pending_call(lock, deadline, std::move(report));
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
	return end_pending_call(lock, deadline, std::move(report));
}

} // namespace atlas::detail
