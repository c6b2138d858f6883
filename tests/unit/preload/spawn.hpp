// Test support: start a target program, read its "ready <socket>" line, stop it with SIGTERM;
// run a command line and collect its output and exit status.
#ifndef ATLAS_TESTS_SPAWN_HPP
#define ATLAS_TESTS_SPAWN_HPP

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <poll.h>
#include <spawn.h>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

extern char **environ;

namespace atlas_test
{

struct Process {
	pid_t pid = -1;
	int out = -1; // its stdout
	std::string socket;

	// Reads one line (bounded wait); empty on timeout or EOF.
	std::string line(int timeout_ms = 10000)
	{
		std::string l;
		char c;
		while (true) {
			pollfd p{out, POLLIN, 0};
			if (poll(&p, 1, timeout_ms) <= 0)
				return l;
			if (::read(out, &c, 1) != 1 || c == '\n')
				return l;
			l += c;
		}
	}
	// SIGTERM; returns its final line ("eintr N").
	std::string stop()
	{
		if (pid <= 0)
			return {};
		kill(pid, SIGTERM);
		std::string last = line();
		int status;
		waitpid(pid, &status, 0);
		pid = -1;
		close(out);
		return last;
	}
	~Process()
	{
		if (pid > 0) {
			kill(pid, SIGKILL);
			int status;
			waitpid(pid, &status, 0);
		}
		if (out >= 0)
			close(out);
	}
};

inline bool start_process(Process &t, const std::string &exe, const std::vector<std::string> &env)
{
	int fds[2];
	if (pipe(fds) != 0)
		return false;
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
	posix_spawn_file_actions_addclose(&fa, fds[0]);
	std::vector<std::string> envs;
	for (char **e = environ; *e; e++)
		envs.push_back(*e);
	envs.insert(envs.end(), env.begin(), env.end());
	std::vector<char *> envp;
	for (auto &e : envs)
		envp.push_back(e.data());
	envp.push_back(nullptr);
	std::string path = exe;
	char *argv[] = {path.data(), nullptr};
	int r = posix_spawn(&t.pid, exe.c_str(), &fa, nullptr, argv, envp.data());
	posix_spawn_file_actions_destroy(&fa);
	close(fds[1]);
	t.out = fds[0];
	if (r != 0) {
		t.pid = -1;
		return false;
	}
	std::string ready = t.line();
	if (ready.rfind("ready ", 0) != 0)
		return false;
	t.socket = ready.substr(6);
	return true;
}

// Runs `command` through the shell with stderr joined to stdout; returns its exit status (-1
// if it could not run or did not exit normally) and, if `out` is given, everything it printed.
inline int run_command(const std::string &command, std::string *out = nullptr)
{
	std::string text;
	FILE *p = popen((command + " 2>&1").c_str(), "r");
	if (!p) {
		if (out)
			*out = "popen failed for: " + command;
		return -1;
	}
	char buf[4096];
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), p)) > 0)
		text.append(buf, n);
	int status = pclose(p);
	if (out)
		*out = text;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

} // namespace atlas_test

#endif
