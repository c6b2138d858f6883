// atlas: the command-line client of the control socket (docs/live-patching.md, "The atlas CLI").
#include <control.hpp>
#include <protocol.hpp>
#include <signature.hpp>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <ctime>
#include <dirent.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace
{

using atlas::control::Exit;
using atlas::control::Verb;

// Exit codes: protocol.hpp's table (docs/live-patching.md, "The atlas CLI").
constexpr int exit_ok = static_cast<int>(Exit::ok);
constexpr int exit_failed = static_cast<int>(Exit::failed);
constexpr int exit_usage = static_cast<int>(Exit::usage);
constexpr int exit_refused = static_cast<int>(Exit::refused);
constexpr int exit_pending = static_cast<int>(Exit::pending);
constexpr int exit_unreachable = static_cast<int>(Exit::unreachable);

bool json_output = false;

std::vector<std::string> socket_dirs()
{
	return atlas::control::socket_search_dirs();
}

// The socket of `pid`, in either location; empty if none exists.
std::string find_socket(pid_t pid)
{
	for (const auto &dir : socket_dirs()) {
		std::string path = atlas::control::socket_path(pid, dir);
		struct stat st;
		if (stat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode))
			return path;
	}
	return {};
}

int unreachable(pid_t pid, const std::string &why)
{
	std::string message;
	if (kill(pid, 0) != 0 && errno == ESRCH)
		message = fmt::format("no process {}", pid);
	else
		message = fmt::format(
		    "no atlas runtime reachable in process {}: {}; start the program with "
		    "LD_PRELOAD=/path/to/libatlas-preload.so (or link libatlas and start its "
		    "control server), and run atlas as the same user or root",
		    pid, why);
	if (json_output)
		fmt::print("{}\n", nlohmann::json{{"ok", false}, {"error", message}}.dump());
	else
		fmt::print(stderr, "atlas: {}\n", message);
	return exit_unreachable;
}

bool request(pid_t pid, const nlohmann::json &req, nlohmann::json &resp, int &code,
             std::chrono::milliseconds timeout = std::chrono::minutes(10))
{
	std::string path = find_socket(pid);
	if (path.empty()) {
		std::vector<std::string> tried;
		for (const auto &dir : socket_dirs())
			tried.push_back(atlas::control::socket_path(pid, dir));
		code = unreachable(
		    pid, fmt::format("no control socket at {}", fmt::join(tried, " or ")));
		return false;
	}
	auto answer = atlas::control::call(path, req, timeout);
	if (!answer) {
		code = unreachable(pid, answer.error().message);
		return false;
	}
	resp = std::move(answer).value();
	return true;
}

// The applied patch that `given` names: its whole identity ("<name>@<hash>/<build-id>"), its
// name, or an unambiguous prefix of its identity. False, with the exit code and the error
// printed, if none or several match.
bool resolve_identity(pid_t pid, const std::string &given, std::string &identity, int &code)
{
	nlohmann::json resp;
	if (!request(pid, {{"verb", "status"}}, resp, code))
		return false;
	std::vector<std::string> applied, matches;
	for (const auto &a : resp["status"].value("applied", nlohmann::json::array()))
		applied.push_back(a.value("change", std::string()));
	for (const auto &id : applied)
		if (id == given) {
			identity = id;
			return true;
		}
	for (const auto &id : applied)
		if (id.substr(0, id.find('@')) == given || id.starts_with(given))
			matches.push_back(id);
	if (matches.size() == 1) {
		identity = matches[0];
		return true;
	}
	std::string message;
	if (matches.empty()) {
		message = fmt::format(
		    "revert: '{}' is not applied in process {}: no applied patch has that name "
		    "or starts with it{}",
		    given, pid,
		    applied.empty() ? std::string("; none is applied")
		                    : fmt::format("; applied: {}", fmt::join(applied, ", ")));
		code = exit_refused; // as the runtime answers a revert of what is not applied
	} else {
		message =
		    fmt::format("'{}' names {} applied patches: {}; give more of the identity",
		                given, matches.size(), fmt::join(matches, ", "));
		code = exit_usage;
	}
	if (json_output)
		fmt::print(
		    "{}\n",
		    nlohmann::json{
		        {"ok", false},
		        {"outcome", code == exit_refused
		                        ? atlas::control::spec_of(atlas::Outcome::refused).name
		                        : "usage"},
		        {"message", message}}
		        .dump());
	else
		fmt::print(stderr, "atlas: {}\n", message);
	return false;
}

// The exit code of a response: its outcome's, from the protocol's table.
int exit_of(const nlohmann::json &resp)
{
	if (const auto *outcome = atlas::control::find_outcome(resp.value("outcome", "")))
		return static_cast<int>(outcome->exit);
	return resp.value("ok", false) ? exit_ok : exit_failed;
}

std::string ms(long long ns)
{
	return fmt::format("{:.3f} ms", static_cast<double>(ns) / 1e6);
}

// How long ago a CLOCK_MONOTONIC time (the runtime's clock, the same in every process) was.
std::string ago(long long monotonic_ns)
{
	if (monotonic_ns <= 0)
		return "never";
	timespec now{};
	clock_gettime(CLOCK_MONOTONIC, &now);
	const long long now_ns = static_cast<long long>(now.tv_sec) * 1'000'000'000 + now.tv_nsec;
	return fmt::format("{} ago", ms(std::max(now_ns - monotonic_ns, 0LL)));
}

void print_threads(const nlohmann::json &threads, const char *indent)
{
	for (const auto &t : threads) {
		std::string note = t.value("note", "");
		std::string where = t.value("where", "");
		fmt::print("{}{:>8} {:<16} view {:<4} {:<8}{} last quiescence {}{}{}\n", indent,
		           t.value("tid", 0), t.value("name", ""), t.value("view", 0L),
		           t.value("state", "?"),
		           t.value("migrates_on_wake", false) ? " (migrates on wake)" : "",
		           ago(t.value("last_quiescence_ns", 0LL)),
		           where.empty() ? "" : "; " + where,
		           note.empty() ? "" : "  (" + note + ")");
	}
}

// Prints a transition response; returns the exit code.
int report(const nlohmann::json &resp)
{
	int code = exit_of(resp);
	if (json_output) {
		fmt::print("{}\n", resp.dump());
		return code;
	}
	if (resp.contains("error")) {
		fmt::print(stderr, "atlas: {}\n", resp.value("error", ""));
		return code;
	}
	fmt::print("{}: {}\n", resp.value("outcome", "?"), resp.value("message", ""));
	if (resp.contains("report")) {
		const auto &r = resp["report"];
		if (r.value("transition", 0) != 0)
			fmt::print("transition {} ({} mode) took {}\n", r.value("transition", 0),
			           r.value("mode", "?"), ms(r.value("duration_ns", 0LL)));
		if (!r["lagging"].empty()) {
			fmt::print("lagging threads:\n");
			print_threads(r["lagging"], "  ");
		}
	}
	if (code == exit_pending)
		fmt::print("next: `atlas wait <pid>` to keep waiting or `atlas revert-pending "
		           "<pid>` to go back\n");
	return code;
}

// What the command line gave (Arg): the fields of the command's request.
struct Invocation {
	const struct Command *command = nullptr;
	pid_t pid = 0;
	std::string patch, identity, mode = "auto", key_file, key_name;
	long long deadline = 0;
};

int cmd_status(Invocation &in)
{
	const pid_t pid = in.pid;
	nlohmann::json resp;
	int code;
	if (!request(pid, {{"verb", "status"}}, resp, code, std::chrono::seconds(30)))
		return code;
	if (json_output) {
		fmt::print("{}\n", resp.dump());
		return resp.value("ok", false) ? exit_ok : exit_failed;
	}
	const auto &s = resp["status"];
	fmt::print("process {}: {}\n", pid, s.value("mode", "?"));
	if (s.value("views_available", false))
		fmt::print("  wait-free mode: available (address-space views)\n");
	else
		fmt::print("  wait-free mode: unavailable: {}\n",
		           s.value("views_note", std::string("no reason given")));
	const std::string membarrier_note = s.value("membarrier_note", "");
	fmt::print("  membarrier SYNC_CORE: {}{}\n",
	           s.value("membarrier_sync_core", false) ? "yes" : "no",
	           membarrier_note.empty() ? "" : ": " + membarrier_note);
	fmt::print("base view {}\n", s.value("base_view", 0L));
	if (s.contains("single_view") && s["single_view"].is_boolean())
		fmt::print("views live: {}\n",
		           s["single_view"].get<bool>()
		               ? "one"
		               : "several (a transition in progress, or a retired view still "
		                 "occupied by a thread blocked in it or an exempt thread)");
	else
		fmt::print("views live: unknown (no views, or no probe)\n");
	if (s.contains("transition"))
		fmt::print("transition {} {} (target view {})\n", s["transition"].value("id", 0),
		           s["transition"].value("state", "?"),
		           s["transition"].value("target_view", 0L));
	fmt::print("threads ({}):\n", s["threads"].size());
	print_threads(s["threads"], "  ");
	std::vector<long long> exempt;
	for (const auto &t : s.value("exempt_threads", nlohmann::json::array()))
		exempt.push_back(t.get<long long>());
	fmt::print("exempt threads ({}){}{}\n", exempt.size(), exempt.empty() ? "" : ": ",
	           fmt::join(exempt, " "));
	fmt::print("applied patches ({}):\n", s["applied"].size());
	for (const auto &a : s["applied"])
		fmt::print("  {}  ({} mode, transition {}, {})\n", a.value("change", ""),
		           a.value("mode", "?"), a.value("transition", 0),
		           ms(a.value("duration_ns", 0LL)));
	const auto split = s.value("loaded_while_split", nlohmann::json::array());
	fmt::print("objects loaded while two views exist ({}){}\n", split.size(),
	           split.empty() ? "" : ":");
	for (const auto &o : split)
		fmt::print("  {}  (transition {}): {}\n", o.value("name", ""),
		           o.value("transition", 0), o.value("note", ""));
	const auto behind = s.value("left_behind", nlohmann::json::array());
	fmt::print("threads left in a retired view ({}){}\n", behind.size(),
	           behind.empty() ? "" : ":");
	for (const auto &t : behind)
		fmt::print("  {} {}  view {}: {}\n", t.value("tid", 0), t.value("name", ""),
		           t.value("view", 0L), t.value("note", ""));
	fmt::print("threads that woke in a retired view and moved to the base: {}\n",
	           s.value("migrated_on_wake", 0ULL));
	fmt::print("handshakes begun (slow paths of points, wrapped-call exits): {}\n",
	           s.value("slow_path_entries", 0ULL));
	if (s.contains("last_report")) {
		const auto &r = s["last_report"];
		const auto transition = r.value("transition", 0ULL);
		fmt::print("last request: {} {}: {} ({}{} mode, {})\n", r.value("outcome", "?"),
		           r.value("change", ""), r.value("message", ""),
		           transition ? fmt::format("transition {}, ", transition) : "",
		           r.value("mode", "?"), ms(r.value("duration_ns", 0LL)));
		const auto lagging = r.value("lagging", nlohmann::json::array());
		if (!lagging.empty()) {
			fmt::print("  lagging threads:\n");
			print_threads(lagging, "    ");
		}
	}
	return exit_ok;
}

int cmd_ps(Invocation &)
{
	nlohmann::json list = nlohmann::json::array();
	for (const auto &dir : socket_dirs()) {
		DIR *d = opendir(dir.c_str());
		if (!d)
			continue;
		while (struct dirent *e = readdir(d)) {
			char *end = nullptr;
			long pid = std::strtol(e->d_name, &end, 10);
			if (pid <= 0 || std::string(end) != ".sock")
				continue;
			std::string path = fmt::format("{}/{}", dir, e->d_name);
			// A process killed before it could remove its socket: remove it now (when
			// this user may), and do not list it.
			if (kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) {
				unlink(path.c_str());
				continue;
			}
			auto resp =
			    atlas::control::call(path, {{"verb", "ping"}}, std::chrono::seconds(2));
			bool alive = resp && resp->value("ok", false);
			const std::string error = resp ? "" : resp.error().message;
			std::string comm;
			if (FILE *f = std::fopen(fmt::format("/proc/{}/comm", pid).c_str(), "r")) {
				char buf[64] = {};
				if (std::fgets(buf, sizeof(buf), f))
					comm = buf;
				std::fclose(f);
				if (!comm.empty() && comm.back() == '\n')
					comm.pop_back();
			}
			list.push_back({{"pid", pid},
			                {"comm", comm},
			                {"socket", path},
			                {"alive", alive},
			                {"error", alive ? "" : error}});
		}
		closedir(d);
	}
	if (json_output) {
		fmt::print("{}\n", list.dump());
		return exit_ok;
	}
	if (list.empty())
		fmt::print("no atlas runtimes found (looked in {})\n",
		           fmt::join(socket_dirs(), ", "));
	for (const auto &p : list)
		fmt::print("{:>8} {:<16} {}{}\n", p.value("pid", 0L), p.value("comm", ""),
		           p.value("socket", ""),
		           p.value("alive", false)
		               ? ""
		               : "  (not answering: " + p.value("error", std::string()) + ")");
	return exit_ok;
}

// `atlas build-patch ...` runs atlas-build-patch (tools/build-patch, docs/patch-builder.md):
// next to this program, in the build tree's tools/build-patch/, or from PATH.
int exec_build_patch(char **argv)
{
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	std::string dir = n > 0 ? std::string(self, size_t(n)) : std::string();
	dir = dir.substr(0, dir.rfind('/') + 1);
	for (const std::string &p :
	     {dir + "atlas-build-patch", dir + "../build-patch/atlas-build-patch"})
		execv(p.c_str(), argv);
	execvp("atlas-build-patch", argv);
	fmt::print(stderr, "atlas: cannot run atlas-build-patch (not next to {} nor in PATH): {}\n",
	           dir.empty() ? "atlas" : dir, std::strerror(errno));
	return exit_failed;
}

// The socket answers when the transition ends: allow its deadline and then some.
std::chrono::milliseconds timeout_of(const Invocation &in)
{
	return std::chrono::milliseconds(in.deadline) + std::chrono::minutes(2);
}

int cmd_apply(Invocation &in)
{
	// The target resolves the path in its own working directory: send it absolute.
	if (!in.patch.empty() && in.patch[0] != '/') {
		char cwd[4096];
		if (getcwd(cwd, sizeof(cwd)) && access(in.patch.c_str(), F_OK) == 0)
			in.patch = fmt::format("{}/{}", cwd, in.patch);
	}
	nlohmann::json resp;
	int code = exit_ok;
	if (!request(in.pid,
	             {{"verb", "apply"},
	              {"patch", in.patch},
	              {"mode", in.mode},
	              {"deadline_ms", in.deadline}},
	             resp, code, timeout_of(in)))
		return code;
	return report(resp);
}

int cmd_revert(Invocation &in)
{
	nlohmann::json resp;
	int code = exit_ok;
	std::string resolved;
	if (!resolve_identity(in.pid, in.identity, resolved, code))
		return code;
	if (!request(in.pid,
	             {{"verb", "revert"},
	              {"identity", resolved},
	              {"mode", in.mode},
	              {"deadline_ms", in.deadline}},
	             resp, code, timeout_of(in)))
		return code;
	return report(resp);
}

// wait, revert_pending: the verb with its deadline, answered by a report.
int cmd_transition(Invocation &in);

int cmd_keygen(Invocation &in)
{
	if (auto made = atlas::control::generate_key(in.key_name); !made) {
		fmt::print(stderr, "atlas: {}\n", made.error().message);
		return exit_failed;
	}
	fmt::print("wrote {0}.key (private: keep it secret) and {0}.pub (add it to "
	           "ATLAS_TRUSTED_KEYS)\n",
	           in.key_name);
	return exit_ok;
}

int cmd_sign(Invocation &in)
{
	if (auto signed_ = atlas::control::sign_file(in.key_file, in.patch); !signed_) {
		fmt::print(stderr, "atlas: {}\n", signed_.error().message);
		return exit_failed;
	}
	fmt::print("wrote {}.sig\n", in.patch);
	return exit_ok;
}

// What a command takes on its command line, in this order.
enum Arg : unsigned {
	arg_pid = 1u << 0,
	arg_key = 1u << 1,      // sign: the private key
	arg_key_name = 1u << 2, // keygen: the path prefix of the pair
	arg_patch = 1u << 3,
	arg_patch_id = 1u << 4,
	arg_mode = 1u << 5,
	arg_deadline = 1u << 6,
};

// The commands, in the style of bpftool's command tables: a command that sends a protocol verb
// takes its summary and its arguments from the verb's row (protocol.hpp); the others are the
// CLI's own.
struct Command {
	std::string_view name;
	std::optional<Verb> verb;
	std::string_view summary; // empty: the verb's
	unsigned args;            // besides those of the verb's fields
	int (*run)(Invocation &);
};

const Command commands[] = {
    {"apply", Verb::apply, {}, 0, cmd_apply},
    {"revert", Verb::revert, {}, 0, cmd_revert},
    {"status", Verb::status, {}, 0, cmd_status},
    {"ps", std::nullopt, "list processes running the atlas runtime", 0, cmd_ps},
    {"wait", Verb::wait, {}, 0, cmd_transition},
    {"revert-pending", Verb::revert_pending, {}, 0, cmd_transition},
    {"keygen", std::nullopt, "make an Ed25519 key pair for signed patches: NAME.key, NAME.pub",
     arg_key_name, cmd_keygen},
    {"sign", std::nullopt, "sign a patch: writes PATCH.sig", arg_key | arg_patch, cmd_sign},
};

int cmd_transition(Invocation &in)
{
	const auto &spec = atlas::control::spec_of(*in.command->verb);
	nlohmann::json resp;
	int code = exit_ok;
	if (!request(in.pid, {{"verb", spec.name}, {"deadline_ms", in.deadline}}, resp, code,
	             timeout_of(in)))
		return code;
	return report(resp);
}

unsigned args_of(const Command &c)
{
	unsigned args = c.args;
	if (!c.verb)
		return args;
	const unsigned fields = atlas::control::spec_of(*c.verb).fields;
	args |= arg_pid;
	if (fields & atlas::control::field_patch)
		args |= arg_patch;
	if (fields & atlas::control::field_identity)
		args |= arg_patch_id;
	if (fields & atlas::control::field_mode)
		args |= arg_mode;
	if (fields & atlas::control::field_deadline_ms)
		args |= arg_deadline;
	return args;
}

void add_arg(CLI::App &c, Arg arg, Invocation &in)
{
	std::vector<std::string> mode_names;
	for (const auto &m : atlas::control::modes)
		mode_names.emplace_back(m.name);
	switch (arg) {
	case arg_pid:
		c.add_option("pid", in.pid, "process id")->required()->check(CLI::PositiveNumber);
		break;
	case arg_key:
		c.add_option("key", in.key_file, "private key (NAME.key from atlas keygen)")
		    ->required();
		break;
	case arg_key_name:
		c.add_option("name", in.key_name, "path prefix of the two files")->required();
		break;
	case arg_patch:
		c.add_option("patch", in.patch,
		             in.command->verb ? "patch file (a path the target process can read)"
		                              : "patch file")
		    ->required();
		break;
	case arg_patch_id:
		c.add_option("patch-id", in.identity,
		             "the patch: its name, its identity as `atlas status` shows it, or an "
		             "unambiguous prefix of the identity")
		    ->required();
		break;
	case arg_mode:
		c.add_option("--mode", in.mode, fmt::format("{}", fmt::join(mode_names, ", ")))
		    ->check(CLI::IsMember(mode_names));
		break;
	case arg_deadline:
		c.add_option("--deadline", in.deadline,
		             "milliseconds the transition may take (default: the runtime's)")
		    ->check(CLI::NonNegativeNumber);
		break;
	}
}

std::string exit_code_help()
{
	std::vector<std::string> codes;
	for (const auto &e : atlas::control::exits)
		codes.push_back(fmt::format("{} {}", static_cast<int>(e.code), e.meaning));
	return fmt::format("Exit codes: {}.", fmt::join(codes, ", "));
}

} // namespace

int main(int argc, char **argv)
{
	if (argc > 1 && std::string(argv[1]) == "build-patch")
		return exec_build_patch(argv + 1);
	CLI::App app{"atlas: live-patch running programs through their atlas runtime"};
	app.require_subcommand(1);
	app.fallthrough(); // --json also after the subcommand
	app.add_flag("--json", json_output, "machine-readable output (one JSON object)");
	app.footer(exit_code_help() +
	           "\natlas build-patch --help: build a patch from a source diff.");

	// One Invocation per command: each binds its own options.
	std::vector<Invocation> invocations(std::size(commands));
	std::vector<CLI::App *> subcommands;
	for (std::size_t i = 0; i < std::size(commands); i++) {
		const Command &c = commands[i];
		Invocation &in = invocations[i];
		in.command = &c;
		const std::string_view summary =
		    !c.summary.empty() ? c.summary : atlas::control::spec_of(*c.verb).summary;
		CLI::App *sub = app.add_subcommand(std::string(c.name), std::string(summary));
		const unsigned args = args_of(c);
		for (unsigned bit = 1; bit <= arg_deadline; bit <<= 1)
			if (args & bit)
				add_arg(*sub, static_cast<Arg>(bit), in);
		subcommands.push_back(sub);
	}

	try {
		app.parse(argc, argv);
	} catch (const CLI::ParseError &e) {
		int r = app.exit(e);
		return r == 0 ? 0 : exit_usage;
	}
	for (std::size_t i = 0; i < subcommands.size(); i++)
		if (*subcommands[i])
			return commands[i].run(invocations[i]);
	return exit_usage;
}
