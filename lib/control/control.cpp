// The control socket server and client (control.hpp).
#include "control.hpp"

#include "atlas/error_util.hpp"
#include "atlas/runtime_json.hpp"
#include "protocol.hpp"
#include "signature.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <mutex>
#include <poll.h>
#include <string_view>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace atlas::control
{

namespace
{

using detail::errno_text;
using detail::system_error;

// Writes all of `data`; false on error (the peer went away).
bool write_all(int fd, std::string_view data)
{
	while (!data.empty()) {
		ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		data.remove_prefix(static_cast<std::size_t>(n));
	}
	return true;
}

nlohmann::json error_json(std::string_view verb, std::string message)
{
	nlohmann::json j = {{"ok", false}, {"error", std::move(message)}};
	if (!verb.empty())
		j["verb"] = verb;
	return j;
}

std::string error_response(std::string_view verb, std::string message)
{
	return error_json(verb, std::move(message))
	    .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::chrono::milliseconds deadline_of(const nlohmann::json &request)
{
	auto it = request.find("deadline_ms");
	if (it == request.end() || !it->is_number_integer() || it->get<long long>() < 0)
		return std::chrono::milliseconds(0);
	return std::chrono::milliseconds(it->get<long long>());
}

nlohmann::json report_response(std::string_view verb, const Report &report)
{
	return {{"ok", report.ok()},
	        {"verb", verb},
	        {"outcome", spec_of(report.outcome).name},
	        {"message", report.message},
	        {"report", to_json_value(report)}};
}

// Runs unreachable() (.fini_array, unmapping) of a loaded change whose apply ended without
// taking it, exactly once: only if `report` says nothing was applied and nobody else holds the
// change any more (the runtime keeps a reference to every change it applied or is applying, so
// code that may run is never released).
void release_if_not_taken(std::shared_ptr<CodeChange> change, const Report &report) noexcept
{
	if (report.outcome != Outcome::already_applied && report.outcome != Outcome::refused &&
	    report.outcome != Outcome::failed)
		return;
	// Ours is the only reference left: nobody can take another one now.
	if (change && change.use_count() == 1)
		change->unreachable();
}

// A request's fields, as its verb's row in the protocol table (protocol.hpp) names them.
struct Args {
	std::string patch;
	std::string identity;
	Request request;
};

// Reads the fields `spec` takes; an error message for the response, or "".
std::string read_fields(const VerbSpec &spec, const nlohmann::json &request, Args &args)
{
	if (spec.fields & field_mode) {
		if (auto m = request.find("mode"); m != request.end()) {
			if (!m->is_string() ||
			    !parse_mode(m->get<std::string>(), args.request.mode))
				return "bad \"mode\": use auto, global or wait-free";
		}
	}
	if (spec.fields & field_deadline_ms)
		args.request.deadline = deadline_of(request);
	auto text = [&](const char *field) {
		auto it = request.find(field);
		return it != request.end() && it->is_string() ? it->get<std::string>()
		                                              : std::string();
	};
	if (spec.fields & field_patch) {
		args.patch = text("patch");
		if (args.patch.empty())
			return "apply needs \"patch\": the patch file's path";
	}
	if (spec.fields & field_identity) {
		args.identity = text("identity");
		if (args.identity.empty())
			return "revert needs \"identity\": the applied patch's identity (see "
			       "status)";
	}
	return {};
}

// apply: load the patch, then the transition. A patch that cannot be loaded is a failed
// outcome (nothing changed), not a malformed request.
nlohmann::json apply(Runtime &runtime, const Loader &loader, const Args &args)
{
	if (!loader)
		return error_json("apply", "this runtime has no patch loader (built without "
		                           "atlas/patch/loader.hpp); nothing changed");
	// The loader is the caller's code: what it throws is a failed load (the wall, guard()).
	Loaded loaded = detail::guard([&] { return loader(args.patch); });
	if (loaded && !*loaded)
		loaded = make_error(Errc::internal, "the loader returned no change");
	if (!loaded)
		return {{"ok", false},
		        {"verb", "apply"},
		        {"outcome", spec_of(Outcome::failed).name},
		        {"code", to_string(loaded.error().code)},
		        {"message", fmt::format("loading {} failed, nothing changed: {}",
		                                args.patch, loaded.error().message)}};
	// The server loaded it, so the server releases it when the apply did not take (already
	// applied, refused, failed): the runtime then keeps no reference and never calls
	// unreachable() on it. A change it holds (applied, or pending/reverting: the runtime
	// releases a reverted one) is never released here; neither is one the loader kept a
	// reference to.
	std::shared_ptr<CodeChange> change = std::move(loaded).value();
	Report report = runtime.apply(change, args.request);
	release_if_not_taken(std::move(change), report);
	return report_response("apply", report);
}

nlohmann::json dispatch(const VerbSpec &spec, Runtime &runtime, const Loader &loader,
                        const Args &args)
{
	switch (spec.verb) {
	case Verb::ping:
		return {{"ok", true},
		        {"verb", spec.name},
		        {"pid", getpid()},
		        {"runtime", "atlas"},
		        {"protocol", protocol_version}};
	case Verb::status:
		return {{"ok", true},
		        {"verb", spec.name},
		        {"pid", getpid()},
		        {"status", to_json_value(runtime.status())}};
	case Verb::apply:
		return apply(runtime, loader, args);
	case Verb::revert:
		return report_response(spec.name, runtime.revert(args.identity, args.request));
	case Verb::wait:
		return report_response(spec.name, runtime.wait(args.request.deadline));
	case Verb::revert_pending:
		return report_response(spec.name, runtime.revert_pending(args.request.deadline));
	}
	return error_json(spec.name, "internal error: a verb without a handler");
}

std::string handle(Runtime &runtime, const Loader &loader, std::string_view line)
{
	nlohmann::json request = nlohmann::json::parse(line, nullptr, false);
	if (request.is_discarded() || !request.is_object())
		return error_response({}, "malformed request: expected one JSON object per line, "
		                          "e.g. {\"verb\":\"ping\"}");
	auto verb_it = request.find("verb");
	if (verb_it == request.end() || !verb_it->is_string())
		return error_response({}, fmt::format("malformed request: missing string field "
		                                      "\"verb\" ({})",
		                                      verb_list()));
	const std::string verb = verb_it->get<std::string>();
	const VerbSpec *spec = find_verb(verb);
	if (!spec)
		return error_response(
		    verb, fmt::format("unknown verb \"{}\": use {}", verb, verb_list()));
	Args args;
	if (std::string error = read_fields(*spec, request, args); !error.empty())
		return error_response(verb, std::move(error));
	return dispatch(*spec, runtime, loader, args)
	    .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

} // namespace

std::string default_socket_dir()
{
	const uid_t uid = geteuid();
	const char *xdg = std::getenv("XDG_RUNTIME_DIR");
	struct stat st;
	if (xdg && xdg[0] == '/' && stat(xdg, &st) == 0 && st.st_uid == uid)
		return fmt::format("{}/atlas", xdg);
	if (uid == 0)
		return "/run/atlas";
	return fmt::format("/tmp/atlas-{}", uid);
}

std::vector<std::string> socket_search_dirs()
{
	std::vector<std::string> dirs{default_socket_dir()};
	auto add = [&](std::string dir) {
		if (std::find(dirs.begin(), dirs.end(), dir) == dirs.end())
			dirs.push_back(std::move(dir));
	};
	add("/run/atlas");
	if (DIR *tmp = opendir("/tmp")) {
		std::vector<std::string> per_uid;
		while (struct dirent *e = readdir(tmp)) {
			const std::string_view name(e->d_name);
			if (name.size() > 6 && name.starts_with("atlas-") &&
			    name.find_first_not_of("0123456789", 6) == std::string_view::npos)
				per_uid.push_back(fmt::format("/tmp/{}", name));
		}
		closedir(tmp);
		std::sort(per_uid.begin(), per_uid.end());
		for (auto &dir : per_uid)
			add(std::move(dir));
	}
	return dirs;
}

std::string socket_path(pid_t pid, const std::string &dir)
{
	return fmt::format("{}/{}.sock", dir, pid);
}

bool parse_mode(std::string_view text, Mode &mode) noexcept
{
	for (const auto &m : modes)
		if (text == m.name || text == m.alias) {
			mode = m.mode;
			return true;
		}
	return false;
}

std::string handle_request(Runtime &runtime, const Loader &loader, std::string_view line) noexcept
{
	// The server's exception wall: a request that throws (out of memory) is answered with
	// the error, or, when even that cannot be built, with a constant.
	Expected<std::string> response =
	    detail::guard([&]() -> Expected<std::string> { return handle(runtime, loader, line); });
	if (!response)
		response = detail::guard([&]() -> Expected<std::string> {
			return error_response({}, response.error().message);
		});
	return response ? std::move(response).value()
	                : std::string(R"({"ok":false,"error":"internal error"})");
}

class Server::Impl
{
public:
	Impl(Runtime &runtime, ServerOptions options)
	    : runtime_(runtime), options_(std::move(options))
	{
	}
	~Impl()
	{
		stop();
		unlink_socket();
	}

	Expected<void> start();
	void stop() noexcept;
	void unlink_socket() noexcept
	{
		if (!unlinked_.exchange(true) && !options_.path.empty())
			::unlink(options_.path.c_str());
	}

	Runtime &runtime_;
	ServerOptions options_;

private:
	void accept_loop() noexcept;
	void worker_loop() noexcept;
	// Wakes every server thread to follow the base view (Runtime::follow_base()): a
	// wait-free transition the last connection ran may have retired the view they are in.
	void rebase_all() noexcept;
	void serve(int fd) noexcept;
	Expected<void> peer_allowed(int fd) const;

	int listen_fd_ = -1;
	int stop_pipe_[2] = {-1, -1};
	int wake_pipe_[2] = {-1, -1}; // rebase_all() -> the acceptor (non-blocking)
	std::atomic<bool> unlinked_{true};
	std::vector<std::thread> threads_;
	std::mutex mu_;
	std::condition_variable cv_;
	std::deque<int> queue_;
	bool stopping_ = false;
	std::uint64_t rebase_gen_ = 0; // guarded by mu_
	std::mutex exempt_mu_;
	std::condition_variable exempt_cv_;
	unsigned exempted_ = 0;
};

namespace
{

// Creates `dir` (0700) if missing; refuses one that is not a directory owned by us.
Expected<void> prepare_dir(const std::string &dir)
{
	if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
		const int e = errno;
		return system_error(e,
		                    fmt::format("cannot create the control socket directory {}: "
		                                "{}; set XDG_RUNTIME_DIR to a writable directory "
		                                "or create {} (mode 0700)",
		                                dir, errno_text(e), dir));
	}
	struct stat st;
	if (lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
		return make_error(Errc::bad_state,
		                  fmt::format("{} is not a directory; remove it or set "
		                              "XDG_RUNTIME_DIR",
		                              dir));
	if (st.st_uid != geteuid())
		return make_error(Errc::not_permitted,
		                  fmt::format("{} belongs to uid {}, not to this process's uid {}: "
		                              "another user could replace the socket; use a "
		                              "directory of your own (XDG_RUNTIME_DIR)",
		                              dir, st.st_uid, geteuid()));
	return {};
}

} // namespace

Expected<void> Server::Impl::start()
{
	if (options_.path.empty())
		options_.path = socket_path(getpid(), default_socket_dir());
	if (!options_.trusted_keys) {
		if (const char *keys = std::getenv("ATLAS_TRUSTED_KEYS")) {
			if (!*keys)
				return make_error(
				    Errc::invalid_argument,
				    "ATLAS_TRUSTED_KEYS is set but empty; the control socket "
				    "is not started (it would load unsigned patches): name a "
				    "key file or directory, or unset it");
			options_.trusted_keys = keys;
		}
	}
	if (options_.trusted_keys && !options_.trusted_keys->empty()) {
		// Refuse to run unprotected: the keys were asked for.
		auto keys = TrustedKeys::load(*options_.trusted_keys);
		if (!keys) {
			Error e = keys.error();
			e.message =
			    fmt::format("ATLAS_TRUSTED_KEYS: {}; the control socket is not "
			                "started (it would load unsigned patches): fix the key "
			                "file or unset ATLAS_TRUSTED_KEYS",
			                e.message);
			return e;
		}
		if (options_.loader)
			options_.loader = signature_checking_loader(std::move(keys).value(),
			                                            std::move(options_.loader));
	}
	if (options_.workers == 0)
		options_.workers = 1;
	sockaddr_un addr{};
	addr.sun_family = AF_UNIX;
	if (options_.path.size() >= sizeof(addr.sun_path))
		return make_error(
		    Errc::invalid_argument,
		    fmt::format("control socket path {} is longer than {} bytes; use a "
		                "shorter XDG_RUNTIME_DIR",
		                options_.path, sizeof(addr.sun_path) - 1));
	std::memcpy(addr.sun_path, options_.path.c_str(), options_.path.size() + 1);
	const auto slash = options_.path.rfind('/');
	if (slash != std::string::npos && slash > 0)
		if (Expected<void> dir = prepare_dir(options_.path.substr(0, slash)); !dir)
			return dir;

	listen_fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (listen_fd_ < 0) {
		const int e = errno;
		return system_error(
		    e, fmt::format("control socket: socket() failed: {}", errno_text(e)));
	}
	// The path names a pid: a file there is left over from a dead process with this pid.
	::unlink(options_.path.c_str());
	// 0600 from the start: no window in which others could connect.
	mode_t old_mask = umask(0177);
	int bound = bind(listen_fd_, reinterpret_cast<sockaddr *>(&addr), sizeof(addr));
	int bind_errno = errno;
	umask(old_mask);
	if (bound != 0)
		return system_error(bind_errno, fmt::format("control socket: bind({}) failed: {}",
		                                            options_.path, errno_text(bind_errno)));
	unlinked_ = false;
	if (listen(listen_fd_, 16) != 0 || pipe2(stop_pipe_, O_CLOEXEC) != 0 ||
	    pipe2(wake_pipe_, O_CLOEXEC | O_NONBLOCK) != 0) {
		const int e = errno;
		return system_error(
		    e, fmt::format("control socket: listen/pipe failed: {}", errno_text(e)));
	}
	// std::system_error from std::thread: the caller's wall (Server::start()) reports it.
	threads_.emplace_back([this] { accept_loop(); });
	for (unsigned i = 0; i < options_.workers; i++)
		threads_.emplace_back([this] { worker_loop(); });
	// Every server thread is exempt before the first request can start a transition.
	std::unique_lock lock(exempt_mu_);
	exempt_cv_.wait(lock, [&] { return exempted_ == threads_.size(); });
	return {};
}

void Server::Impl::stop() noexcept
{
	{
		std::lock_guard lock(mu_);
		if (stopping_ && threads_.empty())
			return;
		stopping_ = true;
		cv_.notify_all();
	}
	if (stop_pipe_[1] >= 0) {
		char c = 0;
		(void)!::write(stop_pipe_[1], &c, 1);
	}
	for (auto &t : threads_)
		if (t.joinable())
			t.join();
	threads_.clear();
	for (int fd : queue_)
		::close(fd);
	queue_.clear();
	for (int *fd :
	     {&listen_fd_, &stop_pipe_[0], &stop_pipe_[1], &wake_pipe_[0], &wake_pipe_[1]}) {
		if (*fd >= 0)
			::close(*fd);
		*fd = -1;
	}
}

void Server::Impl::accept_loop() noexcept
{
	// It follows the base after every connection: not named as left behind.
	(void)runtime_.exempt_thread(gettid(), /*follows_base=*/true);
	{
		std::lock_guard lock(exempt_mu_);
		exempted_++;
		exempt_cv_.notify_all();
	}
	for (;;) {
		pollfd fds[3] = {{listen_fd_, POLLIN, 0},
		                 {stop_pipe_[0], POLLIN, 0},
		                 {wake_pipe_[0], POLLIN, 0}};
		if (poll(fds, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		if (fds[1].revents)
			return;
		if (fds[2].revents) {
			char drain[64];
			while (::read(wake_pipe_[0], drain, sizeof(drain)) > 0) {
			}
			(void)runtime_.follow_base();
		}
		if (!(fds[0].revents & POLLIN))
			continue;
		int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
		if (fd < 0)
			continue; // EINTR, ECONNABORTED, EMFILE: keep serving
		std::lock_guard lock(mu_);
		if (stopping_) {
			::close(fd);
			return;
		}
		if (queue_.size() >= 64) {
			(void)write_all(fd, error_response({}, "busy: too many connections "
			                                       "waiting; retry later") +
			                        "\n");
			::close(fd);
			continue;
		}
		queue_.push_back(fd);
		cv_.notify_one();
	}
}

void Server::Impl::worker_loop() noexcept
{
	// It follows the base after every connection: not named as left behind.
	(void)runtime_.exempt_thread(gettid(), /*follows_base=*/true);
	{
		std::lock_guard lock(exempt_mu_);
		exempted_++;
		exempt_cv_.notify_all();
	}
	std::uint64_t seen = 0;
	for (;;) {
		int fd = -1;
		{
			std::unique_lock lock(mu_);
			cv_.wait(lock, [&] {
				return stopping_ || !queue_.empty() || rebase_gen_ != seen;
			});
			if (stopping_)
				return;
			seen = rebase_gen_;
			if (!queue_.empty()) {
				fd = queue_.front();
				queue_.pop_front();
			}
		}
		(void)runtime_.follow_base();
		if (fd < 0)
			continue;
		serve(fd);
		::close(fd);
		rebase_all();
	}
}

void Server::Impl::rebase_all() noexcept
{
	{
		std::lock_guard lock(mu_);
		rebase_gen_++;
		cv_.notify_all();
	}
	char c = 1;
	if (wake_pipe_[1] >= 0)
		(void)!::write(wake_pipe_[1], &c, 1);
}

Expected<void> Server::Impl::peer_allowed(int fd) const
{
	Expected<PeerFacts> facts = probe_peer(fd);
	if (!facts)
		return facts.error();
	if (options_.adjust_peer_facts)
		options_.adjust_peer_facts(*facts);
	PeerDecision decision = decide_peer(*facts);
	if (!decision.allowed)
		return make_error(Errc::not_permitted, std::move(decision.message));
	return {};
}

void Server::Impl::serve(int fd) noexcept
{
	// Out of memory while buffering (the wall, guard()): drop this connection, keep serving.
	(void)detail::guard([&]() -> Expected<void> {
		if (Expected<void> allowed = peer_allowed(fd); !allowed) {
			(void)write_all(fd, error_response({}, allowed.error().message) + "\n");
			return {};
		}
		std::string buffer;
		char chunk[4096];
		for (;;) {
			// Serve every complete line already received.
			std::size_t nl;
			while ((nl = buffer.find('\n')) != std::string::npos) {
				std::string_view line(buffer.data(), nl);
				if (!line.empty() && line.back() == '\r')
					line.remove_suffix(1);
				if (!line.empty() &&
				    !write_all(fd, handle_request(runtime_, options_.loader, line) +
				                       "\n"))
					return {};
				buffer.erase(0, nl + 1);
			}
			if (buffer.size() > options_.max_line) {
				(void)write_all(
				    fd,
				    error_response({}, fmt::format("request line longer than {} "
				                                   "bytes; closing the connection",
				                                   options_.max_line)) +
				        "\n");
				return {};
			}
			pollfd pfd[2] = {{fd, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
			int ready = poll(pfd, 2, static_cast<int>(options_.idle_timeout.count()));
			if (ready < 0 && errno == EINTR)
				continue;
			if (ready <= 0 || pfd[1].revents)
				return {}; // idle too long, or stopping
			ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				// Half-closed: a last request without its newline is still served.
				if (n == 0 && !buffer.empty() && buffer.size() <= options_.max_line)
					(void)write_all(
					    fd, handle_request(runtime_, options_.loader, buffer) +
					            "\n");
				return {};
			}
			buffer.append(chunk, static_cast<std::size_t>(n));
		}
	});
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() = default;

Expected<std::unique_ptr<Server>> Server::start(Runtime &runtime, ServerOptions options) noexcept
{
	// The wall of the server's setup (guard()): std::bad_alloc, std::system_error from
	// std::thread.
	Expected<std::unique_ptr<Server>> server =
	    detail::guard([&]() -> Expected<std::unique_ptr<Server>> {
		    auto impl = std::make_unique<Impl>(runtime, std::move(options));
		    if (Expected<void> started = impl->start(); !started)
			    return started.error();
		    return std::unique_ptr<Server>(new Server(std::move(impl)));
	    });
	if (!server && server.error().code == Errc::internal) {
		Error e = server.error();
		e.message.replace(0, std::string_view("internal error").size(), "control socket");
		return e;
	}
	return server;
}

const std::string &Server::path() const noexcept
{
	return impl_->options_.path;
}

void Server::unlink_socket() noexcept
{
	impl_->unlink_socket();
}

Expected<nlohmann::json> call(const std::string &path, const nlohmann::json &request,
                              std::chrono::milliseconds timeout)
{
	sockaddr_un addr{};
	addr.sun_family = AF_UNIX;
	if (path.size() >= sizeof(addr.sun_path))
		return make_error(Errc::invalid_argument,
		                  fmt::format("socket path {} is too long", path));
	std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		const int e = errno;
		return system_error(e, fmt::format("socket() failed: {}", errno_text(e)));
	}
	struct Closer {
		int fd;
		~Closer()
		{
			::close(fd);
		}
	} closer{fd};
	if (connect(fd, reinterpret_cast<sockaddr *>(&addr), sizeof(addr)) != 0) {
		const int e = errno;
		return system_error(
		    e, fmt::format("connecting to {} failed: {}", path, errno_text(e)));
	}
	if (!write_all(fd, request.dump() + "\n")) {
		const int e = errno;
		return system_error(
		    e, fmt::format("sending the request to {} failed: {}", path, errno_text(e)));
	}
	std::string buffer;
	const auto end = std::chrono::steady_clock::now() + timeout;
	char chunk[4096];
	while (buffer.find('\n') == std::string::npos) {
		auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
		    end - std::chrono::steady_clock::now());
		if (left.count() <= 0)
			return make_error(
			    Errc::timeout,
			    fmt::format("no response from {} within {} ms", path, timeout.count()));
		pollfd pfd{fd, POLLIN, 0};
		int ready =
		    poll(&pfd, 1, static_cast<int>(std::min<long long>(left.count(), 1000)));
		if (ready < 0 && errno != EINTR) {
			const int e = errno;
			return system_error(e, fmt::format("poll failed: {}", errno_text(e)));
		}
		if (ready <= 0)
			continue;
		ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return make_error(Errc::io,
			                  fmt::format("{} closed the connection without a "
			                              "response",
			                              path),
			                  n < 0 ? errno : 0);
		buffer.append(chunk, static_cast<std::size_t>(n));
	}
	nlohmann::json response =
	    nlohmann::json::parse(buffer.substr(0, buffer.find('\n')), nullptr, false);
	if (response.is_discarded() || !response.is_object())
		return make_error(
		    Errc::invalid_format,
		    fmt::format("{} answered something that is not a JSON object", path));
	return response;
}

} // namespace atlas::control
