// SPDX-License-Identifier: MIT
#include "process.hpp"

#include <cerrno>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <fmt/format.h>
#include <fstream>
#include <map>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

namespace atlas::build_patch
{

using patch::Errc;
using patch::make_error;
using patch::Result;

Result<int> run_process(const std::vector<std::string> &argv, const RunOptions &o)
{
	if (argv.empty())
		return make_error(Errc::internal, "run_process: no command");
	std::map<std::string, std::string> env;
	for (char **e = environ; *e; e++) {
		std::string kv = *e;
		size_t eq = kv.find('=');
		env[kv.substr(0, eq)] = eq == std::string::npos ? "" : kv.substr(eq + 1);
	}
	for (const std::string &kv : o.env) {
		size_t eq = kv.find('=');
		env[kv.substr(0, eq)] = eq == std::string::npos ? "" : kv.substr(eq + 1);
	}
	std::vector<std::string> env_strings;
	for (const auto &[k, v] : env)
		env_strings.push_back(k + "=" + v);
	std::vector<char *> envp;
	for (std::string &s : env_strings)
		envp.push_back(s.data());
	envp.push_back(nullptr);
	std::vector<std::string> args = argv;
	std::vector<char *> cargv;
	for (std::string &a : args)
		cargv.push_back(a.data());
	cargv.push_back(nullptr);

	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	struct Cleanup {
		posix_spawn_file_actions_t *fa;
		~Cleanup()
		{
			posix_spawn_file_actions_destroy(fa);
		}
	} cleanup{&fa};
	if (!o.cwd.empty())
		posix_spawn_file_actions_addchdir_np(&fa, o.cwd.c_str());
	if (!o.log.empty()) {
		// Not O_CLOEXEC: the file becomes the child's stdout, which must stay open
		// across the exec (with it, every write to stdout in the build failed).
		posix_spawn_file_actions_addopen(&fa, 1, o.log.c_str(),
		                                 O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (!o.stdout_to_log_only)
			posix_spawn_file_actions_adddup2(&fa, 1, 2);
	}
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	pid_t pid;
	int err = posix_spawnp(&pid, cargv[0], &fa, nullptr, cargv.data(), envp.data());
	if (err)
		return make_error(Errc::io,
		                  fmt::format("cannot run {}: {}", argv[0], std::strerror(err)));
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return make_error(Errc::io, fmt::format("waiting for {}: {}", argv[0],
			                                        std::strerror(errno)));
	if (WIFSIGNALED(status))
		return make_error(
		    Errc::io, fmt::format("{} was killed by signal {}", argv[0], WTERMSIG(status)));
	return WEXITSTATUS(status);
}

std::string tail_of_file(const std::string &path, size_t lines)
{
	std::ifstream in(path);
	std::deque<std::string> last;
	for (std::string l; std::getline(in, l);) {
		last.push_back(l);
		if (last.size() > lines)
			last.pop_front();
	}
	std::string out;
	for (const std::string &l : last)
		out += "  | " + l + "\n";
	return out;
}

} // namespace atlas::build_patch
