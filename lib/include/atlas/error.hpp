// SPDX-License-Identifier: MIT
// atlas/error.hpp - the one error vocabulary of libatlas (docs/live-patching.md, "Errors").
//
// Every fallible function of the runtime, the patch format and loader, and the control socket
// returns an Expected<T>: a T, or an Error that says what failed (a code callers branch on),
// which system call failed (its errno, when one did) and what to do (a message for humans).
// g++ 12 has no std::expected, and this code runs inside the process being patched: nothing
// here throws or aborts on bad input. At each boundary (the C API, the control server, the
// preload library) a single exception wall turns anything thrown into an Error; the C API
// maps Errc to the stable enum atlas_error of atlas/atlas.h, whose values are Errc's.
//
// Not covered: ViewOps (atlas/runtime.hpp) keeps the syscall convention of atlas/mmview.h,
// a value or an errno (ViewResult), because every caller branches on the errno itself.
#ifndef ATLAS_ERROR_HPP
#define ATLAS_ERROR_HPP

#include <string>
#include <utility>
#include <variant>

// The public API: visible outside libatlas.so, whose other symbols are hidden (lib/libatlas.cmake).
#pragma GCC visibility push(default)

namespace atlas
{

// Why an operation failed. The values are those of enum atlas_error (atlas/atlas.h): never
// renumber one, only append (and add it to atlas.h, to_string() and describe()).
enum class Errc : int {
	// Anywhere.
	internal = 1,         // a bug, or a library call that failed unexpectedly (libelf, OpenSSL)
	no_memory = 2,        // an allocation failed
	invalid_argument = 3, // the caller passed something unusable (null, negative tid, ...)
	bad_state = 4,        // not valid now: not initialised, already registered, not applied...
	system = 5,           // a system call failed: Error::sys_errno says which errno
	io = 6,               // reading or writing a file failed (sys_errno when known)
	unsupported = 7,      // well-formed but outside what the design supports
	// Transitions and the control socket.
	refused = 8,        // a transition or request was refused; nothing changed
	change_failed = 9,  // the change itself failed; nothing changed
	in_progress = 10,   // a wait-free transition is still pending or reverting
	busy = 11,          // another request holds what this one needs; retry later
	timeout = 12,       // no answer within the time allowed
	not_permitted = 13, // the peer or key is not trusted (control socket, signatures)
	// The patch format and loader.
	invalid_format = 14,   // malformed ELF or metadata (truncated, out-of-range index, ...)
	version_mismatch = 15, // metadata written in a format version this reader does not know
	hash_mismatch = 16,    // the content hash does not match the content
	not_found = 17,        // a symbol, section or build-id that must exist does not
	ambiguous = 18,        // a symbol name matches several candidates: add a disambiguation
	out_of_range = 19,     // a relocation value does not fit its field and nothing bridges it
	needs_branch_stub =
	    20,              // PLT32 target beyond +-2 GiB: allocate a branch stub near the place
	needs_got_slot = 21, // GOT/TLS slot beyond +-2 GiB: allocate the slot near the place
};
// The highest Errc: codes run from 1 to this, without gaps (tests iterate over them).
inline constexpr Errc errc_last = Errc::needs_got_slot;

// The code's name, as spelled above ("bad_state"); "?" for a value that is not an Errc.
constexpr const char *to_string(Errc code) noexcept
{
	switch (code) {
	case Errc::internal:
		return "internal";
	case Errc::no_memory:
		return "no_memory";
	case Errc::invalid_argument:
		return "invalid_argument";
	case Errc::bad_state:
		return "bad_state";
	case Errc::system:
		return "system";
	case Errc::io:
		return "io";
	case Errc::unsupported:
		return "unsupported";
	case Errc::refused:
		return "refused";
	case Errc::change_failed:
		return "change_failed";
	case Errc::in_progress:
		return "in_progress";
	case Errc::busy:
		return "busy";
	case Errc::timeout:
		return "timeout";
	case Errc::not_permitted:
		return "not_permitted";
	case Errc::invalid_format:
		return "invalid_format";
	case Errc::version_mismatch:
		return "version_mismatch";
	case Errc::hash_mismatch:
		return "hash_mismatch";
	case Errc::not_found:
		return "not_found";
	case Errc::ambiguous:
		return "ambiguous";
	case Errc::out_of_range:
		return "out_of_range";
	case Errc::needs_branch_stub:
		return "needs_branch_stub";
	case Errc::needs_got_slot:
		return "needs_got_slot";
	}
	return "?";
}

// What the code means, in a few words (atlas_error_string()); "unknown error" otherwise.
constexpr const char *describe(Errc code) noexcept
{
	switch (code) {
	case Errc::internal:
		return "internal error";
	case Errc::no_memory:
		return "out of memory";
	case Errc::invalid_argument:
		return "invalid argument";
	case Errc::bad_state:
		return "not valid in the current state";
	case Errc::system:
		return "a system call failed";
	case Errc::io:
		return "reading or writing a file failed";
	case Errc::unsupported:
		return "not supported";
	case Errc::refused:
		return "refused; nothing changed";
	case Errc::change_failed:
		return "the change failed; nothing changed";
	case Errc::in_progress:
		return "a wait-free transition is still in progress";
	case Errc::busy:
		return "busy; retry later";
	case Errc::timeout:
		return "timed out";
	case Errc::not_permitted:
		return "not permitted";
	case Errc::invalid_format:
		return "malformed patch";
	case Errc::version_mismatch:
		return "unknown patch format version";
	case Errc::hash_mismatch:
		return "patch content hash mismatch";
	case Errc::not_found:
		return "not found";
	case Errc::ambiguous:
		return "ambiguous symbol";
	case Errc::out_of_range:
		return "relocation value out of range";
	case Errc::needs_branch_stub:
		return "relocation needs a branch stub";
	case Errc::needs_got_slot:
		return "relocation needs a GOT slot";
	}
	return "unknown error";
}

struct Error {
	Errc code = Errc::internal;
	std::string message; // what failed and what to do
	int sys_errno = 0;   // the errno of the system call that failed; 0: none did
};

inline Error make_error(Errc code, std::string message, int sys_errno = 0)
{
	return Error{code, std::move(message), sys_errno};
}

// A T, or the Error saying why there is none. Precondition of value()/operator*/operator->:
// ok(); of error(): !ok(). Violating one is a programming error in the caller, not an input
// error, so it traps instead of throwing (exceptions must not leave the library).
template <class T>
class [[nodiscard]] Expected
{
public:
	Expected(T value) : v_(std::in_place_index<0>, std::move(value)) {}
	Expected(Error error) : v_(std::in_place_index<1>, std::move(error)) {}

	bool ok() const noexcept
	{
		return v_.index() == 0;
	}
	explicit operator bool() const noexcept
	{
		return ok();
	}

	T &value() &noexcept
	{
		return *checked();
	}
	const T &value() const &noexcept
	{
		return *const_cast<Expected *>(this)->checked();
	}
	T &&value() &&noexcept
	{
		return std::move(*checked());
	}
	T &operator*() &noexcept
	{
		return value();
	}
	const T &operator*() const &noexcept
	{
		return value();
	}
	T *operator->() noexcept
	{
		return checked();
	}
	const T *operator->() const noexcept
	{
		return const_cast<Expected *>(this)->checked();
	}

	const Error &error() const noexcept
	{
		const Error *e = std::get_if<1>(&v_);
		if (!e)
			__builtin_trap();
		return *e;
	}

private:
	T *checked() noexcept
	{
		T *p = std::get_if<0>(&v_);
		if (!p)
			__builtin_trap();
		return p;
	}

	std::variant<T, Error> v_;
};

// Success (default-constructed, `return {};`), or an Error.
template <>
class [[nodiscard]] Expected<void>
{
public:
	Expected() = default;
	Expected(Error error) : error_(std::move(error)), ok_(false) {}

	bool ok() const noexcept
	{
		return ok_;
	}
	explicit operator bool() const noexcept
	{
		return ok_;
	}
	const Error &error() const noexcept
	{
		if (ok_)
			__builtin_trap();
		return error_;
	}

private:
	Error error_;
	bool ok_ = true;
};

} // namespace atlas

#pragma GCC visibility pop

#endif // ATLAS_ERROR_HPP
