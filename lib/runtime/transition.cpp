// What both modes share: a request's admission (mode, one patcher at a time, unknown
// threads), the transition's publication and end, and which threads it still waits for
// (docs/live-patching.md, "Modes and the transition state machine").
#include "core.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <set>
#include <thread>
#include <unistd.h>

namespace atlas::detail
{

const char *op_name(Operation op)
{
	return op == Operation::apply ? "apply" : "revert";
}

Expected<void> call_change(CodeChange &change, Operation op) noexcept
{
	// The change is the caller's code: what it throws stops at the wall (guard()).
	bool returned = false;
	Expected<void> done = guard([&] {
		Expected<void> r = op == Operation::apply ? change.apply() : change.revert();
		returned = true;
		return r;
	});
	if (done || returned)
		return done;
	Error thrown = done.error();
	try {
		thrown.message = "the change threw: " + thrown.message;
	} catch (...) {
	}
	return thrown;
}

Report Core::start(Operation op, std::shared_ptr<CodeChange> change, std::string identity,
                   Request request)
{
	Report report;
	report.change = identity;
	if (on_registered_thread()) {
		report.message = fmt::format(
		    "{}: called from registered thread {}; a transition waits for every registered "
		    "thread, so call it from an unregistered control thread",
		    op_name(op), gettid());
		return report;
	}
	if (!choose_mode(*change, identity, request.mode, report) ||
	    !claim_patcher(op, change, identity, report))
		return report;
	const Mode mode = report.mode;
	Deadline deadline = deadline_of(request.deadline);
	log_.emit("request", {{"op", op_name(op)},
	                      {"change", identity},
	                      {"mode", to_string(mode)},
	                      {"deadline_ms", std::chrono::duration_cast<std::chrono::milliseconds>(
	                                          deadline - std::chrono::steady_clock::now())
	                                          .count()}});
	Expected<void> known = unknown_threads_check();
	if (!known) {
		report.message = fmt::format("refused, unchanged: {}", known.error().message);
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

bool Core::choose_mode(const CodeChange &change, const std::string &identity, Mode requested,
                       Report &report) const
{
	bool global_required = false;
	try {
		global_required = change.requires_global();
	} catch (...) {
		report.message = "the change's requires_global() threw";
		return false;
	}
	Mode mode = requested;
	if (mode == Mode::automatic)
		mode = views_available_ && !global_required ? Mode::wait_free : Mode::global;
	report.mode = mode;
	if (mode == Mode::wait_free && !views_available_) {
		report.message =
		    fmt::format("wait-free mode unavailable: {}; use global mode", views_note_);
		return false;
	}
	if (mode == Mode::wait_free && global_required) {
		report.message = fmt::format("{} requires global mode (it changes a protocol "
		                             "between threads); request global or automatic mode",
		                             identity);
		return false;
	}
	return true;
}

bool Core::claim_patcher(Operation op, std::shared_ptr<CodeChange> &change,
                         const std::string &identity, Report &report)
{
	std::lock_guard lock(mu_);
	if (patcher_busy_ || tr_) {
		report.message =
		    tr_ ? fmt::format("busy: transition {} is {}; wait() or "
		                      "revert_pending() first",
		                      tr_->id,
		                      tr_->phase == Phase::reverting ? "reverting" : "pending")
		        : "busy: another transition is running; retry when it "
		          "has finished";
		return false;
	}
	// applied_ changes only while a patcher is busy: checked again now, so that a transition
	// that ended since the caller's check cannot slip through (a patch stacked on one that
	// was reverted meanwhile, an apply of the same identity).
	Report again = report;
	if (!admissible_locked(op, change, identity, again)) {
		report = std::move(again);
		return false;
	}
	patcher_busy_ = true;
	return true;
}

void Core::publish_locked(Mode mode, Operation op, std::shared_ptr<CodeChange> change,
                          std::string identity, std::int64_t started_ns, ViewId old_view,
                          ViewId new_view)
{
	Transition tr;
	tr.id = ++transition_counter_;
	tr.mode = mode;
	tr.phase = mode == Mode::global ? Phase::gathering : Phase::migrating;
	tr.op = op;
	tr.change = std::move(change);
	tr.identity = std::move(identity);
	tr.started_ns = started_ns;
	tr.gen_started_ns = monotonic_ns();
	tr.old_view = old_view;
	tr.target_view = tr.new_view = new_view;
	tr_ = std::move(tr);
	set_generation_locked(gen_counter_ + 1);
	tr_->gen = gen_counter_;
	// seq_cst: the Dekker pairing with blocking_exit() (state store, then this load).
	transitions_in_flight.fetch_add(1, std::memory_order_seq_cst);
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

void Core::set_generation_locked(std::uint64_t gen)
{
	gen_counter_ = gen;
	gen_published_.store(gen, std::memory_order_release);
}

Core::Deadline Core::deadline_of(std::chrono::milliseconds deadline) const
{
	if (deadline.count() <= 0)
		deadline = options_.default_deadline;
	return std::chrono::steady_clock::now() + deadline;
}

void Core::remember(const Report &report)
{
	std::lock_guard lock(mu_);
	last_report_ = report;
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

Expected<void> Core::unknown_threads_check()
{
	if (!options_.refuse_unknown_threads)
		return {};
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
		if (!tids) {
			const int err = errno;
			return system_error(
			    err, fmt::format("cannot list /proc/self/task: {}; is /proc mounted?",
			                     errno_text(err)));
		}
		unknown.clear();
		for (pid_t tid : *tids)
			if (!known.count(tid))
				unknown.push_back(tid);
		if (unknown.empty())
			return {};
		std::this_thread::sleep_for(std::chrono::milliseconds(5));
	}
	std::vector<std::string> names;
	for (pid_t tid : unknown)
		names.push_back(fmt::format("{} ({})", tid, thread_comm(tid)));
	return make_error(
	    Errc::refused,
	    fmt::format(
	        "/proc/self/task lists threads the runtime does not know: {}; register them "
	        "(atlas_thread_register) or, if they never run code a change replaces, exempt them "
	        "(atlas_thread_exempt)",
	        fmt::join(names, ", ")));
}

} // namespace atlas::detail
