// SPDX-License-Identifier: MIT
// The loader matrix: patches built by atlas-mkpatch for real gcc/g++ -O2 targets (shared
// libraries dlopen'ed here, and code linked into this PIE executable), loaded, applied,
// stacked and reverted in this process, directly and through atlas::Runtime in global mode.
#include <atlas/patch/loader.hpp>
#include <atlas/runtime.hpp>

#include "../runtime/helpers.hpp" // simulated views (FakeViews)
#include "stack_check.hpp"        // the preload's stack check (lib/preload)

#include <array>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <fstream>
#include <gtest/gtest.h>
#define UNW_LOCAL_ONLY
#include <libunwind.h>
#include <link.h>
#include <map>
#include <stdexcept>
#include <string>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

extern "C" {
int exe_add(int a, int b);
unsigned long exe_len(const char *s);
int exe_tls_bump(void);
int exe_tls2_get(void);
int exe_call_add(int a, int b);
}

namespace
{

using atlas::AddressRange;
using atlas::patch::load_patch;
using atlas::patch::LoadedPatch;
using atlas::patch::LoadOptions;

const std::string dir = ATLAS_LOADER_TEST_DIR;

std::string patch_path(const std::string &name)
{
	return dir + "/" + name + ".patch.o";
}

// Patched objects stay loaded (RTLD_NODELETE): the design pins them.
void *open_lib(const std::string &rel)
{
	void *h = dlopen((dir + "/" + rel).c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
	EXPECT_NE(h, nullptr) << dlerror();
	return h;
}

template <class F>
F sym(void *h, const char *name)
{
	void *p = dlsym(h, name);
	EXPECT_NE(p, nullptr) << name;
	return reinterpret_cast<F>(p);
}

std::vector<uint8_t> bytes_at(const void *p, size_t n = 16)
{
	const auto *b = static_cast<const uint8_t *>(p);
	return {b, b + n};
}

// Mappings of patches in this process (the memfd text of every loaded patch).
int patch_mappings()
{
	std::ifstream maps("/proc/self/maps");
	std::string line;
	int n = 0;
	while (std::getline(maps, line))
		n += line.find("atlas-patch:") != std::string::npos;
	return n;
}

bool mapped(uintptr_t addr)
{
	return msync(reinterpret_cast<void *>(addr & ~uintptr_t(4095)), 4096, MS_ASYNC) == 0;
}

std::shared_ptr<atlas::CodeChange> must_load(const std::string &name, const LoadOptions &opt = {})
{
	auto r = load_patch(patch_path(name), opt);
	EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
	return r.ok() ? *r : nullptr;
}

struct LibC {
	void *h = open_lib("v1/libloadtarget.so");
	int (*add)(int, int) = sym<int (*)(int, int)>(h, "lib_add");
	int (*call_add)(int, int) = sym<int (*)(int, int)>(h, "lib_call_add");
	int (*format)(char *, int) = sym<int (*)(char *, int)>(h, "lib_format");
	int (*count)() = sym<int (*)()>(h, "lib_count");
	int (*tls_bump)() = sym<int (*)()>(h, "lib_tls_bump");
	void (*static_set)(int) = sym<void (*)(int)>(h, "lib_static_set");
	int (*static_get)() = sym<int (*)()>(h, "lib_static_get");
	using add_fn = int (*)(int, int);
	add_fn (*add_ptr)() = sym<add_fn (*)()>(h, "lib_add_ptr");
	int *counter = sym<int *>(h, "lib_counter");
	int (*loop)(int) = sym<int (*)(int)>(h, "lib_loop");
	void *tiny = sym<void *>(h, "lib_tiny");

	std::string fmt(int n)
	{
		char buf[64];
		format(buf, n);
		return buf;
	}
};

TEST(Loader, CLibraryAppliedAndReverted)
{
	LibC lib;
	auto before = bytes_at(reinterpret_cast<void *>(lib.add));
	auto fmt_before = bytes_at(reinterpret_cast<void *>(lib.format));
	auto change = must_load("lib_fix");
	ASSERT_TRUE(change);
	auto loaded = std::dynamic_pointer_cast<LoadedPatch>(change);
	ASSERT_TRUE(loaded);
	// Loading writes no redirect.
	EXPECT_EQ(bytes_at(reinterpret_cast<void *>(lib.add)), before);
	EXPECT_EQ(lib.add(1, 2), 3);
	EXPECT_FALSE(change->requires_global());
	EXPECT_EQ(change->replaced_functions().size(), 6u);
	EXPECT_EQ(loaded->cells().tls_slots, 1u); // lib_tls: a tls_index (general-dynamic)
	EXPECT_GE(loaded->cells().got_slots, 2u); // lib_counter, lib_zero

	ASSERT_TRUE(change->apply()) << "apply";
	EXPECT_EQ(lib.add(1, 2), 103);
	EXPECT_EQ(lib.call_add(1, 2), 103); // a call through the PLT reaches the entry
	EXPECT_EQ(lib.fmt(7), "v2:7");      // libc from the patch
	EXPECT_EQ(lib.fmt(2), "two:4");     // a jump table in the patch's .rodata
	EXPECT_EQ(lib.fmt(3), "three:333");
	EXPECT_EQ(lib.fmt(6), "six:vi");
	int calls = lib.count(); // the library's static local, by reference
	int counter = *lib.counter;
	EXPECT_EQ(lib.count(), calls + 10);
	EXPECT_EQ(*lib.counter, counter + 10); // extern data: the library's instance
	lib.static_set(21);
	EXPECT_EQ(lib.static_get(), 42); // the library's `static int`, by reference
	// &lib_add in the patch is the original entry: function pointers compare equal.
	EXPECT_EQ(reinterpret_cast<void *>(lib.add_ptr()), reinterpret_cast<void *>(lib.add));
	// TLS of a dlopen'ed library: general-dynamic, per thread.
	int t0 = lib.tls_bump();
	EXPECT_EQ(lib.tls_bump(), t0 + 10);
	int other = 0;
	std::thread([&] { other = lib.tls_bump(); }).join();
	EXPECT_EQ(other, 10);

	ASSERT_TRUE(change->revert()) << "revert";
	EXPECT_EQ(bytes_at(reinterpret_cast<void *>(lib.add)), before);
	EXPECT_EQ(bytes_at(reinterpret_cast<void *>(lib.format)), fmt_before);
	EXPECT_EQ(lib.add(1, 2), 3);
	EXPECT_EQ(lib.fmt(7), "v1:7");
	EXPECT_EQ(lib.static_get(), 21);
	int t1 = lib.tls_bump();
	EXPECT_EQ(lib.tls_bump(), t1 + 1);

	// Applied again after a revert, then reverted and unmapped.
	ASSERT_TRUE(change->apply());
	EXPECT_EQ(lib.add(1, 2), 103);
	ASSERT_TRUE(change->revert());
	uintptr_t text = loaded->text_range().start;
	EXPECT_TRUE(mapped(text));
	change->unreachable();
	EXPECT_FALSE(mapped(text));
	EXPECT_FALSE(change->apply()) << "an unmapped patch must not be applied";
	EXPECT_EQ(lib.add(1, 2), 3);
}

// In wait-free mode apply() writes the redirects into the transition's new view only; when the
// transition is undone (revert_pending) that view is deleted and the runtime calls
// unreachable() on a patch whose apply() succeeded but whose redirects exist nowhere any more:
// it is unmapped then, once. While a redirect is visible it stays mapped.
TEST(Loader, UnreachableOnceItsRedirectsAreGone)
{
	LibC lib;
	auto change = must_load("lib_fix");
	ASSERT_TRUE(change);
	auto loaded = std::dynamic_pointer_cast<LoadedPatch>(change);
	ASSERT_TRUE(loaded);
	std::vector<std::pair<uint64_t, std::vector<uint8_t>>> entries;
	for (uint64_t site : loaded->redirect_sites())
		entries.emplace_back(site, bytes_at(reinterpret_cast<void *>(site), 5));
	ASSERT_FALSE(entries.empty());
	ASSERT_TRUE(change->apply());
	EXPECT_EQ(lib.add(1, 2), 103);
	const uintptr_t text = loaded->text_range().start;
	change->unreachable();
	EXPECT_TRUE(mapped(text)) << "applied and visible: reachable";
	EXPECT_EQ(lib.add(1, 2), 103);
	// What deleting the view that held the redirects leaves behind: the original entries.
	int fd = open("/proc/thread-self/mem", O_RDWR | O_CLOEXEC);
	ASSERT_GE(fd, 0) << strerror(errno);
	for (const auto &[site, bytes] : entries)
		EXPECT_EQ(pwrite(fd, bytes.data(), bytes.size(), off_t(site)),
		          ssize_t(bytes.size()))
		    << strerror(errno);
	close(fd);
	EXPECT_EQ(lib.add(1, 2), 3);
	change->unreachable();
	EXPECT_FALSE(mapped(text)) << "no redirect left anywhere: unmapped";
	change->unreachable(); // once: nothing left to do
	EXPECT_FALSE(change->apply()) << "an unmapped patch must not be applied";
	EXPECT_EQ(lib.add(1, 2), 3);
}

TEST(Loader, StackedPatchesRevertLastInFirstOut)
{
	LibC lib;
	auto before = bytes_at(reinterpret_cast<void *>(lib.add));
	auto first = must_load("lib_fix");
	ASSERT_TRUE(first);
	ASSERT_TRUE(first->apply());
	LoadOptions opt;
	opt.earlier.push_back(std::dynamic_pointer_cast<const LoadedPatch>(first));
	auto second = must_load("lib_add2", opt);
	ASSERT_TRUE(second);
	ASSERT_TRUE(second->apply());
	EXPECT_EQ(lib.add(1, 2), 203);
	EXPECT_EQ(lib.call_add(1, 2), 203);
	EXPECT_EQ(lib.fmt(7), "v2:7"); // the first patch's other redirects stay

	auto stacked = bytes_at(reinterpret_cast<void *>(lib.add));
	auto r = first->revert();
	EXPECT_FALSE(r) << "reverting the lower patch first must be refused";
	EXPECT_NE(r.error().message.find("last in, first out"), std::string::npos)
	    << r.error().message;
	EXPECT_EQ(bytes_at(reinterpret_cast<void *>(lib.add)), stacked);
	EXPECT_EQ(lib.fmt(7), "v2:7");

	ASSERT_TRUE(second->revert());
	EXPECT_EQ(lib.add(1, 2), 103);
	ASSERT_TRUE(first->revert());
	EXPECT_EQ(lib.add(1, 2), 3);
	EXPECT_EQ(bytes_at(reinterpret_cast<void *>(lib.add)), before);
	second->unreachable();
	first->unreachable();
}

// Every refusal happens before anything is mapped or written.
void expect_refused(const std::string &name, const std::vector<std::string> &words)
{
	LibC lib;
	auto add = bytes_at(reinterpret_cast<void *>(lib.add));
	auto tiny = bytes_at(lib.tiny, 1);
	auto loop = bytes_at(reinterpret_cast<void *>(lib.loop), 10);
	int maps = patch_mappings();
	auto r = load_patch(patch_path(name));
	ASSERT_FALSE(r.ok()) << name << " must be refused";
	for (const auto &w : words)
		EXPECT_NE(r.error().message.find(w), std::string::npos)
		    << "'" << w << "' missing in: " << r.error().message;
	EXPECT_EQ(patch_mappings(), maps) << "a refused patch left a mapping";
	EXPECT_EQ(bytes_at(reinterpret_cast<void *>(lib.add)), add);
	EXPECT_EQ(bytes_at(lib.tiny, 1), tiny);
	EXPECT_EQ(bytes_at(reinterpret_cast<void *>(lib.loop), 10), loop);
	EXPECT_EQ(lib.add(1, 2), 3);
	EXPECT_EQ(lib.loop(5), 5);
}

TEST(Loader, RefusesWrongBuildIdNamingBoth)
{
	expect_refused("lib_wrong_id", {"10ad0002", "10ad0001", "not loaded"});
}

TEST(Loader, RefusesUnresolvedSymbol)
{
	expect_refused("lib_unresolved", {"atlas_no_such_symbol", "unresolved"});
}

TEST(Loader, RefusesFunctionShorterThanTheJump)
{
	expect_refused("lib_tiny", {"lib_tiny", "too short"});
}

TEST(Loader, RefusesBranchIntoTheOverwrittenBytes)
{
	expect_refused("lib_loop", {"lib_loop", "branches to offset 0x2"});
}

TEST(Loader, RefusesInitialExecTlsOfDynamicTlsBlock)
{
	expect_refused("lib_tls_ie", {"lib_tls", "static TLS", "global-dynamic"});
}

TEST(Loader, RefusesMissingFile)
{
	auto r = load_patch(dir + "/no-such.patch.o");
	ASSERT_FALSE(r.ok());
	EXPECT_NE(r.error().message.find("no-such.patch.o"), std::string::npos);
}

TEST(Loader, PieExecutableLibcStubsAndStaticTls)
{
	int add0 = exe_add(1, 2);
	auto before = bytes_at(reinterpret_cast<void *>(&exe_add));
	auto change = must_load("exe_fix");
	ASSERT_TRUE(change);
	auto loaded = std::dynamic_pointer_cast<LoadedPatch>(change);
	// Placed near the executable; libc (strlen) may be far away: the patch reaches it through
	// a branch stub or GOT slot.
	uintptr_t text = loaded->text_range().start;
	auto exe = reinterpret_cast<uintptr_t>(&exe_add);
	EXPECT_LT(text > exe ? text - exe : exe - text, uintptr_t(2) << 30);
	auto far = reinterpret_cast<uintptr_t>(dlsym(RTLD_DEFAULT, "strlen"));
	ASSERT_NE(far, 0u);
	if ((far > text ? far - text : text - far) > (uintptr_t(2) << 30)) {
		EXPECT_GE(loaded->cells().branch_stubs_used, 1u) << "strlen is far: needs a stub";
	}
	EXPECT_GE(loaded->cells().got_slots, 2u); // exe_data, stderr
	EXPECT_EQ(loaded->cells().tls_slots, 1u); // exe_tls (initial-exec); exe_tls2 is LE

	ASSERT_TRUE(change->apply());
	EXPECT_EQ(exe_add(1, 2), 503);
	EXPECT_EQ(exe_call_add(1, 2), 503);
	EXPECT_EQ(exe_len("abc"), 11u);
	// Initial-exec and local-exec TLS of the executable, in this and another thread.
	int tls2 = exe_tls2_get();
	int t = exe_tls_bump();
	EXPECT_EQ(exe_tls_bump(), t + 10);
	EXPECT_EQ(exe_tls2_get(), tls2 + 200);
	int other = 0, other2 = 0;
	std::thread([&] {
		other = exe_tls_bump();
		other2 = exe_tls2_get();
	}).join();
	EXPECT_EQ(other, 10);
	EXPECT_EQ(other2, 100);

	ASSERT_TRUE(change->revert());
	EXPECT_EQ(bytes_at(reinterpret_cast<void *>(&exe_add)), before);
	EXPECT_EQ(exe_add(1, 2), add0);
	EXPECT_EQ(exe_len("abc"), 8u);
	change->unreachable();
}

TEST(Loader, CxxVirtualTemplateLambdaExceptions)
{
	void *h = open_lib("libloadcxx.so");
	using shape = void;
	auto make = sym<shape *(*)(int)>(h, "cxx_make_square");
	auto destroy = sym<void (*)(shape *)>(h, "cxx_free");
	auto area = sym<int (*)(const shape *)>(h, "cxx_area");
	auto scale = sym<int (*)(int)>(h, "cxx_scale");
	auto lambda = sym<int (*)(int)>(h, "cxx_lambda");
	auto parse = sym<int (*)(int)>(h, "cxx_parse");
	auto call_parse = sym<int (*)(int)>(h, "cxx_call_parse");
	shape *sq = make(3);
	EXPECT_EQ(area(sq), 9);
	EXPECT_EQ(scale(5), 10);
	EXPECT_EQ(lambda(2), 12);
	EXPECT_EQ(call_parse(5), 10);
	EXPECT_EQ(call_parse(-1), -1);

	auto change = must_load("cxx_fix");
	ASSERT_TRUE(change);
	ASSERT_TRUE(change->apply());
	EXPECT_EQ(area(sq), 1009); // virtual call through the original vtable
	EXPECT_EQ(scale(5), 15);   // template instantiation
	EXPECT_EQ(lambda(2), 642); // lambdas, std::sort and std::accumulate in the patch
	EXPECT_EQ(call_parse(5), 20);
	EXPECT_EQ(call_parse(-1), -1);   // rethrown through the patched frame
	EXPECT_EQ(call_parse(2000), -2); // thrown by patch code, caught in the library
	EXPECT_THROW(parse(2000), std::runtime_error);
	try {
		parse(-5);
		ADD_FAILURE() << "no exception";
	} catch (const std::invalid_argument &e) {
		EXPECT_STREQ(e.what(), "negative");
	}

	ASSERT_TRUE(change->revert());
	EXPECT_EQ(area(sq), 9);
	EXPECT_EQ(scale(5), 10);
	EXPECT_EQ(lambda(2), 12);
	EXPECT_EQ(call_parse(2000), 4000);
	destroy(sq);
	change->unreachable();
}

// libunwind (what the preload's stack check uses) opened privately, as the preload does: its
// library also exports _Unwind_* and must not take over the process's C++ exceptions.
struct Libunwind {
	void *h = dlopen("libunwind.so.8", RTLD_NOW | RTLD_LOCAL);
	int (*getcontext)(unw_context_t *) = fn<decltype(getcontext)>("_Ux86_64_getcontext");
	int (*init_local)(unw_cursor_t *,
	                  unw_context_t *) = fn<decltype(init_local)>("_ULx86_64_init_local");
	int (*step)(unw_cursor_t *) = fn<decltype(step)>("_ULx86_64_step");
	int (*get_reg)(unw_cursor_t *, unw_regnum_t,
	               unw_word_t *) = fn<decltype(get_reg)>("_ULx86_64_get_reg");
	void (*dyn_register)(unw_dyn_info_t *) = fn<decltype(dyn_register)>("_U_dyn_register");
	void (*dyn_cancel)(unw_dyn_info_t *) = fn<decltype(dyn_cancel)>("_U_dyn_cancel");

	template <class F>
	F fn(const char *name)
	{
		return h ? reinterpret_cast<F>(dlsym(h, name)) : nullptr;
	}
	bool ok() const
	{
		return getcontext && init_local && step && get_reg && dyn_register && dyn_cancel;
	}
};
Libunwind *unwinder;
std::vector<uintptr_t> unwound; // IPs seen from the callback, innermost first
int unwind_steps_failed = 0;

int unwinding_callback(int x)
{
	unwound.clear();
	unwind_steps_failed = 0;
	unw_context_t ctx;
	unw_cursor_t cur;
	if (unwinder->getcontext(&ctx) != 0 || unwinder->init_local(&cur, &ctx) != 0)
		return -1000;
	for (int i = 0; i < 32; i++) {
		unw_word_t ip = 0;
		if (unwinder->get_reg(&cur, UNW_REG_IP, &ip) != 0 || ip == 0)
			break;
		unwound.push_back(uintptr_t(ip));
		int r = unwinder->step(&cur);
		if (r < 0)
			unwind_steps_failed++;
		if (r <= 0)
			break;
	}
	return x;
}

TEST(Loader, LibunwindStepsThroughPatchFrames)
{
	Libunwind lu;
	if (!lu.h)
		GTEST_SKIP() << "libunwind.so.8 is not installed (Debian: libunwind8)";
	ASSERT_TRUE(lu.ok()) << "libunwind.so.8 lacks an entry point";
	unwinder = &lu;
	void *h = open_lib("libloadcxx.so");
	auto outer = sym<int (*)(int (*)(int), int)>(h, "cxx_visit_outer");
	Dl_info lib_info{};
	ASSERT_NE(dladdr(reinterpret_cast<void *>(outer), &lib_info), 0);

	auto change = must_load("cxx_fix");
	ASSERT_TRUE(change);
	auto loaded = std::dynamic_pointer_cast<LoadedPatch>(change);
	auto table = loaded->unwind_table();
	ASSERT_GT(table.table_len, 0u) << "the C++ patch has an .eh_frame";
	unw_dyn_info_t di{};
	di.start_ip = table.start_ip;
	di.end_ip = table.end_ip;
	di.format = UNW_INFO_FORMAT_REMOTE_TABLE;
	di.u.rti.segbase = table.segbase;
	di.u.rti.table_data = table.table_data;
	di.u.rti.table_len = table.table_len;
	lu.dyn_register(&di);

	ASSERT_TRUE(change->apply());
	EXPECT_EQ(outer(unwinding_callback, 5), 21); // (5 + 2) * 3: the patched cxx_visit ran
	auto text = loaded->text_range();
	size_t in_patch = unwound.size();
	for (size_t i = 0; i < unwound.size(); i++)
		if (unwound[i] >= text.start && unwound[i] < text.end) {
			in_patch = i;
			break;
		}
	ASSERT_LT(in_patch, unwound.size()) << "no frame in the patch's text";
	ASSERT_LT(in_patch + 1, unwound.size()) << "the unwind stopped at the patch's frame";
	Dl_info caller{};
	ASSERT_NE(dladdr(reinterpret_cast<void *>(unwound[in_patch + 1]), &caller), 0);
	EXPECT_EQ(caller.dli_fbase, lib_info.dli_fbase)
	    << "the frame above the patch's is its caller in the library";
	EXPECT_EQ(unwind_steps_failed, 0);

	ASSERT_TRUE(change->revert());
	EXPECT_EQ(outer(unwinding_callback, 5), 18);
	lu.dyn_cancel(&di);
	change->unreachable();
}

// Memory-deny-write-execute (prctl PR_SET_MDWE, Linux 6.3; what systemd's
// MemoryDenyWriteExecute= enforces with seccomp): no mapping may become executable after being
// writable, nor be mapped writable and executable. The loader never needs either. Irreversible,
// so it runs in a child process.
TEST(Loader, WorksUnderMemoryDenyWriteExecute)
{
	constexpr int pr_set_mdwe = 65, pr_mdwe_refuse_exec_gain = 1; // linux/prctl.h (6.3)
	pid_t pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		if (prctl(pr_set_mdwe, pr_mdwe_refuse_exec_gain, 0, 0, 0) != 0)
			_exit(errno == EINVAL ? 77 : 2);
		// Enforced: an anonymous W+X mapping is refused now.
		void *wx = mmap(nullptr, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
		                MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (wx != MAP_FAILED)
			_exit(3);
		auto r = load_patch(patch_path("exe_fix"));
		if (!r.ok()) {
			std::fprintf(stderr, "%s\n", r.error().message.c_str());
			_exit(4);
		}
		if (!(*r)->apply())
			_exit(5);
		if (exe_add(1, 2) != 503 || exe_len("abcd") != 13)
			_exit(6);
		if (!(*r)->revert() || exe_add(1, 2) != 8)
			_exit(7);
		_exit(0);
	}
	int status = 0;
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT_TRUE(WIFEXITED(status)) << "child died with signal " << WTERMSIG(status);
	if (WEXITSTATUS(status) == 77)
		GTEST_SKIP() << "this kernel has no PR_SET_MDWE (Linux >= 6.3)";
	EXPECT_EQ(WEXITSTATUS(status), 0)
	    << "2: prctl failed, 3: W+X not refused, 4: load, 5: apply, 6: patched behaviour, "
	       "7: revert";
}

// A stock kernel: no views, so the runtime uses global mode.
class NoViews final : public atlas::ViewOps
{
public:
	atlas::ViewResult create() override
	{
		return {0, ENOSYS};
	}
	atlas::ViewResult remove(atlas::ViewId) override
	{
		return {0, ENOSYS};
	}
	atlas::ViewResult migrate(atlas::ViewId) override
	{
		return {0, ENOSYS};
	}
	atlas::ViewResult current() override
	{
		return {0, ENOSYS};
	}
	atlas::ViewResult switch_base() override
	{
		return {0, ENOSYS};
	}
};

TEST(Loader, RuntimeGlobalModeWithWorkers)
{
	LibC lib;
	atlas::RuntimeOptions options;
	options.views = std::make_unique<NoViews>();
	auto rt = atlas::Runtime::create(std::move(options));
	ASSERT_TRUE(rt);
	// Threads that exist now (main, sanitizer helpers) never run the patched code.
	std::thread([] {}).join();
	if (DIR *d = opendir("/proc/self/task")) {
		while (struct dirent *e = readdir(d))
			if (long tid = std::strtol(e->d_name, nullptr, 10); tid > 0)
				(void)rt->exempt_thread(pid_t(tid));
		closedir(d);
	}

	constexpr int n = 3;
	std::atomic<bool> stop{false};
	std::atomic<int> bad{0}, registered{0};
	std::atomic<int> seen[n] = {};
	std::vector<std::thread> workers;
	for (int i = 0; i < n; i++)
		workers.emplace_back([&, i] {
			if (!rt->register_current_thread("loader-worker"))
				bad++;
			registered++;
			while (!stop.load()) {
				atlas::quiescence_point();
				int v = lib.call_add(1, 2);
				if (v != 3 && v != 103)
					bad++;
				seen[i].store(v);
			}
		});
	while (registered.load() < n)
		std::this_thread::yield();

	auto change = must_load("lib_fix");
	ASSERT_TRUE(change);
	atlas::Request req;
	req.mode = atlas::Mode::global;
	req.deadline = std::chrono::milliseconds(20000);
	auto rep = rt->apply(change, req);
	EXPECT_EQ(rep.outcome, atlas::Outcome::finished) << rep.message;
	for (int i = 0; i < n; i++) {
		auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
		while (seen[i].load() != 103 && std::chrono::steady_clock::now() < end)
			std::this_thread::yield();
		EXPECT_EQ(seen[i].load(), 103) << "worker " << i;
	}
	auto rev = rt->revert(change->identity(), req);
	EXPECT_EQ(rev.outcome, atlas::Outcome::finished) << rev.message;
	for (int i = 0; i < n; i++) {
		auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
		while (seen[i].load() != 3 && std::chrono::steady_clock::now() < end)
			std::this_thread::yield();
		EXPECT_EQ(seen[i].load(), 3) << "worker " << i;
	}
	stop = true;
	for (auto &w : workers)
		w.join();
	EXPECT_EQ(bad.load(), 0);
	EXPECT_EQ(lib.add(1, 2), 3);
}

// Stacking through the runtime: a patch that binds an earlier patch's own code (lib_on_fix
// calls lib_fix's new lib_fix_bonus) stacks on it. If that earlier patch is reverted (and
// unmapped) between the stacked patch's load and its apply, the apply is refused before
// anything is written: applied, its code would call into unmapped text.
TEST(Loader, StackedPatchRefusedOnceItsBaseIsReverted)
{
	LibC lib;
	atlas::RuntimeOptions options;
	options.views = std::make_unique<NoViews>();
	auto rt = atlas::Runtime::create(std::move(options));
	ASSERT_TRUE(rt);
	atlas_test::exempt_existing_threads(*rt);
	atlas::Request req;
	req.mode = atlas::Mode::global;
	auto earlier = [&] {
		LoadOptions opt;
		for (const auto &c : rt->applied_changes())
			opt.earlier.push_back(std::dynamic_pointer_cast<const LoadedPatch>(c));
		return opt;
	};

	auto base = must_load("lib_fix");
	ASSERT_TRUE(base);
	const uintptr_t base_text =
	    std::dynamic_pointer_cast<LoadedPatch>(base)->text_range().start;
	ASSERT_EQ(rt->apply(base, req).outcome, atlas::Outcome::finished);
	auto top = must_load("lib_on_fix", earlier());
	ASSERT_TRUE(top);
	auto bases = top->stacked_on();
	ASSERT_EQ(bases.size(), 1u);
	EXPECT_EQ(bases[0].get(), base.get());
	// lib_add2 binds only the library's data: stacked on nothing.
	auto add2 = must_load("lib_add2", earlier());
	ASSERT_TRUE(add2);
	EXPECT_TRUE(add2->stacked_on().empty());
	add2->unreachable();

	auto rev = rt->revert(base->identity(), req);
	ASSERT_EQ(rev.outcome, atlas::Outcome::finished) << rev.message;
	EXPECT_FALSE(mapped(base_text)) << "the reverted base is unmapped";
	auto entry = bytes_at(reinterpret_cast<void *>(lib.add));
	auto r = rt->apply(top, req);
	EXPECT_EQ(r.outcome, atlas::Outcome::refused) << r.message;
	for (const std::string &word :
	     {top->identity(), base->identity(), std::string("no longer applied"),
	      std::string("nothing changed")})
		EXPECT_NE(r.message.find(word), std::string::npos) << word << ": " << r.message;
	EXPECT_EQ(bytes_at(reinterpret_cast<void *>(lib.add)), entry) << "nothing written";
	EXPECT_EQ(lib.add(1, 2), 3);
	top->unreachable(); // what the control server does with a change whose apply was refused

	// Loaded again on top of a base applied again: applied; the base cannot go first.
	auto base2 = must_load("lib_fix");
	ASSERT_TRUE(base2);
	ASSERT_EQ(rt->apply(base2, req).outcome, atlas::Outcome::finished);
	auto top2 = must_load("lib_on_fix", earlier());
	ASSERT_TRUE(top2);
	auto applied = rt->apply(top2, req);
	ASSERT_EQ(applied.outcome, atlas::Outcome::finished) << applied.message;
	EXPECT_EQ(lib.add(1, 2), 1003);
	EXPECT_EQ(rt->revert(base2->identity(), req).outcome, atlas::Outcome::refused);
	EXPECT_EQ(lib.add(1, 2), 1003);
	EXPECT_EQ(rt->revert(top2->identity(), req).outcome, atlas::Outcome::finished);
	EXPECT_EQ(rt->revert(base2->identity(), req).outcome, atlas::Outcome::finished);
	EXPECT_EQ(lib.add(1, 2), 3);
	EXPECT_EQ(bytes_at(reinterpret_cast<void *>(lib.add)), entry);
}

// The same protection without the runtime: a stacked patch's own apply(), called directly,
// refuses while a patch it stacks on is not in effect (reverted, never applied, or released),
// naming both and writing nothing; once the base is applied again it applies.
TEST(Loader, StackedPatchApplyRefusesWithoutItsBaseWhenCalledDirectly)
{
	LibC lib;
	auto base = must_load("lib_fix");
	ASSERT_TRUE(base);
	auto base_patch = std::dynamic_pointer_cast<const LoadedPatch>(base);
	EXPECT_FALSE(base_patch->in_effect().ok()) << "loaded, never applied";
	ASSERT_TRUE(base->apply().ok());
	EXPECT_TRUE(base_patch->in_effect().ok()) << base_patch->in_effect().error().message;
	LoadOptions opt;
	opt.earlier.push_back(base_patch);
	auto top = must_load("lib_on_fix", opt);
	ASSERT_TRUE(top);
	ASSERT_EQ(top->stacked_on().size(), 1u);
	const auto original = [&] {
		// The entry as the base found it: revert the base to read it.
		EXPECT_TRUE(base->revert().ok());
		auto b = bytes_at(reinterpret_cast<void *>(lib.add));
		return b;
	}();
	EXPECT_EQ(lib.add(1, 2), 3);
	EXPECT_FALSE(base_patch->in_effect().ok());

	// Base reverted: refused, nothing written.
	atlas::Expected<void> r = top->apply();
	ASSERT_FALSE(r.ok()) << "applied on top of a reverted base";
	for (const std::string &word :
	     {top->identity(), base->identity(), std::string("stacked on"), std::string("reverted"),
	      std::string("nothing changed")})
		EXPECT_NE(r.error().message.find(word), std::string::npos)
		    << word << ": " << r.error().message;
	EXPECT_EQ(bytes_at(reinterpret_cast<void *>(lib.add)), original) << "nothing written";
	EXPECT_EQ(lib.add(1, 2), 3);
	EXPECT_FALSE(top->revert().ok()) << "nothing to revert";

	// Base applied again (the same object): the stacked patch applies, and the base stays in
	// effect under it (its entry holds the later patch's jump).
	ASSERT_TRUE(base->apply().ok());
	ASSERT_TRUE(top->apply().ok());
	EXPECT_EQ(lib.add(1, 2), 1003);
	EXPECT_TRUE(base_patch->in_effect().ok()) << base_patch->in_effect().error().message;
	EXPECT_FALSE(top->apply().ok()) << "already applied";
	ASSERT_TRUE(top->revert().ok());

	// Another patch of the same function on top of the base (lib_add2 binds no patch): the
	// base stays in effect under it, so the stacked patch applies over both.
	auto add2 = must_load("lib_add2", opt);
	ASSERT_TRUE(add2);
	ASSERT_TRUE(add2->apply().ok());
	EXPECT_EQ(lib.add(1, 2), 203);
	EXPECT_TRUE(base_patch->in_effect().ok()) << base_patch->in_effect().error().message;
	ASSERT_TRUE(top->apply().ok());
	EXPECT_EQ(lib.add(1, 2), 1003);
	ASSERT_TRUE(top->revert().ok());
	ASSERT_TRUE(add2->revert().ok());
	add2->unreachable();
	ASSERT_TRUE(base->revert().ok());
	EXPECT_EQ(bytes_at(reinterpret_cast<void *>(lib.add)), original);

	// Base reverted and another copy of it applied: its functions jump elsewhere, but not
	// through it; the stacked patch (bound to the first copy's code and data) is refused.
	auto copy = must_load("lib_fix");
	ASSERT_TRUE(copy);
	ASSERT_TRUE(copy->apply().ok());
	const auto with_copy = bytes_at(reinterpret_cast<void *>(lib.add));
	EXPECT_FALSE(base_patch->in_effect().ok());
	r = top->apply();
	ASSERT_FALSE(r.ok()) << "applied on top of another copy of its base";
	EXPECT_NE(r.error().message.find("reverted"), std::string::npos) << r.error().message;
	EXPECT_EQ(bytes_at(reinterpret_cast<void *>(lib.add)), with_copy) << "nothing written";
	ASSERT_TRUE(copy->revert().ok());
	copy->unreachable();
	EXPECT_EQ(bytes_at(reinterpret_cast<void *>(lib.add)), original);

	// Base released (unreachable(): unmapped): refused, naming the release.
	const uintptr_t base_text = base_patch->text_range().start;
	base->unreachable();
	EXPECT_FALSE(mapped(base_text));
	r = top->apply();
	ASSERT_FALSE(r.ok());
	EXPECT_NE(r.error().message.find("released"), std::string::npos) << r.error().message;
	EXPECT_EQ(bytes_at(reinterpret_cast<void *>(lib.add)), original) << "nothing written";
	EXPECT_EQ(lib.add(1, 2), 3);
	top->unreachable();
}

// Wait-free mode through the runtime on simulated views: the patcher "migrates" and calls
// apply(), workers migrate at their points, the old view is retired; then a wait-free revert.
// The simulation has one real address space, so this checks the loader's change in the
// runtime's wait-free state machine, not the isolation between views (that needs the views
// kernel: the guest tests).
TEST(Loader, RuntimeWaitFreeModeOnSimulatedViews)
{
	LibC lib;
	auto views = std::make_shared<atlas_test::FakeViewState>();
	atlas::RuntimeOptions options;
	options.views = std::make_unique<atlas_test::FakeViews>(views);
	auto rt = atlas::Runtime::create(std::move(options));
	ASSERT_TRUE(rt);
	atlas_test::exempt_existing_threads(*rt);

	constexpr int n = 3;
	std::atomic<bool> stop{false};
	std::atomic<int> bad{0}, registered{0};
	std::vector<std::thread> workers;
	for (int i = 0; i < n; i++)
		workers.push_back(atlas_test::spawn(views, [&] {
			if (!rt->register_current_thread("loader-wf"))
				bad++;
			registered++;
			while (!stop.load()) {
				atlas::quiescence_point();
				int v = lib.call_add(1, 2);
				if (v != 3 && v != 103)
					bad++;
			}
		}));
	while (registered.load() < n)
		std::this_thread::yield();

	auto change = must_load("lib_fix");
	ASSERT_TRUE(change);
	atlas::Request req;
	req.mode = atlas::Mode::wait_free;
	req.deadline = std::chrono::milliseconds(20000);
	auto rep = rt->apply(change, req);
	EXPECT_EQ(rep.outcome, atlas::Outcome::finished) << rep.message;
	EXPECT_EQ(lib.call_add(1, 2), 103);
	auto rev = rt->revert(change->identity(), req);
	EXPECT_EQ(rev.outcome, atlas::Outcome::finished) << rev.message;
	EXPECT_EQ(lib.call_add(1, 2), 3);
	stop = true;
	for (auto &w : workers)
		w.join();
	EXPECT_EQ(bad.load(), 0);
}

// Simulated views whose text differs per view at a patch's redirect sites, as on the views
// kernel: this process has one address space, so the bytes there are those of the view the
// observer (the patcher thread) is in, saved and restored whenever it migrates; a created
// view starts as a copy of the observer's. Other threads' migrations are bookkeeping only:
// they must not call the patched functions.
class TextViews final : public atlas::ViewOps
{
public:
	TextViews(std::shared_ptr<atlas_test::FakeViewState> state, std::vector<uint64_t> sites,
	          pid_t observer)
	    : state_(std::move(state)), sites_(std::move(sites)), observer_(observer)
	{
	}
	atlas::ViewResult create() override
	{
		atlas::ViewResult r = state_->create();
		if (r.ok() && gettid() == observer_)
			copies_[r.value] = read_sites();
		return r;
	}
	atlas::ViewResult remove(atlas::ViewId id) override
	{
		atlas::ViewResult r = state_->remove(id);
		if (r.ok() && gettid() == observer_)
			copies_.erase(id);
		return r;
	}
	atlas::ViewResult migrate(atlas::ViewId id) override
	{
		if (gettid() != observer_)
			return state_->migrate(id);
		const long from = state_->current_of_caller();
		atlas::ViewResult r = state_->migrate(id);
		if (r.ok() && id != from) {
			copies_[from] = read_sites();
			if (auto it = copies_.find(id); it != copies_.end())
				write_sites(it->second);
		}
		return r;
	}
	atlas::ViewResult current() override
	{
		return state_->current();
	}
	atlas::ViewResult switch_base() override
	{
		return state_->switch_base();
	}

private:
	using Bytes = std::vector<std::array<uint8_t, 5>>;
	Bytes read_sites() const
	{
		Bytes b(sites_.size());
		for (size_t i = 0; i < sites_.size(); i++)
			std::memcpy(b[i].data(), reinterpret_cast<const void *>(sites_[i]), 5);
		return b;
	}
	void write_sites(const Bytes &b) const
	{
		int fd = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
		EXPECT_GE(fd, 0) << strerror(errno);
		for (size_t i = 0; fd >= 0 && i < sites_.size(); i++)
			EXPECT_EQ(pwrite(fd, b[i].data(), 5, off_t(sites_[i])), 5)
			    << strerror(errno);
		if (fd >= 0)
			close(fd);
	}
	std::shared_ptr<atlas_test::FakeViewState> state_;
	std::vector<uint64_t> sites_;
	pid_t observer_;
	std::map<long, Bytes> copies_; // only the observer's calls touch it
};

// A wait-free revert undone by revert_pending(): revert() ran in the transition's new view,
// which is deleted; the base view still runs the patch, so it is still applied and a later
// revert must work (it used to fail with "not applied": the loader trusted a flag that the
// undone revert() had cleared).
TEST(Loader, RevertUndoneByRevertPendingStaysApplied)
{
	LibC lib;
	auto change = must_load("lib_fix");
	ASSERT_TRUE(change);
	auto loaded = std::dynamic_pointer_cast<LoadedPatch>(change);
	ASSERT_TRUE(loaded);
	const uintptr_t text = loaded->text_range().start;
	auto views = std::make_shared<atlas_test::FakeViewState>();
	atlas::RuntimeOptions options;
	options.views = std::make_unique<TextViews>(views, loaded->redirect_sites(), gettid());
	auto rt = atlas::Runtime::create(std::move(options));
	ASSERT_TRUE(rt);
	atlas_test::exempt_existing_threads(*rt);

	// One worker, which stops taking quiescence points while `hold` is set.
	std::atomic<bool> stop{false}, hold{false}, holding{false}, registered{false};
	std::thread worker = atlas_test::spawn(views, [&] {
		EXPECT_TRUE(rt->register_current_thread("loader-held"));
		registered = true;
		while (!stop.load()) {
			holding = hold.load();
			if (holding)
				std::this_thread::sleep_for(std::chrono::milliseconds(1));
			else
				atlas::quiescence_point();
		}
	});
	ASSERT_TRUE(atlas_test::eventually([&] { return registered.load(); }));

	atlas::Request req;
	req.mode = atlas::Mode::wait_free;
	req.deadline = std::chrono::milliseconds(10000);
	auto rep = rt->apply(change, req);
	ASSERT_EQ(rep.outcome, atlas::Outcome::finished) << rep.message;
	EXPECT_EQ(lib.add(1, 2), 103);

	hold = true;
	ASSERT_TRUE(atlas_test::eventually([&] { return holding.load(); }));
	atlas::Request quick = req;
	quick.deadline = std::chrono::milliseconds(200);
	auto rev = rt->revert(change->identity(), quick);
	ASSERT_EQ(rev.outcome, atlas::Outcome::pending) << rev.message;
	EXPECT_EQ(lib.add(1, 2), 3) << "the patcher is in the new view, reverted there";
	auto back = rt->revert_pending(std::chrono::milliseconds(10000));
	ASSERT_EQ(back.outcome, atlas::Outcome::reverted) << back.message;
	EXPECT_EQ(lib.add(1, 2), 103) << "back in the base view, which runs the patch";
	auto applied = rt->status().applied;
	ASSERT_EQ(applied.size(), 1u);
	EXPECT_EQ(applied[0].identity, change->identity());
	EXPECT_TRUE(mapped(text));

	hold = false;
	auto again = rt->revert(change->identity(), req);
	EXPECT_EQ(again.outcome, atlas::Outcome::finished) << again.message;
	EXPECT_EQ(lib.add(1, 2), 3);
	EXPECT_TRUE(rt->status().applied.empty());
	EXPECT_FALSE(mapped(text)) << "reverted everywhere: unmapped";
	stop = true;
	worker.join();
}

} // namespace

namespace
{

// .fini_array (docs/patch-format.md, sec. 7.5): run when the patch becomes unreachable, before
// its text is unmapped (the destructor runs from that text), once, after the constructor ran
// at load; applying and reverting run neither.
TEST(Loader, FiniArrayRunsBeforeTheTextIsUnmapped)
{
	LibC lib;
	const int start = *lib.counter;
	auto change = must_load("lib_fini");
	ASSERT_TRUE(change);
	EXPECT_EQ(*lib.counter, start + 1000) << ".init_array ran at load";
	auto loaded = std::dynamic_pointer_cast<LoadedPatch>(change);
	ASSERT_TRUE(change->apply());
	EXPECT_EQ(lib.add(1, 2), 303);
	ASSERT_TRUE(change->revert());
	EXPECT_EQ(lib.add(1, 2), 3);
	EXPECT_EQ(*lib.counter, start + 1000) << "no destructor while the patch is loaded";
	const uintptr_t text = loaded->text_range().start;
	change->unreachable();
	EXPECT_EQ(*lib.counter, start + 1001) << ".fini_array ran in unreachable()";
	EXPECT_FALSE(mapped(text));
	change->unreachable();
	EXPECT_EQ(*lib.counter, start + 1001) << "and only once";
}

// The preload's stack check through a patched function (libunwind's dynamic registration of
// the patch's frames, preload::register_frames): a thread blocked in a wrapped call below the
// patched cxx_visit records its registers on entry, as the preload's wrappers do; the patcher's
// check finds the patch's text and, above it, the library caller, and lets a change of
// unrelated functions through (a stack that stopped at the patch's frame would be refused).
std::atomic<int> blocked_phase{0};
atlas::preload::BlockedStacks *blocked_stacks;
pid_t blocked_tid;

int blocking_callback(int x)
{
	atlas::preload::BlockedStack *stack = blocked_stacks->add(blocked_tid);
	stack->enter(); // what a wrapper does before blocking
	blocked_phase = 1;
	while (blocked_phase.load() != 2) // "blocked in the call"
		std::this_thread::sleep_for(std::chrono::milliseconds(1));
	stack->leave();
	return x;
}

AddressRange symbol_range(void *h, const char *name)
{
	void *p = dlsym(h, name);
	Dl_info info{};
	void *entry = nullptr;
	if (!p || !dladdr1(p, &info, &entry, RTLD_DL_SYMENT) || !entry)
		return {};
	const auto *s = static_cast<const ElfW(Sym) *>(entry);
	return {uintptr_t(p), uintptr_t(p) + s->st_size, {}};
}

TEST(Loader, StackCheckUnwindsThroughRegisteredPatchFrames)
{
	std::string why;
	if (!atlas::preload::init_unwinder(&why))
		GTEST_SKIP() << why;
	void *h = open_lib("libloadcxx.so");
	auto outer = sym<int (*)(int (*)(int), int)>(h, "cxx_visit_outer");
	const AddressRange outer_range = symbol_range(h, "cxx_visit_outer");
	const AddressRange unrelated = symbol_range(h, "cxx_lambda");
	ASSERT_GT(outer_range.end, outer_range.start);
	ASSERT_GT(unrelated.end, unrelated.start);

	auto change = must_load("cxx_fix");
	ASSERT_TRUE(change);
	auto loaded = std::dynamic_pointer_cast<LoadedPatch>(change);
	auto t = loaded->unwind_table();
	void *frames = atlas::preload::register_frames(
	    {t.start_ip, t.end_ip, t.segbase, t.table_data, t.table_len}, &why);
	ASSERT_NE(frames, nullptr) << why;
	ASSERT_TRUE(change->apply());

	atlas::preload::BlockedStacks stacks;
	blocked_stacks = &stacks;
	blocked_phase = 0;
	int result = 0;
	std::thread blocked([&] {
		blocked_tid = gettid();
		result = outer(blocking_callback, 5);
	});
	while (blocked_phase.load() != 1)
		std::this_thread::sleep_for(std::chrono::milliseconds(1));
	const pid_t tid = blocked_tid;
	const AddressRange text = loaded->text_range();
	// The patch's own text (reverting it must wait) ...
	std::string r = stacks.check(tid, {text});
	EXPECT_NE(r.find("stack holds a function the change replaces"), std::string::npos) << r;
	// ... the library function above the patch's frame (reached only through it) ...
	r = stacks.check(tid, {outer_range});
	EXPECT_NE(r.find("stack holds a function the change replaces"), std::string::npos) << r;
	// ... and a change elsewhere is not refused: the stack was unwound to its end.
	r = stacks.check(tid, {unrelated});
	EXPECT_EQ(r, "") << r;

	blocked_phase = 2;
	blocked.join();
	stacks.remove(tid);
	EXPECT_EQ(result, 21); // (5 + 2) * 3: the patched cxx_visit ran
	ASSERT_TRUE(change->revert());
	atlas::preload::cancel_frames(frames);
	change->unreachable();
}

} // namespace
