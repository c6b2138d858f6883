#include "event_log.hpp"

#include <cerrno>
#include <ctime>
#include <unistd.h>

namespace atlas::detail
{

std::int64_t monotonic_ns() noexcept
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

namespace
{

void write_fully(int fd, const std::string &line) noexcept
{
	size_t done = 0;
	while (done < line.size()) {
		ssize_t n = ::write(fd, line.data() + done, line.size() - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return; // the embedder's fd is broken: the log is best effort
		done += static_cast<size_t>(n);
	}
}

} // namespace

void EventLog::emit(const char *event, nlohmann::json fields) noexcept
{
	if (sink_.fd < 0 && !sink_.callback)
		return;
	try {
		nlohmann::json line = {{"mono_ns", monotonic_ns()}, {"event", event}};
		line.update(fields);
		// Replace invalid UTF-8 (thread names come from the application) instead of
		// throwing.
		std::string text =
		    line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
		std::lock_guard lock(mu_);
		if (sink_.callback)
			sink_.callback(text);
		if (sink_.fd >= 0) {
			text += '\n';
			write_fully(sink_.fd, text);
		}
	} catch (...) {
		// Out of memory or a throwing callback: drop the line rather than fail a
		// transition.
	}
}

void EventLog::emit_all(std::vector<std::pair<const char *, nlohmann::json>> &events) noexcept
{
	for (auto &[event, fields] : events)
		emit(event, std::move(fields));
	events.clear();
}

} // namespace atlas::detail
