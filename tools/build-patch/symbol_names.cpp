// SPDX-License-Identifier: MIT
#include "symbol_names.hpp"

#include <algorithm>

namespace atlas::build_patch
{

namespace
{

bool all_digits(std::string_view s)
{
	return !s.empty() &&
	       std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Calls fn(component) for each dot-separated component after the first.
template <class F>
void for_each_suffix(std::string_view name, F &&fn)
{
	size_t dot = name.find('.', 1); // a leading dot belongs to the name (".LC0")
	while (dot != std::string_view::npos) {
		size_t next = name.find('.', dot + 1);
		fn(name.substr(dot + 1, next == std::string_view::npos ? next : next - dot - 1));
		dot = next;
	}
}

} // namespace

std::string normalized_name(std::string_view name)
{
	size_t first = name.find('.', 1);
	std::string out(name.substr(0, first));
	for_each_suffix(name, [&](std::string_view c) {
		if (!all_digits(c)) {
			out += '.';
			out += c;
		}
	});
	return out;
}

bool is_cold_piece(std::string_view name)
{
	bool cold = false;
	for_each_suffix(name, [&](std::string_view c) { cold = cold || c == "cold"; });
	return cold;
}

bool is_clone(std::string_view name)
{
	bool clone = false;
	for_each_suffix(name, [&](std::string_view c) {
		clone = clone || c == "constprop" || c == "isra" || c == "part" ||
		        c == "lto_priv" || c == "specialized";
	});
	return clone;
}

std::string_view base_function(std::string_view name)
{
	return name.substr(0, name.find('.', 1));
}

} // namespace atlas::build_patch
