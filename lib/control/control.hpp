// atlas/control: the control socket of the runtime (docs/live-patching.md, "Control socket").
//
// A Server serves one Runtime on a Unix stream socket from runtime-owned threads (exempt from
// the registry; nothing runs in signal handlers). Protocol: one JSON request per line, one
// JSON response per line. The socket is a code-injection endpoint: only peers the kernel would
// let ptrace-attach to this process are served (peer_policy.hpp), and with ATLAS_TRUSTED_KEYS
// only signed patches are loaded (signature.hpp).
#ifndef ATLAS_CONTROL_HPP
#define ATLAS_CONTROL_HPP

#include "peer_policy.hpp"

#include <atlas/error.hpp>
#include <atlas/runtime.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>

namespace atlas::control
{

// A loaded patch, or why loading failed (nothing was changed).
using Loaded = Expected<std::shared_ptr<CodeChange>>;
// Turns a patch file into a CodeChange (atlas::patch::load_patch in the preload library; a test
// loader in tests). Called on a server thread, inside the server's exception wall (a throw is
// reported as a failed apply).
// When the apply ends already_applied, refused or failed, the server calls the change's
// unreachable() (a loaded patch is unmapped) unless someone besides it still holds the change:
// a loader that keeps a reference of its own releases such a change itself.
using Loader = std::function<Loaded(const std::string &path)>;

// Where a process of this effective uid puts its socket: $XDG_RUNTIME_DIR/atlas when
// XDG_RUNTIME_DIR is absolute and belongs to this uid; else /run/atlas for root and
// /tmp/atlas-<uid> for any other uid. (A daemon that dropped privileges after a root parent
// set XDG_RUNTIME_DIR, or one started by root, cannot write root's directories.)
std::string default_socket_dir();
// Where `atlas` looks for sockets: this uid's directory, /run/atlas and every /tmp/atlas-<uid>
// (root reaches all; another user only its own, the others being mode 0700).
std::vector<std::string> socket_search_dirs();
// <dir>/<pid>.sock
std::string socket_path(pid_t pid, const std::string &dir);

struct ServerOptions {
	std::string path;                 // empty: socket_path(getpid(), default_socket_dir())
	Loader loader;                    // null: apply answers that no loader is available
	unsigned workers = 4;             // connections served at once
	std::size_t max_line = 64 * 1024; // longer requests are answered with an error
	std::chrono::milliseconds idle_timeout{30000}; // a silent connection is closed after it
	// Public keys a patch must be signed with: a PEM file or a directory of them
	// (signature.hpp). nullopt: the ATLAS_TRUSTED_KEYS environment variable, read once by
	// start() (unset: no signature needed; set but empty: start() fails); "": none. A bad key
	// file makes start() fail.
	std::optional<std::string> trusted_keys;
	// Test hook: changes the facts the peer policy decides on (ptrace_scope, capabilities).
	std::function<void(PeerFacts &)> adjust_peer_facts;
};

class Server
{
public:
	// Creates the directory (0700) if missing, binds the socket (0600), starts the threads and
	// exempts them from `runtime`'s registry. Never null on success.
	static Expected<std::unique_ptr<Server>> start(Runtime &runtime,
	                                               ServerOptions options) noexcept;
	// Stops the threads and removes the socket.
	~Server();
	Server(const Server &) = delete;
	Server &operator=(const Server &) = delete;

	const std::string &path() const noexcept;
	// Removes the socket file without stopping (for process exit, where joining threads is
	// not safe).
	void unlink_socket() noexcept;

	class Impl;

private:
	explicit Server(std::unique_ptr<Impl> impl);
	std::unique_ptr<Impl> impl_;
};

// One request line to one response (no newline). The server's exception wall: never throws.
std::string handle_request(Runtime &runtime, const Loader &loader, std::string_view line) noexcept;

// Parses a mode name: auto|automatic, global, wait-free|wait_free.
bool parse_mode(std::string_view text, Mode &mode) noexcept;

nlohmann::json report_to_json(const Report &report);

// Client side (the CLI and tests): connect to `path`, send one request, read one response (a
// JSON object). The error names what failed: Errc::system with the errno (no such socket,
// connection refused, ...), timeout, or invalid_format for an answer that is not JSON.
Expected<nlohmann::json> call(const std::string &path, const nlohmann::json &request,
                              std::chrono::milliseconds timeout = std::chrono::minutes(10));

} // namespace atlas::control

#endif
