// SPDX-License-Identifier: MIT
// Patch of libcxx.cpp: a virtual method, a template instantiation, a lambda with a standard
// algorithm (new template instances in COMDAT groups), and an exception thrown by a patched
// function (its own .eh_frame and .gcc_except_table) that propagates into the library.
#include <algorithm>
#include <cstdlib>
#include <numeric>
#include <stdexcept>
#include <vector>

struct Shape {
	virtual ~Shape() = default;
	virtual int area() const = 0;
};

struct Square : Shape {
	explicit Square(int side) : s(side) {}
	int area() const override;
	int s;
};

int Square::area() const
{
	return s * s + 1000;
}

// New data with a dynamic initialiser and a destructor: the patch's .init_array must run before
// the redirect is published (else n is 0), and its destructor is registered with
// __cxa_atexit against the patch's own __dso_handle.
struct Seven {
	Seven() : n(std::getenv("ATLAS_LOADER_TEST_UNSET") ? 1 : 7) {}
	~Seven()
	{
		n = 0;
	}
	int n;
};
static Seven seven;

template <class T>
T scale(T x);
template <>
int scale<int>(int x)
{
	return x * 3 + seven.n - 7;
}

extern "C" int cxx_lambda(int x)
{
	std::vector<int> v{3, 1, 2};
	std::sort(v.begin(), v.end(), [](int a, int b) { return a > b; });
	auto f = [x](int acc, int y) { return acc * 10 + x * y; };
	return std::accumulate(v.begin(), v.end(), 0, f);
}

static int checked(int x)
{
	if (x > 1000)
		throw std::runtime_error("too large");
	if (x < 0)
		throw std::invalid_argument("negative");
	return x * 4;
}

extern "C" int cxx_parse(int x)
{
	try {
		return checked(x);
	} catch (const std::invalid_argument &) {
		throw; // rethrown through this frame: its LSDA and the personality are relocated
	}
}

extern "C" int cxx_visit(int (*cb)(int), int x)
{
	return cb(x) + 2;
}
