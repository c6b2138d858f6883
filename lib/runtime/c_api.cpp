// The C API (atlas/atlas.h) over the C++ runtime. Each entry point's body runs in the one
// exception wall (detail::guard(), atlas/error_util.hpp) and returns an Expected; the entry
// point turns its Error into -1 and the thread's last error (code, errno, message).
#include <atlas/atlas.h>
#include <atlas/runtime.hpp>

#include "atlas/error_util.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <fmt/format.h>
#include <mutex>

namespace
{

std::mutex g_mu;
// shared_ptr so that a transition can run without holding g_mu (threads register meanwhile).
std::shared_ptr<atlas::Runtime> g_runtime;
using atlas::Errc;
using atlas::Error;
using atlas::Expected;
using atlas::make_error;

// The calling thread's last failure (atlas_last_error*()).
thread_local std::string tl_message;
thread_local int tl_code = ATLAS_OK;
thread_local int tl_errno = 0;

int fail(const Error &e) noexcept
{
	tl_code = static_cast<int>(e.code);
	tl_errno = e.sys_errno;
	try {
		tl_message = e.message;
	} catch (...) {
		tl_code = ATLAS_ERR_NO_MEMORY;
		tl_message.clear();
	}
	return -1;
}

// An entry point's body, returning Expected<void>, run in the wall: 0, or -1 and the error.
template <typename F>
int guarded(F &&f) noexcept
{
	Expected<void> done = atlas::detail::guard(std::forward<F>(f));
	return done ? 0 : fail(done.error());
}

Error not_initialised() noexcept
{
	return Error{Errc::bad_state, "atlas runtime not initialised: call atlas_init() first", 0};
}

std::shared_ptr<atlas::Runtime> runtime() noexcept
{
	std::lock_guard lock(g_mu);
	return g_runtime;
}

class CChange final : public atlas::CodeChange
{
public:
	explicit CChange(const atlas_change &c)
	    : identity_(c.identity), context_(c.context), apply_(c.apply), revert_(c.revert),
	      requires_global_(c.requires_global != 0), unreachable_(c.unreachable)
	{
		for (size_t i = 0; i < c.replaced_count; i++)
			replaced_.push_back({c.replaced[i].start, c.replaced[i].end, {}});
	}
	std::string identity() const override
	{
		return identity_;
	}
	Expected<void> apply() override
	{
		return call(apply_, "apply");
	}
	Expected<void> revert() override
	{
		return call(revert_, "revert");
	}
	bool requires_global() const override
	{
		return requires_global_;
	}
	std::vector<atlas::AddressRange> replaced_functions() const override
	{
		return replaced_;
	}
	void unreachable() noexcept override
	{
		if (unreachable_)
			unreachable_(context_);
	}

private:
	Expected<void> call(int (*fn)(void *, char *, size_t), const char *what)
	{
		if (!fn)
			return make_error(
			    Errc::invalid_argument,
			    fmt::format("{}: the change has no {} callback", identity_, what));
		char error[512] = "";
		if (fn(context_, error, sizeof(error)) == 0)
			return {};
		error[sizeof(error) - 1] = '\0';
		return make_error(Errc::change_failed, fmt::format("{} {}: {}", identity_, what,
		                                                   error[0] ? error : "failed"));
	}

	std::string identity_;
	void *context_;
	int (*apply_)(void *, char *, size_t);
	int (*revert_)(void *, char *, size_t);
	bool requires_global_;
	void (*unreachable_)(void *);
	std::vector<atlas::AddressRange> replaced_;
};

atlas::Mode to_mode(int mode)
{
	switch (mode) {
	case ATLAS_MODE_GLOBAL:
		return atlas::Mode::global;
	case ATLAS_MODE_WAIT_FREE:
		return atlas::Mode::wait_free;
	default:
		return atlas::Mode::automatic;
	}
}

// What a transition's outcome is as an error (atlas.h: atlas_apply()).
Errc error_of(atlas::Outcome outcome) noexcept
{
	switch (outcome) {
	case atlas::Outcome::failed:
		return Errc::change_failed;
	case atlas::Outcome::pending:
	case atlas::Outcome::reverting:
		return Errc::in_progress;
	default:
		return Errc::refused;
	}
}

Expected<void> finish(const atlas::Report &r, atlas_report *out)
{
	if (out) {
		out->transition = r.transition;
		out->outcome = static_cast<int>(r.outcome);
		out->mode = static_cast<int>(r.mode);
		out->duration_ns = static_cast<uint64_t>(r.duration.count());
		std::snprintf(out->message, sizeof(out->message), "%s", r.message.c_str());
	}
	if (r.ok())
		return {};
	return make_error(error_of(r.outcome), r.message);
}

// The fields in the first version of struct atlas_options end here; later versions only append.
static_assert(offsetof(atlas_options, allow_unknown_threads) + sizeof(int) ==
              ATLAS_OPTIONS_SIZE_VER0);
static_assert(sizeof(atlas_options) == ATLAS_OPTIONS_SIZE_VER0);

// Copies the caller's options into `out` (which holds the defaults) as far as the caller's
// `size` says they go: a smaller (older) struct leaves the newer fields at their defaults, a
// larger (newer) one is accepted when every byte this library does not know is zero. Returns
// why the options are refused, or "".
std::string read_options(const atlas_options &in, atlas_options &out)
{
	if (in.size < ATLAS_OPTIONS_SIZE_VER0)
		return fmt::format(
		    "atlas_init: options->size is {}, less than any struct atlas_options "
		    "(at least {}); call atlas_options_init() on the options before "
		    "setting their fields",
		    in.size, ATLAS_OPTIONS_SIZE_VER0);
	const auto *bytes = reinterpret_cast<const unsigned char *>(&in);
	static constexpr const char *unknown_field =
	    "atlas_init: the caller's struct atlas_options ({} bytes) sets a field at byte {} "
	    "that this libatlas ({} bytes of options) does not know; link the program with the "
	    "libatlas whose atlas.h it was compiled with, or leave the newer fields zero";
	for (size_t i = sizeof(atlas_options); i < in.size; i++)
		if (bytes[i] != 0)
			return fmt::format(fmt::runtime(unknown_field), in.size, i,
			                   sizeof(atlas_options));
	std::memcpy(&out, &in, std::min(in.size, sizeof(atlas_options)));
	out.size = sizeof(atlas_options);
	return {};
}

} // namespace

// The C++ enums are the C ones: keep them in step.
static_assert(static_cast<int>(atlas::Outcome::finished) == ATLAS_FINISHED);
static_assert(static_cast<int>(atlas::Outcome::already_applied) == ATLAS_ALREADY_APPLIED);
static_assert(static_cast<int>(atlas::Outcome::refused) == ATLAS_REFUSED);
static_assert(static_cast<int>(atlas::Outcome::failed) == ATLAS_FAILED);
static_assert(static_cast<int>(atlas::Outcome::pending) == ATLAS_PENDING);
static_assert(static_cast<int>(atlas::Outcome::reverting) == ATLAS_REVERTING);
static_assert(static_cast<int>(atlas::Outcome::reverted) == ATLAS_REVERTED);
static_assert(static_cast<int>(atlas::Mode::automatic) == ATLAS_MODE_AUTOMATIC);
// atlas::Errc is enum atlas_error: the C values are stable, so is each Errc.
static_assert(static_cast<int>(Errc::internal) == ATLAS_ERR_INTERNAL);
static_assert(static_cast<int>(Errc::no_memory) == ATLAS_ERR_NO_MEMORY);
static_assert(static_cast<int>(Errc::invalid_argument) == ATLAS_ERR_INVALID_ARGUMENT);
static_assert(static_cast<int>(Errc::bad_state) == ATLAS_ERR_BAD_STATE);
static_assert(static_cast<int>(Errc::system) == ATLAS_ERR_SYSTEM);
static_assert(static_cast<int>(Errc::io) == ATLAS_ERR_IO);
static_assert(static_cast<int>(Errc::unsupported) == ATLAS_ERR_UNSUPPORTED);
static_assert(static_cast<int>(Errc::refused) == ATLAS_ERR_REFUSED);
static_assert(static_cast<int>(Errc::change_failed) == ATLAS_ERR_CHANGE_FAILED);
static_assert(static_cast<int>(Errc::in_progress) == ATLAS_ERR_IN_PROGRESS);
static_assert(static_cast<int>(Errc::busy) == ATLAS_ERR_BUSY);
static_assert(static_cast<int>(Errc::timeout) == ATLAS_ERR_TIMEOUT);
static_assert(static_cast<int>(Errc::not_permitted) == ATLAS_ERR_NOT_PERMITTED);
static_assert(static_cast<int>(Errc::invalid_format) == ATLAS_ERR_INVALID_FORMAT);
static_assert(static_cast<int>(Errc::version_mismatch) == ATLAS_ERR_VERSION_MISMATCH);
static_assert(static_cast<int>(Errc::hash_mismatch) == ATLAS_ERR_HASH_MISMATCH);
static_assert(static_cast<int>(Errc::not_found) == ATLAS_ERR_NOT_FOUND);
static_assert(static_cast<int>(Errc::ambiguous) == ATLAS_ERR_AMBIGUOUS);
static_assert(static_cast<int>(Errc::out_of_range) == ATLAS_ERR_OUT_OF_RANGE);
static_assert(static_cast<int>(Errc::needs_branch_stub) == ATLAS_ERR_NEEDS_BRANCH_STUB);
static_assert(static_cast<int>(Errc::needs_got_slot) == ATLAS_ERR_NEEDS_GOT_SLOT);
static_assert(atlas::errc_last == Errc::needs_got_slot, "a new Errc needs its ATLAS_ERR_ value");
static_assert(static_cast<int>(atlas::Mode::global) == ATLAS_MODE_GLOBAL);
static_assert(static_cast<int>(atlas::Mode::wait_free) == ATLAS_MODE_WAIT_FREE);

extern "C" {

int atlas_init(const struct atlas_options *options)
{
	return guarded([&]() -> Expected<void> {
		atlas_options o;
		atlas_options_init(&o);
		if (options) {
			std::string why = read_options(*options, o);
			if (!why.empty())
				return make_error(Errc::invalid_argument, std::move(why));
		}
		atlas::RuntimeOptions ro;
		ro.events.fd = o.event_fd;
		if (o.event_fn) {
			atlas_event_fn fn = o.event_fn;
			void *ctx = o.event_context;
			ro.events.callback = [fn, ctx](std::string_view line) {
				std::string copy(line); // NUL-terminated for C
				fn(ctx, copy.c_str(), copy.size());
			};
		}
		if (o.default_deadline_ms)
			ro.default_deadline = std::chrono::milliseconds(o.default_deadline_ms);
		ro.refuse_unknown_threads = !o.allow_unknown_threads;
		std::lock_guard lock(g_mu);
		if (g_runtime)
			return make_error(
			    Errc::bad_state,
			    "atlas_init: already initialised; call atlas_shutdown() first");
		std::unique_ptr<atlas::Runtime> rt = atlas::Runtime::create(std::move(ro));
		if (!rt)
			return make_error(Errc::no_memory, "atlas_init: out of memory");
		g_runtime = std::move(rt);
		return {};
	});
}

int atlas_shutdown(void)
{
	return guarded([&]() -> Expected<void> {
		std::shared_ptr<atlas::Runtime> old;
		{
			std::lock_guard lock(g_mu);
			if (!g_runtime)
				return not_initialised();
			old = std::move(g_runtime);
		}
		return {}; // destroyed here, outside g_mu
	});
}

int atlas_thread_register(const char *name)
{
	return guarded([&]() -> Expected<void> {
		auto rt = runtime();
		if (!rt)
			return not_initialised();
		return rt->register_current_thread(name ? name : "");
	});
}

int atlas_thread_unregister(void)
{
	return guarded([&]() -> Expected<void> {
		auto rt = runtime();
		if (!rt)
			return not_initialised();
		return rt->unregister_current_thread();
	});
}

int atlas_thread_exempt(pid_t tid)
{
	return guarded([&]() -> Expected<void> {
		auto rt = runtime();
		if (!rt)
			return not_initialised();
		return rt->exempt_thread(tid);
	});
}

int atlas_follow_base(void)
{
	return guarded([&]() -> Expected<void> {
		auto rt = runtime();
		if (!rt)
			return not_initialised();
		return rt->follow_base();
	});
}

void atlas_quiescence_point(void)
{
	atlas::quiescence_point();
}

void atlas_blocking_enter(void)
{
	atlas::blocking_enter();
}

void atlas_blocking_exit(void)
{
	atlas::blocking_exit();
}

int atlas_apply(const struct atlas_change *change, int mode, unsigned deadline_ms,
                struct atlas_report *report)
{
	return guarded([&]() -> Expected<void> {
		auto rt = runtime();
		if (!rt)
			return not_initialised();
		if (!change || !change->identity || !*change->identity)
			return make_error(Errc::invalid_argument,
			                  "atlas_apply: the change needs an identity");
		if (change->replaced_count && !change->replaced)
			return make_error(Errc::invalid_argument,
			                  "atlas_apply: replaced_count without replaced ranges");
		atlas::Request req{to_mode(mode), std::chrono::milliseconds(deadline_ms)};
		return finish(rt->apply(std::make_shared<CChange>(*change), req), report);
	});
}

int atlas_revert(const char *identity, int mode, unsigned deadline_ms, struct atlas_report *report)
{
	return guarded([&]() -> Expected<void> {
		auto rt = runtime();
		if (!rt)
			return not_initialised();
		if (!identity)
			return make_error(Errc::invalid_argument,
			                  "atlas_revert: no identity given");
		atlas::Request req{to_mode(mode), std::chrono::milliseconds(deadline_ms)};
		return finish(rt->revert(identity, req), report);
	});
}

int atlas_wait(unsigned deadline_ms, struct atlas_report *report)
{
	return guarded([&]() -> Expected<void> {
		auto rt = runtime();
		if (!rt)
			return not_initialised();
		return finish(rt->wait(std::chrono::milliseconds(deadline_ms)), report);
	});
}

int atlas_revert_pending(unsigned deadline_ms, struct atlas_report *report)
{
	return guarded([&]() -> Expected<void> {
		auto rt = runtime();
		if (!rt)
			return not_initialised();
		return finish(rt->revert_pending(std::chrono::milliseconds(deadline_ms)), report);
	});
}

char *atlas_status_json(void)
{
	Expected<char *> json = atlas::detail::guard([&]() -> Expected<char *> {
		auto rt = runtime();
		if (!rt)
			return not_initialised();
		std::string text = rt->status().to_json();
		char *out = static_cast<char *>(std::malloc(text.size() + 1));
		if (!out)
			return make_error(Errc::no_memory, "atlas_status_json: out of memory");
		std::memcpy(out, text.c_str(), text.size() + 1);
		return out;
	});
	if (json)
		return *json;
	fail(json.error());
	return nullptr;
}

void atlas_free(void *pointer)
{
	std::free(pointer);
}

const char *atlas_last_error(void)
{
	return tl_message.c_str();
}

int atlas_last_error_code(void)
{
	return tl_code;
}

int atlas_last_error_errno(void)
{
	return tl_errno;
}

const char *atlas_error_string(int code)
{
	if (code == ATLAS_OK)
		return "no error";
	if (code < 1 || code > static_cast<int>(atlas::errc_last))
		return "unknown error";
	return atlas::describe(static_cast<Errc>(code));
}

} // extern "C"
