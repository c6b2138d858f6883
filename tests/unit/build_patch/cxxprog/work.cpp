#include "cxxprog.hpp"

#include <atomic>
#include <stdexcept>

std::function<int(int)> make_scaler()
{
	return [](int x) { return x * 2; };
}

int parse_level(int x)
{
	if (x > 10)
		throw std::out_of_range("level " + std::to_string(x) + " above 10");
	return x;
}

namespace
{

std::atomic<int> sessions{0};

struct Session {
	Session() : id(++sessions) {}
	int id;
};

} // namespace

int session_id()
{
	static Session s; // constructed once, on the first call; guarded
	return s.id;
}

// Calls of this thread: a thread_local, so that the refusal tests can change one.
thread_local int thread_calls = 0;

int count_call()
{
	return ++thread_calls;
}
