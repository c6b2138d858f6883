// SPDX-License-Identifier: MIT
// Helpers of the error vocabulary (atlas/error.hpp) for libatlas's own code; not installed.
//
// guard() is the one exception wall: each boundary (the C API, the control server's request
// handler, the preload's entry points, the patch library's API) runs its body in it, so that
// nothing thrown (in practice std::bad_alloc, or a user callback's exception) leaves the
// library; the boundary then turns the Error into its own form (-1 and atlas_last_error(), a
// JSON response, a note).
#ifndef ATLAS_ERROR_UTIL_HPP
#define ATLAS_ERROR_UTIL_HPP

#include "atlas/error.hpp"

#include <exception>
#include <new>
#include <string.h>
#include <string>
#include <type_traits>

namespace atlas::detail
{

// "No such file or directory (ENOENT)": an errno for messages.
inline std::string errno_text(int err)
{
	const char *desc = strerrordesc_np(err);
	const char *name = strerrorname_np(err);
	std::string text = desc ? desc : "unknown error";
	text += " (";
	text += name ? name : "?";
	text += ')';
	return text;
}

// An Error for a failed system call: code system (or another, e.g. io), `message` as given.
inline Error system_error(int err, std::string message, Errc code = Errc::system)
{
	return Error{code, std::move(message), err};
}

// The exception being handled, as an Error: std::bad_alloc is no_memory, anything else
// internal with what() in the message. Call only inside a catch block. Never throws: when
// even the message cannot be allocated, it is left short enough not to allocate.
inline Error current_exception_error() noexcept
{
	try {
		throw;
	} catch (const std::bad_alloc &) {
		return Error{Errc::no_memory, "out of memory", 0};
	} catch (const std::exception &e) {
		try {
			return Error{Errc::internal, std::string("internal error: ") + e.what(), 0};
		} catch (...) {
		}
	} catch (...) {
		try {
			return Error{Errc::internal, "internal error: unknown exception", 0};
		} catch (...) {
		}
	}
	return Error{Errc::no_memory, "out of memory", 0};
}

template <class T>
struct is_expected : std::false_type {
};
template <class T>
struct is_expected<Expected<T>> : std::true_type {
};

// Runs fn, which returns an Expected, and turns anything it throws into that Expected's Error
// (current_exception_error()).
template <class F>
auto guard(F &&fn) noexcept -> decltype(fn())
{
	static_assert(is_expected<decltype(fn())>::value,
	              "guard() runs functions returning Expected");
	try {
		return fn();
	} catch (...) {
		return current_exception_error();
	}
}

} // namespace atlas::detail

#endif // ATLAS_ERROR_UTIL_HPP
