// SPDX-License-Identifier: MIT
#include "archive_members.hpp"

#include "atlas/patch/patch.hpp"

#include <cstdlib>
#include <fmt/format.h>

namespace atlas::build_patch
{

using patch::Errc;
using patch::make_error;
using patch::Result;

Result<std::vector<std::string>> archive_members(const std::string &path)
{
	auto bytes = patch::read_file(path);
	if (!bytes)
		return bytes.error();
	const std::string data(bytes->begin(), bytes->end());
	const bool thin = data.starts_with("!<thin>\n");
	if (!thin && !data.starts_with("!<arch>\n"))
		return make_error(Errc::invalid_format,
		                  fmt::format("{} is not an ar archive", path));
	auto bad = [&](const char *what) {
		return make_error(Errc::invalid_format,
		                  fmt::format("{}: malformed archive ({})", path, what));
	};
	std::vector<std::string> out;
	std::string long_names;
	size_t pos = 8;
	while (pos + 60 <= data.size()) {
		const std::string name = data.substr(pos, 16);
		const std::string size_field = data.substr(pos + 48, 10);
		if (data.compare(pos + 58, 2, "`\n") != 0)
			return bad("header magic");
		char *end = nullptr;
		const unsigned long long size = std::strtoull(size_field.c_str(), &end, 10);
		if (end == size_field.c_str())
			return bad("member size");
		const size_t body = pos + 60;
		// Thin archives store only the symbol table and the long-name table.
		const bool stored = !thin || name.starts_with("/ ") || name.starts_with("// ") ||
		                    name.starts_with("/SYM64/");
		if (stored && body + size > data.size())
			return bad("member past the end");
		std::string member = name.substr(0, name.find_last_not_of(' ') + 1);
		if (member == "/" || member == "/SYM64/" || member == "__.SYMDEF" ||
		    member == "__.SYMDEF SORTED") {
			// a symbol table
		} else if (member == "//") {
			long_names = data.substr(body, size);
		} else {
			if (member.size() > 1 && member[0] == '/') {
				const size_t off = std::strtoull(member.c_str() + 1, nullptr, 10);
				if (off >= long_names.size())
					return bad("long name offset");
				const size_t stop = long_names.find('\n', off);
				member = long_names.substr(off, stop == std::string::npos
				                                    ? std::string::npos
				                                    : stop - off);
			}
			if (!member.empty() && member.back() == '/')
				member.pop_back();
			out.push_back(member);
		}
		pos = body + (stored ? size : 0);
		pos += pos % 2; // members are 2-byte aligned
	}
	return out;
}

} // namespace atlas::build_patch
