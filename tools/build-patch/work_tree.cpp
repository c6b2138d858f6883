// SPDX-License-Identifier: MIT
#include "work_tree.hpp"

#include "compiler_wrapper.hpp"
#include "process.hpp"

#include <cstdlib>
#include <filesystem>
#include <fmt/format.h>
#include <thread>

namespace atlas::build_patch
{

using patch::Errc;
using patch::make_error;
using patch::Result;
namespace fs = std::filesystem;

Result<size_t> copy_tree(const fs::path &from, const fs::path &to)
{
	std::error_code ec;
	fs::create_directories(to, ec);
	if (ec)
		return make_error(Errc::io,
		                  fmt::format("cannot create {}: {}", to.string(), ec.message()));
	size_t files = 0;
	auto it = fs::recursive_directory_iterator(from, ec);
	if (ec)
		return make_error(Errc::io,
		                  fmt::format("cannot read {}: {}", from.string(), ec.message()));
	for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
		if (ec)
			return make_error(Errc::io, fmt::format("cannot read {}: {}", from.string(),
			                                        ec.message()));
		// Lexically: fs::relative would follow a symlink (automake's `--add-missing`
		// links config.sub to /usr/share/misc/config.sub) and copy to where it points.
		const fs::path rel = it->path().lexically_relative(from);
		const fs::path dst = to / rel;
		auto st = it->symlink_status();
		if (fs::is_symlink(st)) {
			fs::copy_symlink(it->path(), dst, ec);
		} else if (fs::is_directory(st)) {
			if (it->path().filename() == ".git") {
				it.disable_recursion_pending();
				continue;
			}
			fs::create_directories(dst, ec);
		} else if (fs::is_regular_file(st)) {
			fs::copy_file(it->path(), dst, fs::copy_options::overwrite_existing, ec);
			if (!ec)
				fs::last_write_time(dst, fs::last_write_time(it->path()), ec);
			files++;
		}
		if (ec)
			return make_error(Errc::io, fmt::format("cannot copy {} to {}: {}",
			                                        it->path().string(), dst.string(),
			                                        ec.message()));
	}
	return files;
}

Result<WorkTree> WorkTree::create(const std::string &work, const std::string &source,
                                  const std::string &self_exe)
{
	// A fresh tree is the source copied as is: what restore() does with a cached build.
	return restore(work, source, source, self_exe);
}

Result<WorkTree> WorkTree::restore(const std::string &work, const std::string &built_tree,
                                   const std::string &source, const std::string &self_exe)
{
	WorkTree t;
	t.work_ = fs::absolute(work).lexically_normal().string();
	t.tree_ = t.work_ + "/tree";
	t.shims_ = t.work_ + "/bin";
	t.source_ = fs::absolute(source).lexically_normal().string();
	while (t.source_.size() > 1 && t.source_.back() == '/')
		t.source_.pop_back();
	std::error_code ec;
	if (fs::exists(t.tree_, ec))
		return make_error(
		    Errc::io,
		    fmt::format("{} already exists: give an empty --work directory", t.tree_));
	auto files = copy_tree(built_tree, t.tree_);
	if (!files)
		return files.error();
	t.files_ = *files;
	if (auto r = install_compiler_shims(t.shims_, self_exe); !r)
		return r.error();
	return t;
}

std::string WorkTree::log_of(const std::string &phase) const
{
	return work_ + "/" + phase + ".log";
}

Result<BuildRecords> WorkTree::build(const std::string &phase, const std::string &command)
{
	const std::string records = work_ + "/records/" + phase;
	std::error_code ec;
	fs::create_directories(records, ec);
	if (ec)
		return make_error(Errc::io,
		                  fmt::format("cannot create {}: {}", records, ec.message()));
	const char *path = std::getenv("PATH");
	RunOptions o;
	o.cwd = tree_;
	o.log = log_of(phase);
	o.env = {fmt::format("PATH={}:{}", shims_, path ? path : "/usr/bin:/bin"),
	         fmt::format("{}={}", env_record_dir, records),
	         fmt::format("{}={}", env_shim_dir, shims_),
	         fmt::format("{}={}={}", env_prefix_map, tree_, source_)};
	auto status = run_process({"/bin/sh", "-c", command}, o);
	if (!status)
		return status.error();
	if (*status != 0)
		return make_error(Errc::io, fmt::format("the {} build ({}) failed with exit status "
		                                        "{}; the end of {}:\n{}",
		                                        phase, command, *status, o.log,
		                                        tail_of_file(o.log, 20)));
	return read_build_records(records);
}

std::string default_build_command(const std::string &)
{
	unsigned n = std::max(1u, std::thread::hardware_concurrency());
	return fmt::format("make -j{}", n);
}

} // namespace atlas::build_patch
