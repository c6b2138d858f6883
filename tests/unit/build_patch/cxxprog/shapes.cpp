#include "cxxprog.hpp"

namespace
{

struct Square : Shape {
	explicit Square(int s) : side(s) {}
	int area() const override;
	int side;
};

} // namespace

int Square::area() const
{
	return side * side;
}

std::unique_ptr<Shape> make_square(int side)
{
	return std::make_unique<Square>(side);
}

int total_area(const Shape &s, int extra)
{
	return Accumulator<int>{s.area()}.add(extra);
}
