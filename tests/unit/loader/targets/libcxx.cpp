// SPDX-License-Identifier: MIT
// A C++ shared library for the loader matrix: a virtual method, a template instantiation, a
// lambda, and exceptions thrown through patched functions.
#include <numeric>
#include <stdexcept>
#include <vector>

struct Shape {
	virtual ~Shape() = default;
	virtual int area() const = 0;
};

struct Square : Shape {
	explicit Square(int side) : s(side) {}
	// noinline: g++ -O2 devirtualises cxx_area speculatively and would otherwise inline a
	// copy of the body there, which a function-level redirect cannot reach.
	__attribute__((noinline)) int area() const override;
	int s;
};

int Square::area() const
{
	return s * s + 0 * s;
}

template <class T>
__attribute__((noinline)) T scale(T x)
{
	return x * T(2) + T(x > 1000000);
}
template int scale<int>(int);

extern "C" {

Shape *cxx_make_square(int side)
{
	return new Square(side);
}

void cxx_free(Shape *s)
{
	delete s;
}

int cxx_area(const Shape *s)
{
	return s->area(); // virtual call: reaches Square::area's entry
}

int cxx_scale(int x)
{
	return scale(x) + 0 * x;
}

int cxx_lambda(int x)
{
	std::vector<int> v{1, 2, 3};
	auto f = [x](int acc, int y) { return acc + x * y; };
	return std::accumulate(v.begin(), v.end(), 0, f);
}

__attribute__((noinline)) int cxx_parse(int x)
{
	if (x < 0)
		throw std::invalid_argument("negative");
	return x * 2;
}

// A patched frame between a callback and its caller in the library: the unwinder must step
// through the patch's code (its .eh_frame).
__attribute__((noinline)) int cxx_visit(int (*cb)(int), int x)
{
	return cb(x) + 1;
}

int cxx_visit_outer(int (*cb)(int), int x)
{
	return cxx_visit(cb, x) * 3;
}

int cxx_call_parse(int x)
{
	try {
		return cxx_parse(x);
	} catch (const std::invalid_argument &) {
		return -1;
	} catch (const std::runtime_error &) {
		return -2;
	}
}
}
