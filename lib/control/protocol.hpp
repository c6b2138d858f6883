// The control protocol, defined once (docs/live-patching.md, "Protocol"): its verbs and the
// request fields each takes, the outcomes of a report with the exit code the CLI gives each,
// the modes' names. The server (control.cpp) dispatches on these tables; the CLI (tools/atlas)
// builds its commands, help text and exit codes from them.
#ifndef ATLAS_CONTROL_PROTOCOL_HPP
#define ATLAS_CONTROL_PROTOCOL_HPP

#include <atlas/runtime.hpp>

#include <array>
#include <string>
#include <string_view>

namespace atlas::control
{

inline constexpr int protocol_version = 1;

enum class Verb { ping, status, apply, revert, wait, revert_pending };

// The request fields a verb reads (bits of VerbSpec::fields).
enum Field : unsigned {
	field_patch = 1u << 0,       // "patch": the patch file's path (apply)
	field_identity = 1u << 1,    // "identity": an applied patch's identity (revert)
	field_mode = 1u << 2,        // "mode": auto, global or wait-free
	field_deadline_ms = 1u << 3, // "deadline_ms": 0 or absent: the runtime's default
};

struct VerbSpec {
	Verb verb;
	std::string_view name; // on the wire
	unsigned fields;       // Field bits
	bool reports;          // answered with a report response (outcome, message, report)
	std::string_view summary;
};

// In the order a user reaches for them (messages list them so).
inline constexpr std::array<VerbSpec, 6> verbs{{
    {Verb::apply, "apply", field_patch | field_mode | field_deadline_ms, true,
     "apply a patch file"},
    {Verb::revert, "revert", field_identity | field_mode | field_deadline_ms, true,
     "revert an applied patch"},
    {Verb::status, "status", 0, false, "mode, threads, applied patches, timings"},
    {Verb::wait, "wait", field_deadline_ms, true,
     "keep waiting for a pending wait-free transition"},
    {Verb::revert_pending, "revert_pending", field_deadline_ms, true,
     "undo a pending wait-free transition"},
    {Verb::ping, "ping", 0, false, "is a runtime there: its pid and protocol version"},
}};

// The verb named `name` on the wire, or null.
const VerbSpec *find_verb(std::string_view name) noexcept;
const VerbSpec &spec_of(Verb verb) noexcept;
// "apply, revert, status, wait, revert_pending or ping": for messages.
std::string verb_list();

// The CLI's exit codes.
enum class Exit : int {
	ok = 0,
	failed = 1,
	usage = 2,
	already_applied = 3,
	refused = 4,
	pending = 5,
	reverted = 6,
	unreachable = 7,
};

struct ExitSpec {
	Exit code;
	std::string_view meaning; // for the CLI's help
};

inline constexpr std::array<ExitSpec, 8> exits{{
    {Exit::ok, "done"},
    {Exit::failed, "failed"},
    {Exit::usage, "usage"},
    {Exit::already_applied, "already applied"},
    {Exit::refused, "refused (process unchanged)"},
    {Exit::pending, "pending"},
    {Exit::reverted, "reverted"},
    {Exit::unreachable, "no reachable runtime"},
}};

// Each outcome of a report: its name on the wire (`"outcome"`) and its exit code.
struct OutcomeSpec {
	Outcome outcome;
	std::string_view name;
	Exit exit;
};

inline constexpr std::array<OutcomeSpec, 7> outcomes{{
    {Outcome::finished, "finished", Exit::ok},
    {Outcome::already_applied, "already_applied", Exit::already_applied},
    {Outcome::refused, "refused", Exit::refused},
    {Outcome::failed, "failed", Exit::failed},
    {Outcome::pending, "pending", Exit::pending},
    {Outcome::reverting, "reverting", Exit::pending},
    {Outcome::reverted, "reverted", Exit::reverted},
}};

const OutcomeSpec &spec_of(Outcome outcome) noexcept;
// The outcome named `name` on the wire, or null.
const OutcomeSpec *find_outcome(std::string_view name) noexcept;

// Mode names a request may use: the first is the one the CLI offers.
struct ModeSpec {
	Mode mode;
	std::string_view name;
	std::string_view alias;
};

inline constexpr std::array<ModeSpec, 3> modes{{
    {Mode::automatic, "auto", "automatic"},
    {Mode::global, "global", "global"},
    {Mode::wait_free, "wait-free", "wait_free"},
}};

} // namespace atlas::control

#endif
