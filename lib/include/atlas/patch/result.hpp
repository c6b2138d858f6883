// SPDX-License-Identifier: MIT
// Result<T>: the error-as-value type of atlas::patch. g++ 12 has no std::expected, and the
// loader runs inside the process being patched, so nothing here may throw or abort on bad
// input: every fallible function returns a Result whose Error says what failed and what to do.
#pragma once

#include <string>
#include <utility>
#include <variant>

// The public API: visible outside libatlas.so, whose other symbols are hidden (lib/libatlas.cmake).
#pragma GCC visibility push(default)

namespace atlas::patch
{

// Why an operation failed; callers branch on the code, humans read the message.
enum class Errc {
	invalid_format,   // malformed ELF or metadata (truncated, out-of-range index, ...)
	unsupported,      // well-formed but outside what the design supports (e.g. relocation type)
	version_mismatch, // metadata written in a format version this reader does not know
	hash_mismatch,    // the content hash does not match the content
	not_found,        // a symbol, section or build-id that must exist does not
	ambiguous,        // a symbol name matches several candidates: add a disambiguation
	io,               // reading or writing a file failed
	out_of_range,     // a relocation value does not fit its field and nothing can bridge it
	needs_branch_stub, // PLT32 target beyond +-2 GiB: allocate a branch stub near the place
	needs_got_slot,    // GOT/TLS slot beyond +-2 GiB: allocate the slot near the place
	internal,          // a library call failed unexpectedly (libelf, OpenSSL, allocation)
};

struct Error {
	Errc code = Errc::internal;
	std::string message;
};

inline Error make_error(Errc code, std::string message)
{
	return Error{code, std::move(message)};
}

// Precondition of value()/operator*: ok(). Violating it is a programming error in the caller,
// not an input error, so it traps instead of throwing (exceptions must not leave the library).
template <class T>
class [[nodiscard]] Result
{
public:
	Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}
	Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}

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
		return *const_cast<Result *>(this)->checked();
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
		return const_cast<Result *>(this)->checked();
	}

	// Precondition: !ok().
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

template <>
class [[nodiscard]] Result<void>
{
public:
	Result() = default;
	Result(Error error) : error_(std::move(error)), ok_(false) {}

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

} // namespace atlas::patch

#pragma GCC visibility pop
