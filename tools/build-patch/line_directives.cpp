// SPDX-License-Identifier: MIT
#include "line_directives.hpp"

#include <algorithm>
#include <cctype>
#include <fmt/format.h>

namespace atlas::build_patch
{

std::vector<std::string_view> split_lines(std::string_view text)
{
	std::vector<std::string_view> out;
	size_t start = 0;
	while (start < text.size()) {
		size_t nl = text.find('\n', start);
		if (nl == std::string_view::npos) {
			out.push_back(text.substr(start));
			break;
		}
		out.push_back(text.substr(start, nl - start));
		start = nl + 1;
	}
	return out;
}

std::vector<long> unchanged_lines(const std::vector<std::string_view> &a,
                                  const std::vector<std::string_view> &b, size_t max_edits)
{
	// Common prefix and suffix first; Myers' O(ND) algorithm on what remains.
	const long n_all = long(a.size()), m_all = long(b.size());
	long pre = 0;
	while (pre < n_all && pre < m_all && a[size_t(pre)] == b[size_t(pre)])
		pre++;
	long suf = 0;
	while (suf < n_all - pre && suf < m_all - pre &&
	       a[size_t(n_all - 1 - suf)] == b[size_t(m_all - 1 - suf)])
		suf++;
	std::vector<long> out(size_t(m_all), -1);
	for (long i = 0; i < pre; i++)
		out[size_t(i)] = i;
	for (long i = 0; i < suf; i++)
		out[size_t(m_all - 1 - i)] = n_all - 1 - i;
	const long n = n_all - pre - suf, m = m_all - pre - suf;
	auto A = [&](long i) { return a[size_t(pre + i)]; };
	auto B = [&](long j) { return b[size_t(pre + j)]; };
	if (n == 0 || m == 0)
		return out;

	// trace[d][k + d]: the furthest x reached on diagonal k (y = x - k) with d edits.
	std::vector<std::vector<long>> trace;
	long found = -1;
	for (long d = 0; d <= n + m && found < 0; d++) {
		if (size_t(d) > max_edits)
			return {};
		std::vector<long> cur(size_t(2 * d + 1), 0);
		for (long k = -d; k <= d; k += 2) {
			long x = 0;
			if (d > 0) {
				const std::vector<long> &pv = trace.back();
				auto p = [&](long kk) { return pv[size_t(kk + d - 1)]; };
				x = (k == -d || (k != d && p(k - 1) < p(k + 1))) ? p(k + 1)
				                                                 : p(k - 1) + 1;
			}
			long y = x - k;
			while (x < n && y < m && A(x) == B(y)) {
				x++;
				y++;
			}
			cur[size_t(k + d)] = x;
			if (x >= n && y >= m)
				found = d;
		}
		trace.push_back(std::move(cur));
	}
	// Backtrack from (n, m), marking each diagonal run (unchanged lines).
	long x = n, y = m;
	for (long d = found; d >= 0; d--) {
		const long k = x - y;
		long mid_x = 0, prev_x = 0, prev_y = 0;
		if (d > 0) {
			const std::vector<long> &pv = trace[size_t(d - 1)];
			auto p = [&](long kk) { return pv[size_t(kk + d - 1)]; };
			const bool down = k == -d || (k != d && p(k - 1) < p(k + 1));
			const long pk = down ? k + 1 : k - 1;
			prev_x = p(pk);
			prev_y = prev_x - pk;
			mid_x = down ? prev_x : prev_x + 1;
		}
		while (x > mid_x && y > mid_x - k) {
			x--;
			y--;
			out[size_t(pre + y)] = pre + x;
		}
		x = prev_x;
		y = prev_y;
	}
	return out;
}

namespace
{

// Lexical state at the start of each line: may a directive stand there?
std::vector<bool> directive_allowed(const std::vector<std::string_view> &lines)
{
	enum State { code, block_comment, raw_string };
	State st = code;
	std::string raw_end; // )delim"
	std::vector<bool> ok(lines.size() + 1, true);
	bool continued = false;
	for (size_t i = 0; i < lines.size(); i++) {
		ok[i] = st == code && !continued;
		std::string_view l = lines[i];
		bool in_string = false, in_char = false;
		for (size_t c = 0; c < l.size(); c++) {
			char ch = l[c];
			if (st == block_comment) {
				if (ch == '*' && c + 1 < l.size() && l[c + 1] == '/') {
					st = code;
					c++;
				}
				continue;
			}
			if (st == raw_string) {
				if (l.substr(c).starts_with(raw_end)) {
					st = code;
					c += raw_end.size() - 1;
				}
				continue;
			}
			if (in_string || in_char) {
				if (ch == '\\')
					c++;
				else if ((in_string && ch == '"') || (in_char && ch == '\''))
					in_string = in_char = false;
				continue;
			}
			if (ch == '/' && c + 1 < l.size() && l[c + 1] == '/')
				break; // line comment
			if (ch == '/' && c + 1 < l.size() && l[c + 1] == '*') {
				st = block_comment;
				c++;
			} else if (ch == 'R' && c + 1 < l.size() && l[c + 1] == '"' &&
			           (c == 0 ||
			            !(std::isalnum(static_cast<unsigned char>(l[c - 1])) ||
			              l[c - 1] == '_'))) {
				size_t open = l.find('(', c + 2);
				if (open == std::string_view::npos)
					break;
				raw_end = ")" + std::string(l.substr(c + 2, open - c - 2)) + "\"";
				size_t close = l.find(raw_end, open + 1);
				if (close == std::string_view::npos) {
					st = raw_string;
					break;
				}
				c = close + raw_end.size() - 1;
			} else if (ch == '"') {
				in_string = true;
			} else if (ch == '\'') {
				in_char = true;
			}
		}
		continued = !l.empty() && l.back() == '\\';
	}
	return ok;
}

} // namespace

LineFix keep_line_numbers(std::string_view original, std::string_view patched)
{
	LineFix fix;
	const auto a = split_lines(original);
	const auto b = split_lines(patched);
	const auto same = unchanged_lines(a, b);
	if (same.empty() && !b.empty()) {
		fix.text = std::string(patched);
		fix.gave_up = true;
		return fix;
	}
	const auto allowed = directive_allowed(b);
	long presumed = 1; // the number the compiler gives the next line
	for (size_t j = 0; j < b.size(); j++) {
		if (same[j] >= 0 && presumed != same[j] + 1 && allowed[j]) {
			fix.text += fmt::format("#line {}\n", same[j] + 1);
			presumed = same[j] + 1;
			fix.directives++;
		}
		fix.text += b[j];
		if (j + 1 < b.size() || (!patched.empty() && patched.back() == '\n'))
			fix.text += '\n';
		presumed++;
	}
	return fix;
}

} // namespace atlas::build_patch
