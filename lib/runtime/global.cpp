// Global mode: gathering -> applying -> released (docs/live-patching.md, "Global mode"). The
// patcher publishes the transition, every registered thread parks (or counts as blocked), the
// patcher writes the change in the base view and releases them.
#include "core.hpp"

#include <algorithm>
#include <csignal>
#include <fmt/format.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace atlas::detail
{

namespace
{

// Blocks every signal while parked: a handler running on a parked thread could execute code
// that is being rewritten.
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

void Core::park_locked(ThreadRecord &record, std::uint64_t gen, std::int64_t now,
                       std::unique_lock<std::mutex> &lock) noexcept
{
	record.acked_gen = gen;
	record.arrived_ns = now;
	record.state.store(ThreadState::parked, std::memory_order_seq_cst);
	cv_patcher_.notify_all();
	{
		SignalsBlocked no_signals;
		cv_workers_.wait(lock, [&] { return released_gen_ >= gen; });
	}
	record.state.store(ThreadState::running, std::memory_order_seq_cst);
	// Back to the application, even if the patcher's next attempt has begun meanwhile (it
	// parks again at its next point, after running). A thread that parked in a retired view
	// follows the base first.
	follow_base_locked(record);
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
	publish_locked(Mode::global, op, change, identity, monotonic_ns(), base_view_, base_view_);
	report.transition = tr_->id;
	if (!gather_locked(lock, deadline, report, events)) {
		lock.unlock();
		log_.emit_all(events);
		return report;
	}
	tr_->phase = Phase::applying;
	lock.unlock();

	// Everyone registered is parked or blocked, and nobody can register: the authoritative
	// check for threads outside the registry.
	Expected<void> known = unknown_threads_check();
	Expected<void> changed = known ? call_change(*change, op) : Expected<void>{};
	bool barrier_ok = true;
	if (known && changed && membarrier_) {
		barrier_ok =
		    syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE, 0, 0) == 0;
	}

	lock.lock();
	conclude_global_locked(known, changed, barrier_ok, report, events);
	const bool finished = report.outcome == Outcome::finished;
	release_global_locked(finished, report, events);
	if (finished)
		record_change_locked(op, identity, Mode::global, report.transition, change,
		                     report.duration);
	lock.unlock();
	log_.emit_all(events);
	if (finished && op == Operation::revert)
		change->unreachable();
	return report;
}

bool Core::gather_locked(std::unique_lock<std::mutex> &lock, Deadline deadline, Report &report,
                         Events &events)
{
	const auto park_bound = std::max(options_.park_bound, std::chrono::milliseconds(1));
	auto attempt_end = std::min(deadline, std::chrono::steady_clock::now() + park_bound);
	unsigned attempts = 1;
	std::vector<ThreadInfo> last_lagging;
	for (;;) {
		report.lagging = lagging_locked();
		if (report.lagging.empty())
			return true;
		const auto now = std::chrono::steady_clock::now();
		if (now >= attempt_end && now < deadline) {
			// Nobody stays parked longer than the bound: release this attempt's
			// threads, let the program run as long again, then gather anew.
			last_lagging = report.lagging;
			released_gen_ = tr_->gen;
			cv_workers_.notify_all();
			cv_patcher_.wait_until(lock, std::min(deadline, now + park_bound));
			if (std::chrono::steady_clock::now() >= deadline) {
				report.lagging = std::move(last_lagging);
			} else {
				set_generation_locked(gen_counter_ + 1);
				tr_->gen = gen_counter_;
				tr_->gen_started_ns = monotonic_ns();
				attempt_end = std::min(deadline, std::chrono::steady_clock::now() +
				                                     park_bound);
				attempts++;
				continue;
			}
		}
		if (std::chrono::steady_clock::now() >= deadline) {
			refuse_gathering_locked(attempts, park_bound, report, events);
			return false;
		}
		cv_patcher_.wait_until(lock, attempt_end);
	}
}

void Core::refuse_gathering_locked(unsigned attempts, std::chrono::milliseconds park_bound,
                                   Report &report, Events &events)
{
	report.outcome = Outcome::refused;
	annotate_where(report.lagging);
	// A thread with a note reached points but a check (e.g. the preload's stack check) held
	// it back: adding points would not help it.
	const bool all_held_back = std::all_of(report.lagging.begin(), report.lagging.end(),
	                                       [](const ThreadInfo &t) { return !t.note.empty(); });
	report.message = fmt::format(
	    "refused, unchanged: deadline expired before every thread reached a "
	    "quiescence point ({} attempt{} of at most {} ms parked); lagging: {}; "
	    "{}",
	    attempts, attempts == 1 ? "" : "s", park_bound.count(), describe(report.lagging),
	    all_held_back ? "each note says why the thread could not complete; "
	                    "retry when they "
	                    "have left that code, or with a longer deadline"
	                  : "make them call atlas_quiescence_point() or bracket "
	                    "their blocking "
	                    "calls, or retry with a longer deadline");
	nlohmann::json refused_threads = threads_json(report.lagging);
	release_global_locked(false, report, events);
	events.back().second["lagging"] = std::move(refused_threads);
}

void Core::conclude_global_locked(const Expected<void> &known, const Expected<void> &changed,
                                  bool barrier_ok, Report &report, Events &events)
{
	const Operation op = tr_->op;
	const std::string &identity = tr_->identity;
	if (!known) {
		report.outcome = Outcome::refused;
		report.message = fmt::format("refused, unchanged: {}", known.error().message);
	} else if (!changed) {
		report.outcome = Outcome::failed;
		report.message = fmt::format("{} of {} failed, nothing changed: {}", op_name(op),
		                             identity, changed.error().message);
	} else {
		report.outcome = Outcome::finished;
		report.message = fmt::format("{} {}: done in global mode", op_name(op), identity);
		if (!barrier_ok)
			report.message += "; warning: membarrier SYNC_CORE failed";
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
}

void Core::release_global_locked(bool applied, Report &report, Events &events)
{
	const std::uint64_t gen = tr_->gen;
	const Operation op = tr_->op;
	const std::string identity = tr_->identity;
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
}

} // namespace atlas::detail
