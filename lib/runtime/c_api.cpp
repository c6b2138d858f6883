// The C API (atlas/atlas.h) over the C++ runtime: no exception crosses it.
#include <atlas/atlas.h>
#include <atlas/runtime.hpp>

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
thread_local std::string tl_error;

int fail(std::string message) noexcept
{
	try {
		tl_error = std::move(message);
	} catch (...) {
	}
	return -1;
}

std::shared_ptr<atlas::Runtime> runtime() noexcept
{
	std::lock_guard lock(g_mu);
	return g_runtime;
}

const char *not_initialised = "atlas runtime not initialised: call atlas_init() first";

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
	atlas::Result apply() override
	{
		return call(apply_, "apply");
	}
	atlas::Result revert() override
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
	atlas::Result call(int (*fn)(void *, char *, size_t), const char *what)
	{
		if (!fn)
			return atlas::Result::failure(
			    fmt::format("{}: the change has no {} callback", identity_, what));
		char error[512] = "";
		if (fn(context_, error, sizeof(error)) == 0)
			return atlas::Result::success();
		error[sizeof(error) - 1] = '\0';
		return atlas::Result::failure(
		    fmt::format("{} {}: {}", identity_, what, error[0] ? error : "failed"));
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

int finish(const atlas::Report &r, atlas_report *out) noexcept
{
	if (out) {
		out->transition = r.transition;
		out->outcome = static_cast<int>(r.outcome);
		out->mode = static_cast<int>(r.mode);
		out->duration_ns = static_cast<uint64_t>(r.duration.count());
		std::snprintf(out->message, sizeof(out->message), "%s", r.message.c_str());
	}
	if (r.ok())
		return 0;
	return fail(r.message);
}

template <typename F>
int guarded(F &&f) noexcept
{
	try {
		return f();
	} catch (const std::exception &e) {
		return fail(fmt::format("atlas: internal error: {}", e.what()));
	} catch (...) {
		return fail("atlas: internal error");
	}
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
static_assert(static_cast<int>(atlas::Mode::global) == ATLAS_MODE_GLOBAL);
static_assert(static_cast<int>(atlas::Mode::wait_free) == ATLAS_MODE_WAIT_FREE);

extern "C" {

int atlas_init(const struct atlas_options *options)
{
	return guarded([&] {
		atlas_options o;
		atlas_options_init(&o);
		if (options) {
			std::string why = read_options(*options, o);
			if (!why.empty())
				return fail(std::move(why));
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
			return fail("atlas_init: already initialised; call atlas_shutdown() first");
		std::unique_ptr<atlas::Runtime> rt = atlas::Runtime::create(std::move(ro));
		if (!rt)
			return fail("atlas_init: out of memory");
		g_runtime = std::move(rt);
		return 0;
	});
}

int atlas_shutdown(void)
{
	return guarded([&] {
		std::shared_ptr<atlas::Runtime> old;
		{
			std::lock_guard lock(g_mu);
			if (!g_runtime)
				return fail(not_initialised);
			old = std::move(g_runtime);
		}
		return 0; // destroyed here, outside g_mu
	});
}

int atlas_thread_register(const char *name)
{
	return guarded([&] {
		auto rt = runtime();
		if (!rt)
			return fail(not_initialised);
		atlas::Result r = rt->register_current_thread(name ? name : "");
		return r ? 0 : fail(r.message());
	});
}

int atlas_thread_unregister(void)
{
	return guarded([&] {
		auto rt = runtime();
		if (!rt)
			return fail(not_initialised);
		atlas::Result r = rt->unregister_current_thread();
		return r ? 0 : fail(r.message());
	});
}

int atlas_thread_exempt(pid_t tid)
{
	return guarded([&] {
		auto rt = runtime();
		if (!rt)
			return fail(not_initialised);
		atlas::Result r = rt->exempt_thread(tid);
		return r ? 0 : fail(r.message());
	});
}

int atlas_follow_base(void)
{
	return guarded([&] {
		auto rt = runtime();
		if (!rt)
			return fail(not_initialised);
		atlas::Result r = rt->follow_base();
		return r ? 0 : fail(r.message());
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
	return guarded([&] {
		auto rt = runtime();
		if (!rt)
			return fail(not_initialised);
		if (!change || !change->identity || !*change->identity)
			return fail("atlas_apply: the change needs an identity");
		if (change->replaced_count && !change->replaced)
			return fail("atlas_apply: replaced_count without replaced ranges");
		atlas::Request req{to_mode(mode), std::chrono::milliseconds(deadline_ms)};
		return finish(rt->apply(std::make_shared<CChange>(*change), req), report);
	});
}

int atlas_revert(const char *identity, int mode, unsigned deadline_ms, struct atlas_report *report)
{
	return guarded([&] {
		auto rt = runtime();
		if (!rt)
			return fail(not_initialised);
		if (!identity)
			return fail("atlas_revert: no identity given");
		atlas::Request req{to_mode(mode), std::chrono::milliseconds(deadline_ms)};
		return finish(rt->revert(identity, req), report);
	});
}

int atlas_wait(unsigned deadline_ms, struct atlas_report *report)
{
	return guarded([&] {
		auto rt = runtime();
		if (!rt)
			return fail(not_initialised);
		return finish(rt->wait(std::chrono::milliseconds(deadline_ms)), report);
	});
}

int atlas_revert_pending(unsigned deadline_ms, struct atlas_report *report)
{
	return guarded([&] {
		auto rt = runtime();
		if (!rt)
			return fail(not_initialised);
		return finish(rt->revert_pending(std::chrono::milliseconds(deadline_ms)), report);
	});
}

char *atlas_status_json(void)
{
	try {
		auto rt = runtime();
		if (!rt) {
			fail(not_initialised);
			return nullptr;
		}
		std::string json = rt->status().to_json();
		char *out = static_cast<char *>(std::malloc(json.size() + 1));
		if (!out) {
			fail("atlas_status_json: out of memory");
			return nullptr;
		}
		std::memcpy(out, json.c_str(), json.size() + 1);
		return out;
	} catch (...) {
		fail("atlas_status_json: internal error");
		return nullptr;
	}
}

void atlas_free(void *pointer)
{
	std::free(pointer);
}

const char *atlas_last_error(void)
{
	return tl_error.c_str();
}

} // extern "C"
