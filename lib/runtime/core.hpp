// The runtime's state: registry, transition state machine, views, event log. One class, its
// members defined along the state machine (docs/live-patching.md, "Runtime core"):
//   probe.cpp      capability probing at creation (views, unshared text, membarrier)
//   registry.cpp   thread registry, quiescence points' slow path, blocking_enter/exit
//   transition.cpp what both modes share: admission of a request, publication, lagging, end
//   global.cpp     global mode: gathering -> applying -> release (patcher and parked threads)
//   wait_free.cpp  wait-free mode: migrating <-> reverting, pending (patcher and migrating threads)
//   applied.cpp    applied-change bookkeeping: admissibility, the applied list
//   status.cpp     status snapshot and the report/event formatting both modes share
//   proc.cpp       what /proc and the dynamic loader say (proc.hpp)
//
// Locking: one mutex (Core::mu_) guards the registry and the transition. Quiescence points
// never touch it unless a transition is in flight; the event log is written after mu_ is
// released, so a sink callback may call status().
#ifndef ATLAS_RUNTIME_CORE_HPP
#define ATLAS_RUNTIME_CORE_HPP

#include <atlas/runtime.hpp>

#include "event_log.hpp"
#include "proc.hpp"

#include "atlas/error_util.hpp"

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

// The states of a published transition, one to one with the state diagrams of
// docs/live-patching.md ("Modes and the transition state machine"). A transition ends in a
// Report whose Outcome names how (finished, refused, failed, reverted); `pending` and
// `reverting` are the outcomes of a patcher call that returned at its deadline while the
// transition stays in migrating or reverting. Global mode's "released" is no state: it is
// released_gen_ reaching the generation, which lets the parked threads go.
enum class Phase {
	gathering, // global: waiting for every thread to park or block
	applying,  // global: all quiescent, the patcher writes
	migrating, // wait-free: the change is in target_view, threads move there
	reverting, // wait-free: old_view is the target again
};

const char *op_name(Operation op);
// Runs the change's apply() or revert(); an exception becomes its failure.
Expected<void> call_change(CodeChange &change, Operation op) noexcept;
// Whether the calling thread is registered (with any runtime): such a thread must not be the
// patcher, which waits for every registered thread.
bool on_registered_thread() noexcept;

// Report and event formatting shared by both modes (status.cpp).
void annotate_where(std::vector<ThreadInfo> &threads); // ThreadInfo::where, from the kernel
std::string describe(const std::vector<ThreadInfo> &threads);
nlohmann::json threads_json(const std::vector<ThreadInfo> &threads);

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

	Expected<void> register_current_thread(std::string_view name);
	Expected<void> unregister_current_thread();
	void unregister(ThreadRecord *record) noexcept;
	Expected<void> exempt_thread(pid_t tid, bool follows_base);
	Expected<void> follow_base();

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

	// Capability probing (probe.cpp), at creation.
	void probe_views();
	void probe_membarrier();
	// At start, with views: MMVIEW_UNSHARE the text of every loaded object (else no views).
	void unshare_text();

	// Applied-change bookkeeping (applied.cpp). The checks against applied_ (mu_ held):
	// apply: not already applied, every change it stacks on applied (the same objects);
	// revert: applied (`change` is set to it), no later change replacing one of its functions
	// or stacked on it. False with `report` filled when the request must not start.
	bool admissible_locked(Operation op, std::shared_ptr<CodeChange> &change,
	                       std::string_view identity, Report &report) const;
	bool admissible_apply_locked(const CodeChange &change, std::string_view identity,
	                             Report &report) const;
	bool admissible_revert_locked(std::shared_ptr<CodeChange> &change,
	                              std::string_view identity, Report &report) const;
	// A finished transition of `change` (mu_ held): an apply joins applied_, a revert leaves.
	void record_change_locked(Operation op, const std::string &identity, Mode mode,
	                          std::uint64_t transition, std::shared_ptr<CodeChange> change,
	                          std::chrono::nanoseconds duration);

	// What both modes share (transition.cpp).
	Report start(Operation op, std::shared_ptr<CodeChange> change, std::string identity,
	             Request request);
	// The mode a request runs in (into report.mode); false with the refusal in `report`.
	bool choose_mode(const CodeChange &change, const std::string &identity, Mode requested,
	                 Report &report) const;
	// Marks the patcher busy unless a transition runs or the request is no longer admissible
	// (checked again: applied_ changes only while a patcher is busy); false with `report`.
	bool claim_patcher(Operation op, std::shared_ptr<CodeChange> &change,
	                   const std::string &identity, Report &report);
	// Publishes a transition (mu_ held) in its first state, gathering or migrating, with
	// `new_view` as its target: a transition number, a new generation, in flight.
	void publish_locked(Mode mode, Operation op, std::shared_ptr<CodeChange> change,
	                    std::string identity, std::int64_t started_ns, ViewId old_view,
	                    ViewId new_view);
	void finish_locked(Report &report); // ends the transition: tr_ reset, counters, busy
	Expected<void> unknown_threads_check();
	std::vector<ThreadInfo> lagging_locked() const;
	void set_generation_locked(std::uint64_t gen);
	Deadline deadline_of(std::chrono::milliseconds deadline) const;
	void remember(const Report &report);
	// Whether a thread found blocked counts as quiescent for the transition in progress: the
	// quiescence check (blocked_may_count) once per bracketed call and generation; a refusal
	// goes into the record's error.
	bool blocked_counts_locked(ThreadRecord &record) const;

	// Global mode (global.cpp).
	Report run_global(Operation op, std::shared_ptr<CodeChange> change, std::string identity,
	                  Deadline deadline, Report report);
	// Gathering until every registered thread is parked or blocked (true), releasing them at
	// each park bound; false when the deadline expired: then released, refused, `events`
	// filled.
	bool gather_locked(std::unique_lock<std::mutex> &lock, Deadline deadline, Report &report,
	                   Events &events);
	void refuse_gathering_locked(unsigned attempts, std::chrono::milliseconds park_bound,
	                             Report &report, Events &events);
	// The outcome of the applying phase (mu_ held), with its events.
	void conclude_global_locked(const Expected<void> &known, const Expected<void> &changed,
	                            bool barrier_ok, Report &report, Events &events);
	// Lets the parked threads go and ends the transition: finished or refused.
	void release_global_locked(bool applied, Report &report, Events &events);
	// A registered thread's side: parks for generation `gen` until it is released.
	void park_locked(ThreadRecord &record, std::uint64_t gen, std::int64_t now,
	                 std::unique_lock<std::mutex> &lock) noexcept;

	// Wait-free mode (wait_free.cpp).
	Report run_wait_free(Operation op, std::shared_ptr<CodeChange> change, std::string identity,
	                     Deadline deadline, Report report);
	struct Prepared {
		ViewId view = 0;
		Outcome outcome = Outcome::refused;
		std::string message; // empty: the change is written in `view`
	};
	// Before the transition is published: a new view from the base, the change written there
	// by the patcher alone. On failure nothing is left changed.
	Prepared prepare_view(Operation op, CodeChange &change, const std::string &identity);
	Report wait_wait_free(std::unique_lock<std::mutex> &lock, Deadline deadline, Report report);
	nlohmann::json moved_fields_locked(const ThreadRecord &r, std::int64_t at) const;
	void log_arrivals_locked(Events &events);
	void log_sleepers_locked(Events &events);
	void pending_locked(Report &report, Events &events);
	// Every thread is done: the target becomes the base and the old view is deleted
	// (migrating), or the new view is deleted (reverting). Returns what went wrong, for the
	// report's message.
	std::string retire_view(const Transition &tr, bool &base_switched);
	void end_wait_free_locked(const Transition &tr, bool base_switched, std::string problems,
	                          nlohmann::json &behind, nlohmann::json &sleepers, Report &report);
	// Registered threads asleep outside `base` (mu_ held): into `sleepers`, and the part of
	// the report's message naming them.
	std::string sleepers_locked(ViewId base, nlohmann::json &sleepers) const;
	// Common start of wait() and revert_pending() (`verb` names the caller in messages):
	// refuses on a registered thread, or unless a wait-free transition is pending and no
	// other patcher call runs. On success `lock` holds mu_, the patcher is marked busy and
	// `report` names the transition; otherwise `report` carries the refusal, lock not held.
	bool begin_pending_call(const char *verb, std::unique_lock<std::mutex> &lock,
	                        Report &report);
	// Common end of wait() and revert_pending(): waits for the transition, remembers the
	// report.
	Report end_pending_call(std::unique_lock<std::mutex> &lock,
	                        std::chrono::milliseconds deadline, Report report);
	// A registered thread's side: migrates to the target of generation `gen`. True when
	// the target changed meanwhile and the caller must look again.
	bool migrate_locked(ThreadRecord &record, std::uint64_t gen,
	                    std::unique_lock<std::mutex> &lock) noexcept;

	// Registry (registry.cpp).
	enum class Check { passed, refused, changed };
	// The thread's quiescence check (may_complete), run unlocked; `changed`: the transition
	// moved on meanwhile, look again.
	Check quiescence_check_locked(ThreadRecord &record,
	                              std::unique_lock<std::mutex> &lock) noexcept;
	// After a global transition or none (mu_ held): a thread that woke in a view other than
	// the base (a wait-free transition retired it while the thread was blocked) moves there.
	void follow_base_locked(ThreadRecord &record) noexcept;

	// Status (status.cpp).
	ThreadInfo info_locked(const ThreadRecord &record) const;
	// The name status and events show: the thread's current comm if it registered without
	// a name (programs name threads after creating them), else the name it gave.
	std::string name_locked(const ThreadRecord &record) const;
	// Objects loaded since the views split (dl_iterate_phdr, called without mu_).
	void scan_loaded_objects() const;

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
