// SPDX-License-Identifier: MIT
#include "build_cache.hpp"

#include "compiler_wrapper.hpp"
#include "work_tree.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <memory>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

namespace atlas::build_patch
{

using patch::Errc;
using patch::make_error;
using patch::Result;
namespace fs = std::filesystem;

namespace
{

// Bumped when what an entry holds, or how the wrapper records a build, changes.
constexpr int cache_format = 1;

class Sha256
{
public:
	Sha256() : ctx_(EVP_MD_CTX_new(), EVP_MD_CTX_free)
	{
		if (!ctx_ || EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr) != 1)
			throw std::runtime_error("SHA-256 is not available (OpenSSL)");
	}
	void update(const void *data, size_t n)
	{
		EVP_DigestUpdate(ctx_.get(), data, n);
	}
	void update(const std::string &s)
	{
		update(s.data(), s.size());
		update("\0", 1);
	}
	std::string hex()
	{
		unsigned char md[EVP_MAX_MD_SIZE];
		unsigned len = 0;
		EVP_DigestFinal_ex(ctx_.get(), md, &len);
		std::string out;
		for (unsigned i = 0; i < len; i++)
			out += fmt::format("{:02x}", md[i]);
		return out;
	}

private:
	std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX *)> ctx_;
};

Result<std::string> file_digest(const fs::path &p)
{
	std::ifstream in(p, std::ios::binary);
	if (!in)
		return make_error(
		    Errc::io, fmt::format("cannot read {}: {}", p.string(), std::strerror(errno)));
	Sha256 h;
	char buf[1 << 16];
	while (in) {
		in.read(buf, sizeof buf);
		h.update(buf, size_t(in.gcount()));
	}
	return h.hex();
}

// The content of the tree as the builder copies it (without .git): each file's relative path,
// executable bit and contents, each link's target, in path order.
Result<std::pair<std::string, size_t>> tree_digest(const fs::path &root)
{
	std::vector<std::string> lines;
	std::error_code ec;
	auto it = fs::recursive_directory_iterator(root, ec);
	if (ec)
		return make_error(Errc::io,
		                  fmt::format("cannot read {}: {}", root.string(), ec.message()));
	size_t files = 0;
	for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
		if (ec)
			return make_error(Errc::io, fmt::format("cannot read {}: {}", root.string(),
			                                        ec.message()));
		const std::string rel = fs::relative(it->path(), root).string();
		auto st = it->symlink_status();
		if (fs::is_symlink(st)) {
			lines.push_back(
			    fmt::format("l {} {}", rel, fs::read_symlink(it->path()).string()));
		} else if (fs::is_directory(st)) {
			if (it->path().filename() == ".git")
				it.disable_recursion_pending();
		} else if (fs::is_regular_file(st)) {
			auto d = file_digest(it->path());
			if (!d)
				return d.error();
			const bool exec =
			    (st.permissions() & fs::perms::owner_exec) != fs::perms::none;
			lines.push_back(fmt::format("f {} {} {}", rel, exec ? "x" : "-", *d));
			files++;
		}
	}
	std::sort(lines.begin(), lines.end());
	Sha256 h;
	for (const std::string &l : lines)
		h.update(l);
	return std::pair{h.hex(), files};
}

std::string run_and_read(const std::string &command)
{
	std::string out;
	FILE *f = popen(command.c_str(), "r");
	if (!f)
		return out;
	char buf[4096];
	size_t n;
	while ((n = fread(buf, 1, sizeof buf, f)) > 0)
		out.append(buf, n);
	pclose(f);
	return out;
}

std::string shell_quote(const std::string &s)
{
	std::string out = "'";
	for (char c : s)
		out += c == '\'' ? std::string("'\\''") : std::string(1, c);
	return out + "'";
}

// A file's identity without reading it: canonical path, size, modification time.
std::string file_identity(const std::string &path)
{
	struct stat st;
	std::error_code ec;
	const std::string real = fs::canonical(path, ec).string();
	if (ec || stat(real.c_str(), &st) != 0)
		return path + " (missing)";
	return fmt::format("{} {} {}.{:09}", real, st.st_size, st.st_mtim.tv_sec,
	                   st.st_mtim.tv_nsec);
}

std::string now_iso()
{
	const auto t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
	char buf[32];
	std::tm tm{};
	gmtime_r(&t, &tm);
	std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}

void remove_least_recently_used(const fs::path &cache, const fs::path &keep)
{
	std::vector<std::pair<fs::file_time_type, fs::path>> entries;
	std::error_code ec;
	for (const auto &e : fs::directory_iterator(cache, ec)) {
		const fs::path meta = e.path() / "entry.json";
		if (!fs::is_regular_file(meta, ec) || e.path() == keep)
			continue;
		entries.emplace_back(fs::last_write_time(meta, ec), e.path());
	}
	if (entries.size() + 1 <= cache_entries_kept)
		return;
	std::sort(entries.begin(), entries.end());
	const size_t drop = entries.size() + 1 - cache_entries_kept;
	for (size_t i = 0; i < drop; i++) {
		// Renamed first so that a concurrent lookup never sees half an entry.
		const fs::path gone = cache / fmt::format(".remove.{}.{}", getpid(),
		                                          entries[i].second.filename().string());
		fs::rename(entries[i].second, gone, ec);
		if (!ec)
			fs::remove_all(gone, ec);
	}
}

} // namespace

std::string default_cache_dir()
{
	if (const char *c = std::getenv(env_cache_dir); c && *c)
		return c;
	if (const char *x = std::getenv("XDG_CACHE_HOME"); x && *x)
		return fmt::format("{}/atlas/build-patch", x);
	if (const char *h = std::getenv("HOME"); h && *h)
		return fmt::format("{}/.cache/atlas/build-patch", h);
	return {};
}

Result<CacheKey> original_build_key(const std::string &source, const std::string &command,
                                    const std::string &self_exe)
{
	CacheKey k;
	const std::string src = fs::absolute(source).lexically_normal().string();
	auto tree = tree_digest(src);
	if (!tree)
		return tree.error();
	k.files = tree->second;
	nlohmann::json compilers = nlohmann::json::object();
	for (const auto &[name, real] : real_compilers())
		compilers[name] = file_identity(real);
	std::string version;
	for (const auto &[name, real] : real_compilers())
		if (name == "gcc" || name == "cc") {
			version = run_and_read(shell_quote(real) + " -v 2>&1");
			break;
		}
	nlohmann::json env = nlohmann::json::object();
	for (const char *v : {"CC", "CXX", "CFLAGS", "CXXFLAGS", "CPPFLAGS", "LDFLAGS", "LDLIBS",
	                      "MAKEFLAGS", "GCC_EXEC_PREFIX", "COMPILER_PATH", "CPATH",
	                      "C_INCLUDE_PATH", "CPLUS_INCLUDE_PATH", "LIBRARY_PATH"})
		if (const char *x = std::getenv(v))
			env[v] = x;
	k.inputs = {{"format", cache_format},       {"source", src},
	            {"source_digest", tree->first}, {"command", command},
	            {"compilers", compilers},       {"compiler_version", version},
	            {"environment", env},           {"builder", file_identity(self_exe)}};
	Sha256 h;
	h.update(k.inputs.dump());
	k.digest = h.hex();
	return k;
}

std::optional<CacheEntry> cache_lookup(const std::string &cache, const CacheKey &key)
{
	const fs::path dir = fs::path(cache) / key.digest;
	const fs::path meta = dir / "entry.json";
	std::ifstream in(meta);
	if (!in)
		return std::nullopt;
	nlohmann::json j = nlohmann::json::parse(in, nullptr);
	if (j.is_discarded() || !j.contains("work") ||
	    j.value("key", nlohmann::json()) != key.inputs)
		return std::nullopt;
	CacheEntry e;
	e.dir = dir.string();
	e.work = j["work"].get<std::string>();
	e.seconds = j.value("seconds", 0.0);
	e.objects = j.value("objects", size_t(0));
	std::error_code ec;
	fs::last_write_time(meta, fs::file_time_type::clock::now(), ec); // used: kept longer
	return e;
}

Result<CacheEntry> cache_store(const std::string &cache, const CacheKey &key,
                               const std::string &work, double seconds, size_t objects)
{
	std::error_code ec;
	fs::create_directories(cache, ec);
	if (ec)
		return make_error(Errc::io, fmt::format("cannot create the cache directory {}: {}",
		                                        cache, ec.message()));
	const fs::path final_dir = fs::path(cache) / key.digest;
	const fs::path tmp = fs::path(cache) / fmt::format(".new.{}.{}", getpid(), key.digest);
	fs::remove_all(tmp, ec);
	auto fail = [&](std::string what) -> Result<CacheEntry> {
		fs::remove_all(tmp, ec);
		return make_error(Errc::io, std::move(what));
	};
	auto t = copy_tree(fs::path(work) / "tree", tmp / "tree");
	if (!t)
		return fail(t.error().message);
	auto r = copy_tree(fs::path(work) / "records" / "original", tmp / "records");
	if (!r)
		return fail(r.error().message);
	nlohmann::json meta{{"key", key.inputs},
	                    {"work", work},
	                    {"seconds", seconds},
	                    {"objects", objects},
	                    {"created", now_iso()}};
	{
		std::ofstream out(tmp / "entry.json");
		out << meta.dump(2) << "\n";
		if (!out)
			return fail(fmt::format("cannot write {}", (tmp / "entry.json").string()));
	}
	fs::rename(tmp, final_dir, ec);
	if (ec) {
		// Another run stored this key first: theirs is as good.
		fs::remove_all(tmp, ec);
		if (!fs::is_regular_file(final_dir / "entry.json", ec))
			return make_error(Errc::io,
			                  fmt::format("cannot store the original build in {}",
			                              final_dir.string()));
	}
	remove_least_recently_used(cache, final_dir);
	return CacheEntry{final_dir.string(), work, seconds, objects};
}

Result<BuildRecords> cache_restore_records(const CacheEntry &entry, const std::string &work)
{
	const fs::path dst = fs::path(work) / "records" / "original";
	auto c = copy_tree(fs::path(entry.dir) / "records", dst);
	if (!c)
		return c.error();
	auto r = read_build_records(dst.string());
	if (!r)
		return r.error();
	const std::string from = entry.work + "/";
	const std::string to = work + "/";
	auto move = [&](std::string &p) {
		if (p.starts_with(from))
			p = to + p.substr(from.size());
	};
	for (CompileRecord &c2 : r->compiles) {
		move(c2.cwd);
		move(c2.source);
		move(c2.object);
		move(c2.copy);
	}
	for (LinkRecord &l : r->links) {
		move(l.output);
		for (std::string &i : l.inputs)
			move(i);
		for (std::string &i : l.compiled_and_linked)
			move(i);
	}
	return r;
}

} // namespace atlas::build_patch
