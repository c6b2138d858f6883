// The runtime's state: registry, transition state machine, views, event log.
#ifndef ATLAS_RUNTIME_CORE_HPP
#define ATLAS_RUNTIME_CORE_HPP

#include <atlas/runtime.hpp>

#include "event_log.hpp"

#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace atlas::detail
{

extern std::atomic<std::uint64_t> slow_path_entries;

struct ThreadRecord {
	pid_t tid = 0;
	std::string name;
	bool comm_name = false; // no name given: report the thread's current comm
	// Written by the owning thread; read by the patcher without the owner's cooperation.
	// seq_cst against transitions_in_flight: see Core::blocking_exit().
	std::atomic<ThreadState> state{ThreadState::running};
	std::atomic<std::int64_t> last_quiescence_ns{0};
	// Written only by the owning thread, under Core::mu_; the owner may read it unlocked.
	std::uint64_t acked_gen = 0;
	// Guarded by Core::mu_.
	ViewId view = 0;
	std::int64_t arrived_ns = 0;    // when it parked or migrated for acked_gen
	std::uint64_t reported_gen = 0; // generation whose arrival is in the event log
	std::string error;              // last failed migration
	// Bracketed calls entered (blocking_enter()); written by the owner only. The patcher's
	// quiescence check of a blocked thread holds for one call: it is asked again once this
	// changes. Guarded by mu_: the generation and call for which it passed.
	std::atomic<std::uint64_t> blocked_calls{0};
	std::uint64_t quiescent_gen = 0;
	std::uint64_t quiescent_call = 0;
};

enum class Operation { apply, revert };

enum class Phase {
	gathering, // global: waiting for every thread to park or block
	applying,  // global: all quiescent, the patcher writes
	migrating, // wait-free: the change is in target_view, threads move there
	reverting, // wait-free: old_view is the target again
};

struct Transition {
	std::uint64_t id = 0;
	std::uint64_t gen = 0; // a new generation on every change of target
	Mode mode = Mode::global;
	Phase phase = Phase::gathering;
	Operation op = Operation::apply;
	std::shared_ptr<CodeChange> change;
	std::string identity;
	ViewId target_view = 0;
	ViewId old_view = 0;
	ViewId new_view = 0;
	std::int64_t started_ns = 0;     // the request
	std::int64_t gen_started_ns = 0; // the current generation
};

struct AppliedEntry {
	AppliedChange info;
	std::shared_ptr<CodeChange> change;
};

class Core : public std::enable_shared_from_this<Core>
{
public:
	explicit Core(RuntimeOptions options);
	~Core();

	Result register_current_thread(std::string_view name);
	Result unregister_current_thread();
	void unregister(ThreadRecord *record) noexcept;
	Result exempt_thread(pid_t tid, bool follows_base);
	Result follow_base();

	Report apply(std::shared_ptr<CodeChange> change, Request request);
	Report revert(std::string_view identity, Request request);
	Report wait(std::chrono::milliseconds deadline);
	Report revert_pending(std::chrono::milliseconds deadline);
	StatusSnapshot status() const;
	std::vector<std::shared_ptr<CodeChange>> applied_changes() const;

	// On the record's own thread.
	void handshake(ThreadRecord &record) noexcept;
	void blocking_enter(ThreadRecord &record) noexcept;
	void blocking_exit(ThreadRecord &record) noexcept;

private:
	using Events = std::vector<std::pair<const char *, nlohmann::json>>;
	using Deadline = std::chrono::steady_clock::time_point;

	// The checks against applied_ (mu_ held): apply: not already applied, every change it
	// stacks on applied (the same objects); revert: applied (`change` is set to it), no later
	// change replacing one of its functions or stacked on it. False with `report` filled when
	// the request must not start.
	bool admissible_locked(Operation op, std::shared_ptr<CodeChange> &change,
	                       std::string_view identity, Report &report) const;
	Report start(Operation op, std::shared_ptr<CodeChange> change, std::string identity,
	             Request request);
	Report run_global(Operation op, std::shared_ptr<CodeChange> change, std::string identity,
	                  Deadline deadline, Report report);
	Report run_wait_free(Operation op, std::shared_ptr<CodeChange> change, std::string identity,
	                     Deadline deadline, Report report);
	Report wait_wait_free(std::unique_lock<std::mutex> &lock, Deadline deadline, Report report);
	// Common start of wait() and revert_pending() (`verb` names the caller in messages):
	// refuses on a registered thread, or unless a wait-free transition is pending and no
	// other patcher call runs. On success `lock` holds mu_, the patcher is marked busy and
	// `report` names the transition; otherwise `report` carries the refusal, lock not held.
	bool begin_pending_call(const char *verb, std::unique_lock<std::mutex> &lock,
	                        Report &report);
	void finish_locked(Report &report); // ends the transition: tr_ reset, counters, busy
	Result unknown_threads_check();
	std::vector<ThreadInfo> lagging_locked() const;
	ThreadInfo info_locked(const ThreadRecord &record) const;
	// The name status and events show: the thread's current comm if it registered without
	// a name (programs name threads after creating them), else the name it gave.
	std::string name_locked(const ThreadRecord &record) const;
	void set_generation_locked(std::uint64_t gen);
	Deadline deadline_of(std::chrono::milliseconds deadline) const;
	void remember(const Report &report);
	// Whether a thread found blocked counts as quiescent for the transition in progress: the
	// quiescence check (blocked_may_count) once per bracketed call and generation; a refusal
	// goes into the record's error.
	bool blocked_counts_locked(ThreadRecord &record) const;
	// After a global transition or none (mu_ held): a thread that woke in a view other than
	// the base (a wait-free transition retired it while the thread was blocked) moves there.
	void follow_base_locked(ThreadRecord &record) noexcept;
	// Objects loaded since the views split (dl_iterate_phdr, called without mu_).
	void scan_loaded_objects() const;
	// At start, with views: MMVIEW_UNSHARE the text of every loaded object (else no views).
	void unshare_text();

	const RuntimeOptions options_;
	std::unique_ptr<ViewOps> views_;
	mutable EventLog log_;
	bool views_available_ = false;
	std::string views_note_;
	std::uintptr_t probe_page_ = 0; // ViewOps::share probe (single_view); 0: none
	bool membarrier_ = false;
	std::string membarrier_note_;

	mutable std::mutex mu_;
	std::condition_variable cv_patcher_; // a thread parked, migrated, blocked or exited
	std::condition_variable cv_workers_; // a global transition released its threads
	std::vector<std::unique_ptr<ThreadRecord>> records_;
	std::vector<pid_t> exempt_;
	// Threads that are not registered (exempt ones, callers of follow_base() and, with
	// refuse_unknown_threads off, unknown ones): the view each was last known to be in.
	// Nobody migrates them: after a wait-free transition retired their view they stay there
	// (and keep it live) until they call follow_base(). Pruned of exited threads in status().
	struct Outside {
		ViewId view = 0;
		bool follows_base = false; // promised to call follow_base() when it wakes
	};
	mutable std::map<pid_t, Outside> outside_;
	// After a base switch to `new_base` (mu_ held): the unregistered threads still in
	// `old_view`, excluding the caller (the patcher); adds unknown threads first when they are
	// allowed. Fills the event's thread list and returns the part of the report message.
	std::string left_behind_locked(ViewId old_view, ViewId new_base, nlohmann::json &threads);
	std::vector<ThreadInfo> left_behind_infos_locked() const;
	std::optional<Transition> tr_;
	bool patcher_busy_ = false; // one patcher at a time
	std::uint64_t gen_counter_ = 0;
	std::uint64_t transition_counter_ = 0;
	std::uint64_t released_gen_ = 0; // global: threads parked for gen <= this may go
	ViewId base_view_ = 0;
	std::vector<AppliedEntry> applied_;
	std::optional<Report> last_report_;
	std::vector<std::pair<pid_t, std::string>> exited_during_;
	std::uint64_t migrated_on_wake_ = 0;
	// Loaded objects ({name, address}) when the current wait-free transition created its
	// view, and those that appeared since (status: loaded_while_split).
	std::vector<std::pair<std::string, std::uintptr_t>> objects_at_split_;
	mutable std::vector<StatusSnapshot::LoadedWhileSplit> loaded_while_split_;
	mutable std::vector<std::pair<std::string, std::uintptr_t>> split_seen_;

	// The newest generation, for the unlocked check on the slow path: a thread whose acked_gen
	// equals it has nothing to do. Release/acquire: a thread that sees a new generation then
	// takes mu_ anyway, the ordering only keeps the unlocked check from being stale forever.
	std::atomic<std::uint64_t> gen_published_{0};
	// base_view_, for blocking_exit()'s unlocked check: stored before the transition that
	// switched the base decrements transitions_in_flight, so a thread that reads that
	// decrement reads the new base too (both seq_cst).
	std::atomic<ViewId> base_published_{0};
};

} // namespace atlas::detail

#endif
