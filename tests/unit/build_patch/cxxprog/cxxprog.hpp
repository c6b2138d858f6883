// The C++ program atlas build-patch's tests patch (tests/unit/build_patch): a template member
// function, a virtual function, a lambda behind std::function, a function an exception is
// thrown through, a function-local static with a guard variable.
#pragma once

#include <functional>
#include <memory>
#include <string>

template <typename T>
struct Accumulator {
	T base;
	// Neither inlined nor cloned (gcc's IPA-SRA would pass `base` instead of `this`): each
	// unit that uses it has the instance, in a COMDAT group, which a patch redirects once.
	__attribute__((noinline, noclone)) T add(T x) const;
};

template <typename T>
T Accumulator<T>::add(T x) const
{
	return base + x;
}

struct Shape {
	virtual ~Shape() = default;
	virtual int area() const = 0;
};

std::unique_ptr<Shape> make_square(int side);
int total_area(const Shape &s, int extra); // uses Accumulator<int> too

std::function<int(int)> make_scaler();
int parse_level(int x); // throws std::out_of_range above the limit
int session_id();       // a function-local static with a dynamic initialiser
int count_call();       // a thread_local counter
