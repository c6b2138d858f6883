// SPDX-License-Identifier: MIT
// The error vocabulary of atlas::patch: the one of libatlas (atlas/error.hpp), under the names
// the patch format's users know. The loader runs inside the process being patched, so nothing
// here may throw or abort on bad input: every fallible function returns a Result whose Error
// says what failed and what to do.
#pragma once

#include "atlas/error.hpp"

// The public API: visible outside libatlas.so, whose other symbols are hidden (lib/libatlas.cmake).
#pragma GCC visibility push(default)

namespace atlas::patch
{

using atlas::Errc;
using atlas::Error;
using atlas::make_error;
template <class T>
using Result = atlas::Expected<T>;

} // namespace atlas::patch

#pragma GCC visibility pop
