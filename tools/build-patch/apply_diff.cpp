// SPDX-License-Identifier: MIT
#include "apply_diff.hpp"

#include "atlas/patch/patch.hpp"
#include "atlas/patch/writer.hpp"
#include "line_directives.hpp"
#include "process.hpp"

#include <cstdio>
#include <filesystem>
#include <fmt/format.h>
#include <map>
#include <set>
#include <sstream>

namespace atlas::build_patch
{

using patch::Errc;
using patch::make_error;
using patch::Result;
namespace fs = std::filesystem;

namespace
{

std::string header_path(const std::string &line)
{
	std::string p = line.substr(4);
	size_t tab = p.find('\t');
	if (tab != std::string::npos)
		p = p.substr(0, tab);
	while (!p.empty() && (p.back() == '\r' || p.back() == ' '))
		p.pop_back();
	if (p.size() >= 2 && p.front() == '"' && p.back() == '"')
		p = p.substr(1, p.size() - 2);
	return p;
}

// The path with its first `strip` components removed, or empty if it has fewer.
std::string stripped(const std::string &path, int strip)
{
	std::string p = path;
	for (int i = 0; i < strip; i++) {
		size_t slash = p.find('/');
		if (slash == std::string::npos)
			return {};
		p = p.substr(slash + 1);
		while (!p.empty() && p[0] == '/')
			p.erase(0, 1);
	}
	return p;
}

bool keeps_lines(const std::string &path)
{
	static const std::set<std::string> exts = {".c",   ".h",   ".cc",  ".cp",  ".cpp", ".cxx",
	                                           ".c++", ".C",   ".hh",  ".hpp", ".hxx", ".h++",
	                                           ".H",   ".inc", ".def", ".ipp", ".tcc"};
	return exts.count(fs::path(path).extension().string()) > 0;
}

std::string text_of(const std::vector<uint8_t> &b)
{
	return std::string(b.begin(), b.end());
}

// "@@ -a,b +c,d @@": the old and new line counts of a hunk (1 when omitted).
bool hunk_counts(const std::string &line, long &old_count, long &new_count)
{
	long a, c;
	old_count = new_count = 1;
	if (std::sscanf(line.c_str(), "@@ -%ld,%ld +%ld,%ld @@", &a, &old_count, &c, &new_count) ==
	    4)
		return true;
	if (std::sscanf(line.c_str(), "@@ -%ld +%ld,%ld @@", &a, &c, &new_count) == 3)
		return true;
	if (std::sscanf(line.c_str(), "@@ -%ld,%ld +%ld @@", &a, &old_count, &c) == 3)
		return true;
	return std::sscanf(line.c_str(), "@@ -%ld +%ld @@", &a, &c) == 2;
}

} // namespace

std::vector<DiffFile> files_of_diff(const std::string &text)
{
	std::vector<DiffFile> out;
	std::istringstream in(text);
	std::string line, old_path;
	bool have_old = false;
	long old_left = 0, new_left = 0; // lines of the current hunk still to come
	while (std::getline(in, line)) {
		if (old_left > 0 || new_left > 0) {
			// Hunk body: ' ' both, '-' old, '+' new, '\' no newline at end of file.
			if (line.starts_with("-"))
				old_left--;
			else if (line.starts_with("+"))
				new_left--;
			else if (!line.starts_with("\\")) {
				old_left--;
				new_left--;
			}
			continue;
		}
		if (line.starts_with("--- ")) {
			old_path = header_path(line);
			have_old = true;
		} else if (line.starts_with("+++ ") && have_old) {
			out.push_back({old_path, header_path(line)});
			have_old = false;
		} else if (line.starts_with("@@ ")) {
			hunk_counts(line, old_left, new_left);
			have_old = false;
		} else {
			have_old = false;
		}
	}
	return out;
}

Result<AppliedDiff> apply_diff(const std::string &tree, const std::string &diff_path,
                               const std::string &log, bool keep_lines)
{
	auto bytes = patch::read_file(diff_path);
	if (!bytes)
		return bytes.error();
	const std::vector<DiffFile> files = files_of_diff(text_of(*bytes));
	if (files.empty())
		return make_error(Errc::invalid_format,
		                  fmt::format("{} is not a unified diff (no '--- '/'+++ ' file "
		                              "headers)",
		                              diff_path));
	// The strip level: the one under which every file the diff modifies exists.
	AppliedDiff out;
	int best = -1;
	for (int strip : {1, 0, 2, 3}) {
		bool all = true;
		for (const DiffFile &f : files) {
			const std::string &p = f.old_path != "/dev/null" ? f.old_path : f.new_path;
			std::string rel = stripped(p, strip);
			if (f.old_path == "/dev/null")
				continue;
			if (rel.empty() || !fs::exists(fs::path(tree) / rel))
				all = false;
		}
		if (all) {
			best = strip;
			break;
		}
	}
	if (best < 0)
		return make_error(
		    Errc::not_found,
		    fmt::format(
		        "{} does not fit the source tree: not every file it changes exists "
		        "under the tree with -p0..-p3 (first: {}); give the source tree the "
		        "diff was made against",
		        diff_path, files.front().old_path));
	out.strip = best;
	std::map<std::string, std::string> before;
	for (const DiffFile &f : files) {
		if (f.old_path == "/dev/null") {
			out.created.push_back(stripped(f.new_path, best));
			continue;
		}
		std::string rel = stripped(f.old_path, best);
		if (f.new_path == "/dev/null") {
			out.deleted.push_back(rel);
			continue;
		}
		out.modified.push_back(rel);
		auto content = patch::read_file((fs::path(tree) / rel).string());
		if (!content)
			return content.error();
		before[rel] = text_of(*content);
	}

	const std::string abs_diff = fs::absolute(diff_path).string();
	for (bool dry : {true, false}) {
		std::vector<std::string> argv = {"patch",     fmt::format("-p{}", best), "--batch",
		                                 "--forward", "--no-backup-if-mismatch", "-i",
		                                 abs_diff};
		if (dry)
			argv.push_back("--dry-run");
		auto status = run_process(argv, {.cwd = tree, .env = {}, .log = log});
		if (!status)
			return status.error();
		if (*status != 0)
			return make_error(
			    Errc::invalid_format,
			    fmt::format("{} does not apply to the source tree (patch -p{} "
			                "exited with {}):\n{}",
			                diff_path, best, *status, tail_of_file(log, 15)));
	}
	if (!keep_lines)
		return out;
	for (const auto &[rel, old_text] : before) {
		if (!keeps_lines(rel))
			continue;
		const std::string path = (fs::path(tree) / rel).string();
		auto now = patch::read_file(path);
		if (!now)
			return now.error();
		LineFix fix = keep_line_numbers(old_text, text_of(*now));
		if (fix.gave_up) {
			out.warnings.push_back(
			    fmt::format("{}: the change is too large to keep line "
			                "numbers; functions using __LINE__ after it "
			                "will look changed",
			                rel));
			continue;
		}
		if (fix.directives == 0)
			continue;
		out.line_directives += fix.directives;
		if (auto w = patch::write_file(
		        path,
		        std::span<const uint8_t>(reinterpret_cast<const uint8_t *>(fix.text.data()),
		                                 fix.text.size()));
		    !w)
			return w.error();
	}
	return out;
}

} // namespace atlas::build_patch
