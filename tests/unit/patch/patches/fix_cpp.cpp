// A C++ patch for the dup target: exceptions (.eh_frame, .gcc_except_table, personality),
// templates and inline functions (COMDAT groups), a lambda and a static local.
#include <stdexcept>
#include <string>
#include <vector>

extern "C" int a_entry(int x);
extern "C" int b_entry(int x);

namespace
{

template <class T>
T twice(T v)
{
	return v + v;
}

int checked(int x)
{
	if (x < 0)
		throw std::invalid_argument("negative: " + std::to_string(x));
	return x;
}

} // namespace

extern "C" int process(int x)
{
	static std::vector<int> seen;
	try {
		seen.push_back(checked(x));
	} catch (const std::exception &) {
		return -1;
	}
	auto add = [&](int y) { return twice(y) + int(seen.size()); };
	return add(a_entry(x)) + b_entry(x);
}
