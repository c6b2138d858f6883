// Code changes for the tests.
#ifndef ATLAS_TESTS_RUNTIME_CHANGES_HPP
#define ATLAS_TESTS_RUNTIME_CHANGES_HPP

#include "helpers.hpp"

#include <atomic>
#include <cstring>

namespace atlas_test
{

// What the "program" runs: a function-pointer table entry and a byte pattern, deliberately
// NOT atomic: in global mode the runtime's parking must order the writes before the workers'
// reads, and TSan reports a race if it does not.
struct Target {
	int (*entry)() = nullptr;
	unsigned char bytes[64] = {};
};

inline int version_one()
{
	return 1;
}
inline int version_two()
{
	return 2;
}

// Swaps the entry and rewrites the pattern; a reader must see all-old or all-new.
class SwapChange : public atlas::CodeChange
{
public:
	SwapChange(Target &target, std::string name, bool global_only = false,
	           std::vector<atlas::AddressRange> ranges = {})
	    : target_(target), name_(std::move(name)), global_only_(global_only),
	      ranges_(std::move(ranges))
	{
	}
	std::string identity() const override
	{
		return name_;
	}
	atlas::Expected<void> apply() override
	{
		if (fail_apply)
			return atlas::make_error(atlas::Errc::change_failed, "injected failure");
		if (during_apply)
			during_apply();
		write(version_two, 2);
		applies++;
		return {};
	}
	atlas::Expected<void> revert() override
	{
		write(version_one, 1);
		reverts++;
		return {};
	}
	bool requires_global() const override
	{
		return global_only_;
	}
	std::vector<atlas::AddressRange> replaced_functions() const override
	{
		return ranges_;
	}
	std::vector<std::shared_ptr<const atlas::CodeChange>> stacked_on() const override
	{
		return bases;
	}

	void unreachable() noexcept override
	{
		unreachable_calls++;
		if (on_unreachable)
			on_unreachable();
	}

	std::atomic<int> applies{0};
	std::atomic<int> reverts{0};
	std::atomic<int> unreachable_calls{0};
	bool fail_apply = false;
	std::vector<std::shared_ptr<const atlas::CodeChange>> bases; // stacked_on()
	std::function<void()> during_apply;
	std::function<void()> on_unreachable; // must not throw

private:
	void write(int (*fn)(), unsigned char value)
	{
		target_.entry = fn;
		for (auto &b : target_.bytes)
			b = value;
	}
	Target &target_;
	std::string name_;
	bool global_only_;
	std::vector<atlas::AddressRange> ranges_;
};

// Reads the target like patched code would, checking it is never torn.
inline int observe(const Target &target, std::atomic<int> &torn)
{
	int v = target.entry();
	unsigned char first = target.bytes[0];
	for (unsigned char b : target.bytes)
		if (b != first)
			torn++;
	if (first != v)
		torn++;
	return v;
}

// Wait-free with simulated views: the change exists only in the view the patcher applied it
// in, which is how a thread's observed version is computed.
class ViewChange : public atlas::CodeChange
{
public:
	ViewChange(std::shared_ptr<FakeViewState> views, std::string name)
	    : views_(std::move(views)), name_(std::move(name))
	{
	}
	std::string identity() const override
	{
		return name_;
	}
	atlas::Expected<void> apply() override
	{
		if (fail_apply)
			return atlas::make_error(atlas::Errc::change_failed, "injected failure");
		patched_view.store(views_->current_of_caller());
		applies++;
		return {};
	}
	atlas::Expected<void> revert() override
	{
		unpatched_view.store(views_->current_of_caller());
		reverts++;
		return {};
	}
	void unreachable() noexcept override
	{
		unreachable_calls++;
	}
	// The version the calling thread runs: 2 in a view that holds the change.
	int version() const
	{
		long here = views_->current_of_caller();
		return here >= patched_view.load() && patched_view.load() > 0 &&
		               (unpatched_view.load() == 0 || here < unpatched_view.load())
		           ? 2
		           : 1;
	}

	std::atomic<long> patched_view{0};
	std::atomic<long> unpatched_view{0};
	std::atomic<int> applies{0};
	std::atomic<int> reverts{0};
	std::atomic<int> unreachable_calls{0};
	bool fail_apply = false;

private:
	std::shared_ptr<FakeViewState> views_;
	std::string name_;
};

} // namespace atlas_test

#endif
