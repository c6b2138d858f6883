// The contract of address-space views (docs/mmview.2) as test cases that run unchanged on two
// back ends: the simulation the runtime's unit tests and the preload's test hook run on
// (lib/internal/atlas/simulated_views.hpp) and the kernel's mmview system call
// (atlas::kernel_view_ops(), lib/runtime/kernel_view_ops.cpp).
// view_semantics_native_test.cpp runs every case on the simulation (unit.contract.*);
// view_semantics_guest.cpp runs every case on both back ends in the guest on the views kernel
// (guest.view_semantics), so that the model cannot drift from the kernel unnoticed. Where they
// disagree, the kernel is the truth.
//
// View state is per process: each case runs in a child process of its own (run_case()), forked
// from a process that never made a view, so it starts with the single base view 0. A case states
// each expectation once, for both back ends; what differs between them is in Backend only.
#ifndef ATLAS_TESTS_CONTRACT_VIEW_SEMANTICS_HPP
#define ATLAS_TESTS_CONTRACT_VIEW_SEMANTICS_HPP

#include <atlas/runtime.hpp>
#include <atlas/simulated_views.hpp>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstring>
#include <exception>
#include <fcntl.h>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <sys/mman.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <utility>
#include <vector>

namespace atlas_contract
{

using atlas::ViewId;
using atlas::ViewResult;
using namespace std::chrono_literals;

// A back end: the view operations, and what a case needs to know about them.
class Backend
{
public:
	virtual ~Backend() = default;
	virtual const char *name() const = 0;
	virtual atlas::ViewOps &ops() = 0;
	// Called first on every thread a case spawns, with the view its creator was in.
	virtual void thread_started(ViewId creator_view) = 0;
	// Called last on every thread a case spawns.
	virtual void thread_exiting() = 0;
	// Whether an unshared range really diverges per view (the simulation shares all memory).
	virtual bool diverges_memory() const = 0;
};

class KernelBackend final : public Backend
{
public:
	const char *name() const override
	{
		return "kernel";
	}
	atlas::ViewOps &ops() override
	{
		return *ops_;
	}
	// Nothing to do: the kernel starts a new thread in its creator's view.
	void thread_started(ViewId) override {}
	void thread_exiting() override {}
	bool diverges_memory() const override
	{
		return true;
	}

private:
	std::unique_ptr<atlas::ViewOps> ops_ = atlas::kernel_view_ops();
};

class SimulationBackend final : public Backend
{
public:
	const char *name() const override
	{
		return "simulation";
	}
	atlas::ViewOps &ops() override
	{
		return views_;
	}
	// The simulation does not see threads start: it is told where a new thread is, as the
	// preload's pthread_create hook (lib/preload/preload.cpp) and the runtime tests' spawn()
	// (tests/unit/runtime/helpers.hpp) tell it; otherwise the thread would be in view 0.
	void thread_started(ViewId creator_view) override
	{
		views_.place_caller(creator_view);
	}
	// Nor exit: pthread_join() returns before the thread is gone (the kernel wakes the joiner
	// from mm_release(), before the thread drops its view), and the simulation tells a living
	// thread from a gone one by tgkill(), which still reaches it then.
	void thread_exiting() override
	{
		views_.forget_caller();
	}
	bool diverges_memory() const override
	{
		return false;
	}

private:
	atlas::SimulatedViews views_;
};

inline std::unique_ptr<Backend> make_kernel_backend()
{
	return std::make_unique<KernelBackend>();
}

inline std::unique_ptr<Backend> make_simulation_backend()
{
	return std::make_unique<SimulationBackend>();
}

inline std::string errno_name(int error)
{
	const char *name = strerrorname_np(error);
	return name ? name : "errno " + std::to_string(error);
}

inline std::string describe(const ViewResult &r)
{
	return r.ok() ? "returned " + std::to_string(r.value) : "failed " + errno_name(r.error);
}

// The expectations of one case. A failed one is written to `fd` at once (one line), so that
// a case that then hangs or crashes still reports it; the case goes on.
class Check
{
public:
	explicit Check(int fd) : fd_(fd) {}

	// `r` must be a success with `value`.
	void returns(const ViewResult &r, long value, const char *call, int line)
	{
		if (!r.ok() || r.value != value)
			fail(line, std::string(call) + " " + describe(r) + ", expected to return " +
			               std::to_string(value));
	}
	// `r` must be a failure with `error`.
	void fails(const ViewResult &r, int error, const char *call, int line)
	{
		if (r.ok() || r.error != error)
			fail(line, std::string(call) + " " + describe(r) + ", expected to fail " +
			               errno_name(error));
	}
	// `r` must be a new view's id (> 0); returns it, or -1.
	ViewId created(const ViewResult &r, const char *call, int line)
	{
		if (!r.ok() || r.value <= 0) {
			fail(line, std::string(call) + " " + describe(r) + ", expected a new view");
			return -1;
		}
		return r.value;
	}
	void is_true(bool ok, const char *what, int line)
	{
		if (!ok)
			fail(line, std::string(what) + " is false");
	}
	void fail(int line, const std::string &what)
	{
		std::lock_guard lock(mu_);
		failed_ = true;
		const std::string text =
		    "view_semantics.hpp:" + std::to_string(line) + ": " + what + "\n";
		(void)!write(fd_, text.data(), text.size());
	}
	bool failed() const
	{
		return failed_;
	}

private:
	std::mutex mu_;
	std::atomic<bool> failed_{false};
	int fd_;
};

#define VIEW_RETURNS(check, call, value) (check).returns((call), (value), #call, __LINE__)
#define VIEW_FAILS(check, call, error) (check).fails((call), (error), #call, __LINE__)
#define VIEW_CREATED(check, call) (check).created((call), #call, __LINE__)
#define VIEW_TRUE(check, cond) (check).is_true((cond), #cond, __LINE__)

// Steps between the threads of a case: post(n) says step n is reached; wait_for(n) waits until
// it is (10 s at most, then the case fails).
class Steps
{
public:
	explicit Steps(Check &check) : check_(check) {}
	void post(int step)
	{
		std::lock_guard lock(mu_);
		reached_ = step;
		cv_.notify_all();
	}
	void wait_for(int step, int line)
	{
		std::unique_lock lock(mu_);
		if (!cv_.wait_for(lock, 10s, [&] { return reached_ >= step; }))
			check_.fail(line, "step " + std::to_string(step) + " not reached in 10 s");
	}

private:
	Check &check_;
	std::mutex mu_;
	std::condition_variable cv_;
	int reached_ = 0;
};

// A thread that starts where its creator is, through whatever the back end needs for that.
inline std::thread spawn(Backend &b, std::function<void()> body)
{
	const ViewId here = b.ops().current().value;
	return std::thread([&b, here, body = std::move(body)] {
		b.thread_started(here);
		body();
		b.thread_exiting();
	});
}

// A private anonymous page of the case's own (the SHARE and UNSHARE probes act on it).
struct Page {
	volatile char *p = nullptr;
	std::uintptr_t start = 0;
	std::size_t len = 0;
};

inline Page map_page(Check &c)
{
	Page page;
	page.len = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
	void *p =
	    mmap(nullptr, page.len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		c.fail(__LINE__, std::string("mmap: ") + strerror(errno));
		static char fallback[1];
		p = fallback;
	}
	page.p = static_cast<volatile char *>(p);
	page.start = reinterpret_cast<std::uintptr_t>(p);
	return page;
}

// ---------------------------------------------------------------------------------------------
// The cases. `b` is the back end, `v` its operations, `c` the expectations.

// A process that never made a view has one, the base, id 0.
inline void single_view(Backend &b, Check &c)
{
	atlas::ViewOps &v = b.ops();
	const Page page = map_page(c);
	VIEW_RETURNS(c, v.current(), 0);
	VIEW_RETURNS(c, v.migrate(0), 0);
	VIEW_FAILS(c, v.migrate(1), EINVAL);
	VIEW_FAILS(c, v.remove(0), EPERM);
	VIEW_FAILS(c, v.remove(1), EINVAL);
	VIEW_FAILS(c, v.remove(-1), EINVAL);
	VIEW_RETURNS(c, v.switch_base(), 0);
	VIEW_RETURNS(c, v.unshare(page.start, page.len), 0);
	VIEW_RETURNS(c, v.share(page.start, page.len), 0);
}

// CREATE copies the caller's view (not the base) and leaves the caller where it is.
inline void create_copies_callers_view(Backend &b, Check &c)
{
	atlas::ViewOps &v = b.ops();
	const Page page = map_page(c);
	VIEW_RETURNS(c, v.unshare(page.start, page.len), 0);
	page.p[0] = 'X';
	const ViewId a = VIEW_CREATED(c, v.create());
	VIEW_RETURNS(c, v.current(), 0);
	VIEW_RETURNS(c, v.migrate(a), 0);
	VIEW_TRUE(c, page.p[0] == 'X');
	page.p[0] = 'Y';
	const ViewId n = VIEW_CREATED(c, v.create());
	VIEW_TRUE(c, n > a);
	VIEW_RETURNS(c, v.current(), a);
	VIEW_RETURNS(c, v.migrate(n), a);
	VIEW_TRUE(c, page.p[0] == 'Y'); // a copy of a, the caller's view
	VIEW_RETURNS(c, v.migrate(0), n);
	if (b.diverges_memory())
		VIEW_TRUE(c, page.p[0] == 'X'); // the base kept its own contents
}

// A thread still in a deleted view creates a copy of it; the deleted view is gone once the
// thread has left.
inline void create_in_deleted_view(Backend &b, Check &c)
{
	atlas::ViewOps &v = b.ops();
	const Page page = map_page(c);
	VIEW_RETURNS(c, v.unshare(page.start, page.len), 0);
	page.p[0] = 'X';
	const ViewId a = VIEW_CREATED(c, v.create());
	VIEW_RETURNS(c, v.migrate(a), 0);
	page.p[0] = 'Y';
	VIEW_RETURNS(c, v.remove(a), 0);
	VIEW_RETURNS(c, v.current(), a);
	const ViewId n = VIEW_CREATED(c, v.create());
	VIEW_TRUE(c, n > a);
	VIEW_RETURNS(c, v.current(), a);
	VIEW_RETURNS(c, v.migrate(n), a);
	VIEW_TRUE(c, page.p[0] == 'Y'); // a copy of the deleted view
	VIEW_FAILS(c, v.migrate(a), EINVAL);
	VIEW_RETURNS(c, v.current(), n);
	VIEW_RETURNS(c, v.migrate(0), n);
	if (b.diverges_memory())
		VIEW_TRUE(c, page.p[0] == 'X');
}

// Ids grow; a deleted view's id, the old base's included, never names a view again.
inline void ids_never_reused(Backend &b, Check &c)
{
	atlas::ViewOps &v = b.ops();
	const ViewId a = VIEW_CREATED(c, v.create());
	VIEW_RETURNS(c, v.remove(a), 0);
	VIEW_FAILS(c, v.migrate(a), EINVAL);
	const ViewId n = VIEW_CREATED(c, v.create());
	VIEW_TRUE(c, n > a);
	VIEW_RETURNS(c, v.remove(n), 0);
	const ViewId m = VIEW_CREATED(c, v.create());
	VIEW_TRUE(c, m > n);
	VIEW_RETURNS(c, v.migrate(m), 0);
	VIEW_RETURNS(c, v.switch_base(), m);
	VIEW_RETURNS(c, v.remove(0), 0);
	const ViewId k = VIEW_CREATED(c, v.create());
	VIEW_TRUE(c, k > m);
	VIEW_FAILS(c, v.migrate(0), EINVAL);
	VIEW_FAILS(c, v.migrate(a), EINVAL);
	VIEW_FAILS(c, v.migrate(n), EINVAL);
}

// DELETE: of the base EPERM; of no view, or of a deleted one (occupied or not), EINVAL.
inline void delete_errors(Backend &b, Check &c)
{
	atlas::ViewOps &v = b.ops();
	const ViewId a = VIEW_CREATED(c, v.create());
	VIEW_FAILS(c, v.remove(0), EPERM);
	VIEW_FAILS(c, v.remove(a + 1000), EINVAL);
	VIEW_FAILS(c, v.remove(-1), EINVAL);
	VIEW_RETURNS(c, v.remove(a), 0);
	VIEW_FAILS(c, v.remove(a), EINVAL);
	const ViewId n = VIEW_CREATED(c, v.create());
	VIEW_RETURNS(c, v.migrate(n), 0);
	VIEW_RETURNS(c, v.remove(n), 0); // the caller's own view
	VIEW_FAILS(c, v.remove(n), EINVAL);
	VIEW_FAILS(c, v.remove(0), EPERM);
	VIEW_RETURNS(c, v.migrate(0), n);
}

// A deleted view lives on while a thread is in it: current() names it, it counts as a live
// view for SHARE and UNSHARE, the thread migrates away; then it is gone.
inline void deleted_view_lives_while_occupied(Backend &b, Check &c)
{
	atlas::ViewOps &v = b.ops();
	const Page page = map_page(c);
	const ViewId a = VIEW_CREATED(c, v.create());
	VIEW_RETURNS(c, v.migrate(a), 0);
	VIEW_RETURNS(c, v.remove(a), 0);
	VIEW_RETURNS(c, v.current(), a);
	VIEW_FAILS(c, v.share(page.start, page.len), EPERM);
	VIEW_FAILS(c, v.unshare(page.start, page.len), EPERM);
	VIEW_RETURNS(c, v.migrate(0), a);
	VIEW_RETURNS(c, v.current(), 0);
	VIEW_FAILS(c, v.migrate(a), EINVAL);
	VIEW_RETURNS(c, v.share(page.start, page.len), 0);
	VIEW_RETURNS(c, v.unshare(page.start, page.len), 0);
}

// MIGRATE into the view the caller is in does nothing and returns its id, also when that view
// is deleted (docs/mmview.2).
inline void migrate_into_own_view(Backend &b, Check &c)
{
	atlas::ViewOps &v = b.ops();
	const ViewId a = VIEW_CREATED(c, v.create());
	VIEW_RETURNS(c, v.migrate(a), 0);
	VIEW_RETURNS(c, v.migrate(a), a);
	VIEW_RETURNS(c, v.remove(a), 0);
	VIEW_RETURNS(c, v.migrate(a), a);
	VIEW_RETURNS(c, v.current(), a);
	VIEW_RETURNS(c, v.migrate(0), a);
	VIEW_FAILS(c, v.migrate(a), EINVAL);
}

// MIGRATE returns the view left; into no view or a deleted one it is EINVAL and the caller
// stays where it is.
inline void migrate_errors_and_result(Backend &b, Check &c)
{
	atlas::ViewOps &v = b.ops();
	const ViewId a = VIEW_CREATED(c, v.create());
	const ViewId n = VIEW_CREATED(c, v.create());
	VIEW_RETURNS(c, v.migrate(a), 0);
	VIEW_RETURNS(c, v.migrate(n), a);
	VIEW_RETURNS(c, v.migrate(0), n);
	VIEW_FAILS(c, v.migrate(n + 1000), EINVAL);
	VIEW_FAILS(c, v.migrate(-1), EINVAL);
	VIEW_RETURNS(c, v.remove(n), 0);
	VIEW_FAILS(c, v.migrate(n), EINVAL);
	VIEW_RETURNS(c, v.current(), 0);
	VIEW_RETURNS(c, v.migrate(a), 0);
	VIEW_RETURNS(c, v.current(), a);
}

// SWITCH_BASE makes the caller's view the base and returns its id: then the old base can be
// deleted and the new one cannot.
inline void switch_base(Backend &b, Check &c)
{
	atlas::ViewOps &v = b.ops();
	const Page page = map_page(c);
	const ViewId a = VIEW_CREATED(c, v.create());
	VIEW_RETURNS(c, v.migrate(a), 0);
	VIEW_RETURNS(c, v.switch_base(), a);
	VIEW_FAILS(c, v.remove(a), EPERM);
	VIEW_RETURNS(c, v.remove(0), 0);
	VIEW_FAILS(c, v.migrate(0), EINVAL);
	VIEW_RETURNS(c, v.current(), a);
	VIEW_RETURNS(c, v.share(page.start, page.len), 0); // one view left
	const ViewId n = VIEW_CREATED(c, v.create());
	VIEW_RETURNS(c, v.switch_base(), a); // from the base: stays
	VIEW_RETURNS(c, v.migrate(n), a);
	VIEW_RETURNS(c, v.switch_base(), n);
	VIEW_FAILS(c, v.remove(n), EPERM);
	VIEW_RETURNS(c, v.remove(a), 0);
	VIEW_RETURNS(c, v.unshare(page.start, page.len), 0);
}

// SWITCH_BASE from a deleted view is EINVAL and changes nothing.
inline void switch_base_from_deleted_view(Backend &b, Check &c)
{
	atlas::ViewOps &v = b.ops();
	const ViewId a = VIEW_CREATED(c, v.create());
	VIEW_RETURNS(c, v.migrate(a), 0);
	VIEW_RETURNS(c, v.remove(a), 0);
	VIEW_FAILS(c, v.switch_base(), EINVAL);
	VIEW_RETURNS(c, v.current(), a);
	VIEW_FAILS(c, v.remove(0), EPERM); // still the base
	VIEW_RETURNS(c, v.migrate(0), a);
	VIEW_RETURNS(c, v.switch_base(), 0);
}

// SHARE and UNSHARE are EPERM while more than one view is live, and succeed with one.
inline void share_unshare_one_view_only(Backend &b, Check &c)
{
	atlas::ViewOps &v = b.ops();
	const Page page = map_page(c);
	VIEW_RETURNS(c, v.unshare(page.start, page.len), 0);
	VIEW_RETURNS(c, v.share(page.start, page.len), 0);
	const ViewId a = VIEW_CREATED(c, v.create());
	VIEW_FAILS(c, v.unshare(page.start, page.len), EPERM);
	VIEW_FAILS(c, v.share(page.start, page.len), EPERM);
	const ViewId n = VIEW_CREATED(c, v.create());
	VIEW_RETURNS(c, v.remove(a), 0);
	VIEW_FAILS(c, v.share(page.start, page.len), EPERM);
	VIEW_RETURNS(c, v.remove(n), 0);
	VIEW_RETURNS(c, v.unshare(page.start, page.len), 0);
	VIEW_RETURNS(c, v.share(page.start, page.len), 0);
}

// A new thread starts in its creator's view, a deleted one included; migrating moves only the
// calling thread.
inline void thread_starts_in_creators_view(Backend &b, Check &c)
{
	atlas::ViewOps &v = b.ops();
	const ViewId a = VIEW_CREATED(c, v.create());
	VIEW_RETURNS(c, v.migrate(a), 0);
	std::thread t = spawn(b, [&] {
		VIEW_RETURNS(c, v.current(), a);
		VIEW_RETURNS(c, v.migrate(0), a);
		VIEW_RETURNS(c, v.current(), 0);
	});
	t.join();
	VIEW_RETURNS(c, v.current(), a);
	VIEW_RETURNS(c, v.remove(a), 0);
	std::thread u = spawn(b, [&] {
		VIEW_RETURNS(c, v.current(), a);
		VIEW_RETURNS(c, v.migrate(0), a);
	});
	u.join();
	VIEW_RETURNS(c, v.current(), a);
	VIEW_RETURNS(c, v.migrate(0), a);
	VIEW_FAILS(c, v.migrate(a), EINVAL);
}

// Another thread in a deleted view keeps it live (SHARE and UNSHARE EPERM) until it migrates
// away.
inline void other_thread_keeps_deleted_view(Backend &b, Check &c)
{
	atlas::ViewOps &v = b.ops();
	const Page page = map_page(c);
	const ViewId a = VIEW_CREATED(c, v.create());
	Steps steps(c);
	std::thread t = spawn(b, [&] {
		VIEW_RETURNS(c, v.migrate(a), 0);
		steps.post(1);
		steps.wait_for(2, __LINE__);
		VIEW_RETURNS(c, v.current(), a);
		VIEW_RETURNS(c, v.migrate(0), a);
		steps.post(3);
	});
	steps.wait_for(1, __LINE__);
	VIEW_RETURNS(c, v.remove(a), 0);
	VIEW_FAILS(c, v.remove(a), EINVAL);
	VIEW_FAILS(c, v.migrate(a), EINVAL);
	VIEW_FAILS(c, v.share(page.start, page.len), EPERM);
	VIEW_FAILS(c, v.unshare(page.start, page.len), EPERM);
	steps.post(2);
	steps.wait_for(3, __LINE__);
	VIEW_RETURNS(c, v.share(page.start, page.len), 0);
	VIEW_RETURNS(c, v.unshare(page.start, page.len), 0);
	t.join();
}

// A thread that exits alone in a deleted view keeps it live until it is gone. pthread_join()
// may return a moment before the view is dropped (the kernel wakes the joiner from the exiting
// thread's mm_release(), before that thread lets go of its view): SHARE must succeed within 10 s.
inline void thread_exits_in_deleted_view(Backend &b, Check &c)
{
	atlas::ViewOps &v = b.ops();
	const Page page = map_page(c);
	const ViewId a = VIEW_CREATED(c, v.create());
	VIEW_RETURNS(c, v.migrate(a), 0);
	Steps steps(c);
	std::thread t = spawn(b, [&] {
		steps.post(1);
		steps.wait_for(2, __LINE__);
		VIEW_RETURNS(c, v.current(), a);
	});
	steps.wait_for(1, __LINE__);
	VIEW_RETURNS(c, v.migrate(0), a);
	VIEW_RETURNS(c, v.remove(a), 0);
	VIEW_FAILS(c, v.share(page.start, page.len), EPERM);
	steps.post(2);
	t.join();
	ViewResult r = v.share(page.start, page.len);
	for (int i = 0; i < 1000 && !r.ok(); i++) {
		std::this_thread::sleep_for(10ms);
		r = v.share(page.start, page.len);
	}
	VIEW_RETURNS(c, r, 0);
	VIEW_FAILS(c, v.migrate(a), EINVAL);
}

struct Case {
	const char *name;
	void (*run)(Backend &, Check &);
};

inline const std::vector<Case> &cases()
{
	static const std::vector<Case> all = {
	    {"single_view", single_view},
	    {"create_copies_callers_view", create_copies_callers_view},
	    {"create_in_deleted_view", create_in_deleted_view},
	    {"ids_never_reused", ids_never_reused},
	    {"delete_errors", delete_errors},
	    {"deleted_view_lives_while_occupied", deleted_view_lives_while_occupied},
	    {"migrate_into_own_view", migrate_into_own_view},
	    {"migrate_errors_and_result", migrate_errors_and_result},
	    {"switch_base", switch_base},
	    {"switch_base_from_deleted_view", switch_base_from_deleted_view},
	    {"share_unshare_one_view_only", share_unshare_one_view_only},
	    {"thread_starts_in_creators_view", thread_starts_in_creators_view},
	    {"other_thread_keeps_deleted_view", other_thread_keeps_deleted_view},
	    {"thread_exits_in_deleted_view", thread_exits_in_deleted_view},
	};
	return all;
}

// ---------------------------------------------------------------------------------------------

struct Outcome {
	bool passed = false;
	std::string log; // the failed expectations, and how the child ended if not normally
};

// Runs `run` on a back end made by `make` in a child process of its own; the child has 60 s.
inline Outcome run_case(void (*run)(Backend &, Check &), std::unique_ptr<Backend> (*make)())
{
	Outcome out;
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) != 0) {
		out.log = std::string("pipe2: ") + strerror(errno);
		return out;
	}
	fflush(nullptr);
	const pid_t pid = fork();
	if (pid < 0) {
		out.log = std::string("fork: ") + strerror(errno);
		close(fds[0]);
		close(fds[1]);
		return out;
	}
	if (pid == 0) {
		close(fds[0]);
		alarm(60);
		Check check(fds[1]);
		try {
			std::unique_ptr<Backend> backend = make();
			run(*backend, check);
		} catch (const std::exception &e) {
			check.fail(__LINE__, std::string("exception: ") + e.what());
		} catch (...) {
			check.fail(__LINE__, "exception");
		}
		_exit(check.failed() ? 1 : 0);
	}
	close(fds[1]);
	char buf[4096];
	ssize_t n;
	while ((n = read(fds[0], buf, sizeof buf)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		out.log.append(buf, static_cast<std::size_t>(n));
	}
	close(fds[0]);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
	}
	if (WIFSIGNALED(status)) {
		const char *sig = sigabbrev_np(WTERMSIG(status));
		out.log += "child killed by SIG" +
		           (sig ? std::string(sig) : std::to_string(WTERMSIG(status))) +
		           (WTERMSIG(status) == SIGALRM ? " (time limit)" : "") + "\n";
	} else if (WEXITSTATUS(status) != 0 && out.log.empty())
		out.log += "child exited " + std::to_string(WEXITSTATUS(status)) + "\n";
	out.passed = WIFEXITED(status) && WEXITSTATUS(status) == 0;
	return out;
}

} // namespace atlas_contract

#endif
