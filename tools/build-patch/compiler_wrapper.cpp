// SPDX-License-Identifier: MIT
#include "compiler_wrapper.hpp"

#include "build_records.hpp"
#include "compile_args.hpp"
#include "process.hpp"

#include <cstdlib>
#include <filesystem>
#include <fmt/format.h>
#include <sstream>
#include <unistd.h>

namespace atlas::build_patch
{

using patch::Errc;
using patch::make_error;
using patch::Result;
namespace fs = std::filesystem;

namespace
{

const std::vector<std::string> &compiler_names()
{
	static const std::vector<std::string> names = [] {
		std::vector<std::string> n = {"gcc", "cc", "g++", "c++"};
		for (const char *v : {"", "-12", "-13", "-14", "-11"})
			for (const char *c : {"gcc", "g++"}) {
				n.push_back(fmt::format("x86_64-linux-gnu-{}{}", c, v));
				if (*v)
					n.push_back(fmt::format("{}{}", c, v));
			}
		return n;
	}();
	return names;
}

std::vector<std::string> path_dirs()
{
	std::vector<std::string> out;
	const char *p = std::getenv("PATH");
	std::stringstream in(p ? p : "/usr/bin:/bin");
	for (std::string d; std::getline(in, d, ':');)
		out.push_back(d.empty() ? "." : d);
	return out;
}

bool same_dir(const std::string &a, const std::string &b)
{
	std::error_code ec;
	return fs::equivalent(a, b, ec);
}

// The first `name` in PATH outside the shim directory.
std::string find_real(const std::string &name, const std::string &shims)
{
	for (const std::string &d : path_dirs()) {
		if (!shims.empty() && same_dir(d, shims))
			continue;
		std::string c = d + "/" + name;
		if (access(c.c_str(), X_OK) == 0)
			return c;
	}
	return {};
}

// PATH without the shim directory.
std::string path_without(const std::string &shims)
{
	std::string out;
	for (const std::string &d : path_dirs()) {
		if (!shims.empty() && same_dir(d, shims))
			continue;
		out += (out.empty() ? "" : ":") + d;
	}
	return out;
}

std::string absolute(const std::string &cwd, const std::string &p)
{
	fs::path x(p);
	return (x.is_absolute() ? x : fs::path(cwd) / x).lexically_normal().string();
}

} // namespace

bool is_wrapper_invocation(const char *argv0)
{
	if (!std::getenv(env_record_dir))
		return false;
	std::string name = fs::path(argv0).filename().string();
	for (const std::string &n : compiler_names())
		if (n == name)
			return true;
	return false;
}

int wrapper_main(int argc, char **argv)
{
	const std::string name = fs::path(argv[0]).filename().string();
	const char *shims = std::getenv(env_shim_dir);
	const std::string records = std::getenv(env_record_dir);
	const std::string real = find_real(name, shims ? shims : "");
	if (real.empty()) {
		fmt::print(stderr,
		           "atlas build-patch: compiler wrapper: no {} in PATH outside {}\n", name,
		           shims ? shims : "(no shim directory)");
		return 127;
	}
	// Called again from within the compiler this wrapper ran: a compiler launcher (ccache,
	// distcc) found later in PATH looked for the real compiler in PATH itself and found the
	// shim; running on would recurse without end.
	if (std::getenv(env_in_compiler)) {
		fmt::print(
		    stderr,
		    "atlas build-patch: compiler wrapper: {} ran the wrapper again (a compiler "
		    "launcher in PATH that searches PATH for the real compiler?): put the real "
		    "compiler's directory first in the launcher's own search path (ccache: "
		    "CCACHE_PATH)\n",
		    real);
		return 127;
	}
	std::vector<std::string> args(argv + 1, argv + argc);
	std::vector<std::string> run = {real};
	run.insert(run.end(), args.begin(), args.end());
	if (const char *map = std::getenv(env_prefix_map); map && *map)
		run.push_back(fmt::format("-ffile-prefix-map={}", map));
	RunOptions o;
	o.env.push_back(fmt::format("{}=1", env_in_compiler));
	// ccache in PATH (/usr/lib/ccache) runs the first compiler of its name in PATH that is
	// not ccache: the shim. Its own search path, without the shims, leads it to the compiler.
	if (!std::getenv("CCACHE_PATH"))
		o.env.push_back(fmt::format("CCACHE_PATH={}", path_without(shims ? shims : "")));
	auto status = run_process(run, o);
	if (!status) {
		fmt::print(stderr, "atlas build-patch: compiler wrapper: {}\n",
		           status.error().message);
		return 127;
	}
	if (*status != 0)
		return *status;

	const CompilerCommand cmd = parse_compiler_command(args);
	const std::string cwd = fs::current_path().string();
	for (const auto &[source, object] : cmd.compiles) {
		CompileRecord r;
		r.compiler = real;
		r.args = args;
		r.cwd = cwd;
		r.source = absolute(cwd, source);
		r.object = absolute(cwd, object);
		r.sequence = record_sequence();
		r.copy = fmt::format("{}/object-{}-{}.o", records, r.sequence, getpid());
		std::error_code ec;
		fs::copy_file(r.object, r.copy, fs::copy_options::overwrite_existing, ec);
		if (ec) {
			fmt::print(stderr,
			           "atlas build-patch: compiler wrapper: cannot copy {}: {}\n",
			           r.object, ec.message());
			return 1;
		}
		if (auto w = write_compile_record(records, r); !w) {
			fmt::print(stderr, "atlas build-patch: compiler wrapper: {}\n",
			           w.error().message);
			return 1;
		}
	}
	if (cmd.links) {
		LinkRecord r;
		r.output = absolute(cwd, cmd.link_output);
		for (const std::string &i : cmd.link_inputs)
			r.inputs.push_back(absolute(cwd, i));
		for (const std::string &s : cmd.compiled_and_linked)
			r.compiled_and_linked.push_back(absolute(cwd, s));
		r.sequence = record_sequence();
		if (auto w = write_link_record(records, r); !w) {
			fmt::print(stderr, "atlas build-patch: compiler wrapper: {}\n",
			           w.error().message);
			return 1;
		}
	}
	return 0;
}

std::vector<std::pair<std::string, std::string>> real_compilers()
{
	std::vector<std::pair<std::string, std::string>> out;
	for (const std::string &n : compiler_names())
		if (std::string real = find_real(n, ""); !real.empty())
			out.emplace_back(n, real);
	return out;
}

Result<void> install_compiler_shims(const std::string &dir, const std::string &self)
{
	std::error_code ec;
	fs::create_directories(dir, ec);
	if (ec)
		return make_error(Errc::io, fmt::format("cannot create {}: {}", dir, ec.message()));
	for (const std::string &n : compiler_names()) {
		if (find_real(n, dir).empty())
			continue;
		fs::create_symlink(self, dir + "/" + n, ec);
		if (ec && ec != std::errc::file_exists)
			return make_error(Errc::io, fmt::format("cannot create the compiler link "
			                                        "{}/{}: {}",
			                                        dir, n, ec.message()));
	}
	return {};
}

} // namespace atlas::build_patch
