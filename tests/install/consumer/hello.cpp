// A C++ program built against an installed libatlas (tests/install/run.sh): the C++ runtime
// API (a change applied and reverted in global mode while a worker passes quiescence points)
// and the patch loader (a file that is no patch is refused with a message).
#include <atlas/patch/loader.hpp>
#include <atlas/runtime.hpp>

#include <atomic>
#include <cstdio>
#include <thread>

namespace
{

std::atomic<int> g_value{1};

class SetValue final : public atlas::CodeChange
{
public:
	std::string identity() const override
	{
		return "hello-cpp@0/0";
	}
	atlas::Expected<void> apply() override
	{
		g_value = 2;
		return {};
	}
	atlas::Expected<void> revert() override
	{
		g_value = 1;
		return {};
	}
	bool requires_global() const override
	{
		return true;
	}
	std::vector<atlas::AddressRange> replaced_functions() const override
	{
		return {};
	}
};

int fail(const char *what, const std::string &message)
{
	std::fprintf(stderr, "hello_cpp: %s: %s\n", what, message.c_str());
	return 1;
}

} // namespace

int main()
{
	auto runtime = atlas::Runtime::create({});
	std::atomic<bool> stop{false}, registered{false};
	std::thread worker([&] {
		if (!runtime->register_current_thread("cpp-worker"))
			return;
		registered = true;
		while (!stop)
			atlas::quiescence_point();
		(void)runtime->unregister_current_thread();
	});
	while (!registered)
		std::this_thread::yield();
	auto change = std::make_shared<SetValue>();
	atlas::Report report =
	    runtime->apply(change, {atlas::Mode::global, std::chrono::seconds(5)});
	if (!report.ok() || g_value != 2)
		return fail("apply", report.message);
	report =
	    runtime->revert(change->identity(), {atlas::Mode::global, std::chrono::seconds(5)});
	if (!report.ok() || g_value != 1)
		return fail("revert", report.message);
	if (runtime->status().to_json().find("\"threads\"") == std::string::npos)
		return fail("status", "no threads in the status");
	stop = true;
	worker.join();

	auto loaded = atlas::patch::load_patch("/proc/self/status");
	if (loaded)
		return fail("load_patch", "a file that is no patch was loaded");
	std::printf("hello_cpp: applied and reverted in global mode; load_patch refused: %s\n",
	            loaded.error().message.c_str());
	return 0;
}
