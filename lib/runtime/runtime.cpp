// The public C++ API: thin, exception-free wrappers over the Core.
#include "atlas/runtime_json.hpp"
#include "core.hpp"

#include <fmt/format.h>

namespace atlas
{

const char *to_string(Mode mode) noexcept
{
	switch (mode) {
	case Mode::automatic:
		return "automatic";
	case Mode::global:
		return "global";
	case Mode::wait_free:
		return "wait_free";
	}
	return "?";
}

const char *to_string(ThreadState state) noexcept
{
	switch (state) {
	case ThreadState::running:
		return "running";
	case ThreadState::parked:
		return "parked";
	case ThreadState::blocked:
		return "blocked";
	case ThreadState::migrated:
		return "migrated";
	}
	return "?";
}

const char *to_string(Outcome outcome) noexcept
{
	switch (outcome) {
	case Outcome::finished:
		return "finished";
	case Outcome::already_applied:
		return "already_applied";
	case Outcome::refused:
		return "refused";
	case Outcome::failed:
		return "failed";
	case Outcome::pending:
		return "pending";
	case Outcome::reverting:
		return "reverting";
	case Outcome::reverted:
		return "reverted";
	}
	return "?";
}

namespace
{

// The C++ API's exception wall (detail::guard()) for transitions: anything thrown (in practice
// std::bad_alloc) becomes a refused report.
template <typename F>
Report guarded(const char *what, F &&f) noexcept
{
	Expected<Report> done = detail::guard([&]() -> Expected<Report> { return f(); });
	if (done)
		return std::move(done).value();
	Report r;
	try {
		r.message = fmt::format("{}: {}; nothing changed", what, done.error().message);
	} catch (...) {
	}
	return r;
}

} // namespace

nlohmann::json to_json_value(const ThreadInfo &t)
{
	return {{"tid", t.tid},
	        {"name", t.name},
	        {"view", t.view},
	        {"state", to_string(t.state)},
	        {"last_quiescence_ns", t.last_quiescence_ns},
	        {"where", t.where},
	        {"migrates_on_wake", t.migrates_on_wake},
	        {"note", t.note}};
}

nlohmann::json to_json_value(const Report &r)
{
	nlohmann::json lagging = nlohmann::json::array();
	for (const auto &t : r.lagging)
		lagging.push_back(to_json_value(t));
	return {{"transition", r.transition},
	        {"outcome", to_string(r.outcome)},
	        {"mode", to_string(r.mode)},
	        {"change", r.change},
	        {"message", r.message},
	        {"lagging", lagging},
	        {"duration_ns", r.duration.count()}};
}

nlohmann::json to_json_value(const StatusSnapshot &status)
{
	nlohmann::json threads_list = nlohmann::json::array();
	for (const auto &t : status.threads)
		threads_list.push_back(to_json_value(t));
	nlohmann::json applied_list = nlohmann::json::array();
	for (const auto &a : status.applied)
		applied_list.push_back({{"change", a.identity},
		                        {"mode", to_string(a.mode)},
		                        {"transition", a.transition},
		                        {"duration_ns", a.duration.count()}});
	nlohmann::json j = {
	    {"mode", status.views_available ? "wait_free and global" : "global only"},
	    {"views_available", status.views_available},
	    {"views_note", status.views_note},
	    {"membarrier_sync_core", status.membarrier_sync_core},
	    {"membarrier_note", status.membarrier_note},
	    {"base_view", status.base_view},
	    {"threads", threads_list},
	    {"exempt_threads", status.exempt_threads},
	    {"applied", applied_list},
	    {"slow_path_entries", status.slow_path_entries},
	    {"migrated_on_wake", status.migrated_on_wake},
	};
	j["single_view"] = status.single_view ? nlohmann::json(*status.single_view) : nullptr;
	nlohmann::json split = nlohmann::json::array();
	for (const auto &o : status.loaded_while_split)
		split.push_back({{"name", o.name}, {"transition", o.transition}, {"note", o.note}});
	j["loaded_while_split"] = std::move(split);
	nlohmann::json behind = nlohmann::json::array();
	for (const auto &t : status.left_behind)
		behind.push_back(
		    {{"tid", t.tid}, {"name", t.name}, {"view", t.view}, {"note", t.note}});
	j["left_behind"] = std::move(behind);
	if (status.transition) {
		j["transition"] = {{"id", *status.transition},
		                   {"state", status.transition_state
		                                 ? to_string(*status.transition_state)
		                                 : "in_progress"},
		                   {"target_view", status.target_view}};
	}
	if (status.last_report)
		j["last_report"] = to_json_value(*status.last_report);
	return j;
}

std::string StatusSnapshot::to_json() const
{
	return to_json_value(*this).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::unique_ptr<Runtime> Runtime::create(RuntimeOptions options) noexcept
{
	Expected<std::unique_ptr<Runtime>> rt =
	    detail::guard([&]() -> Expected<std::unique_ptr<Runtime>> {
		    return std::unique_ptr<Runtime>(
		        new Runtime(std::make_shared<detail::Core>(std::move(options))));
	    });
	return rt ? std::move(rt).value() : nullptr;
}

Runtime::Runtime(std::shared_ptr<detail::Core> core) : core_(std::move(core)) {}

Runtime::~Runtime() = default;

Expected<void> Runtime::register_current_thread(std::string_view name) noexcept
{
	return detail::guard([&] { return core_->register_current_thread(name); });
}

Expected<void> Runtime::unregister_current_thread() noexcept
{
	return detail::guard([&] { return core_->unregister_current_thread(); });
}

Expected<void> Runtime::exempt_thread(pid_t tid, bool follows_base) noexcept
{
	return detail::guard([&] { return core_->exempt_thread(tid, follows_base); });
}

Expected<void> Runtime::follow_base() noexcept
{
	return detail::guard([&] { return core_->follow_base(); });
}

Report Runtime::apply(std::shared_ptr<CodeChange> change, Request request) noexcept
{
	return guarded("apply", [&] { return core_->apply(std::move(change), request); });
}

Report Runtime::revert(std::string_view identity, Request request) noexcept
{
	return guarded("revert", [&] { return core_->revert(identity, request); });
}

Report Runtime::wait(std::chrono::milliseconds deadline) noexcept
{
	return guarded("wait", [&] { return core_->wait(deadline); });
}

Report Runtime::revert_pending(std::chrono::milliseconds deadline) noexcept
{
	return guarded("revert_pending", [&] { return core_->revert_pending(deadline); });
}

StatusSnapshot Runtime::status() const noexcept
{
	Expected<StatusSnapshot> s =
	    detail::guard([&]() -> Expected<StatusSnapshot> { return core_->status(); });
	return s ? std::move(s).value() : StatusSnapshot{};
}

std::vector<std::shared_ptr<CodeChange>> Runtime::applied_changes() const noexcept
{
	using Changes = std::vector<std::shared_ptr<CodeChange>>;
	Expected<Changes> c =
	    detail::guard([&]() -> Expected<Changes> { return core_->applied_changes(); });
	return c ? std::move(c).value() : Changes{};
}

} // namespace atlas
