// The structured event log: one JSON object per line, to an fd and/or a callback.
#ifndef ATLAS_RUNTIME_EVENT_LOG_HPP
#define ATLAS_RUNTIME_EVENT_LOG_HPP

#include <atlas/runtime.hpp>

#include <cstdint>
#include <mutex>
#include <nlohmann/json.hpp>
#include <vector>

namespace atlas::detail
{

std::int64_t monotonic_ns() noexcept;

class EventLog
{
public:
	explicit EventLog(EventSink sink) : sink_(std::move(sink)) {}
	// Adds "mono_ns" (CLOCK_MONOTONIC) and "event" to @fields and writes one line. Never
	// throws: a sink that fails or throws loses the line, the runtime carries on.
	void emit(const char *event, nlohmann::json fields = nlohmann::json::object()) noexcept;
	void emit_all(std::vector<std::pair<const char *, nlohmann::json>> &events) noexcept;

private:
	std::mutex mu_; // one line at a time, in order
	EventSink sink_;
};

} // namespace atlas::detail

#endif
