// SPDX-License-Identifier: MIT
// atlas build-patch end to end on cxxprog/ (a Makefile-built, multi-threaded C++ program) and
// the diffs in cxxdiffs/: a template member function instantiated in two units, a virtual
// function, a lambda behind std::function, a function an exception is thrown through, a
// function-local static with its guard variable. Each patch is built from cxxprog/ and the
// diff, applied to a running instance of the original program through the preload library
// and the atlas CLI in global mode while three threads call every patched function and check
// each result, reverted, and applied again (not under the sanitizers, which cannot run
// LD_PRELOAD programs).
#include "builder_fixture.hpp"

#include <fstream>

namespace
{

using atlas_bp_test::Names;
using atlas_bp_test::Tool;

struct CxxProgram {
	static constexpr const char *src = ATLAS_BP_CXXPROG;
	static constexpr const char *diffs = ATLAS_BP_CXXDIFFS;
	static constexpr const char *binary = "cxxprog";
};

class BuildPatchCxx : public atlas_bp_test::BuilderFixture<CxxProgram>
{
};

} // namespace

// The refused cases (docs/patch-builder.md, "What is refused, and why") in C++: each names
// the symbol or type and the reason, and no patch is written.
#define EXPECT_CXX_REFUSED(diff, symbol, reason)                                                   \
	do {                                                                                       \
		Tool t = build(diff);                                                              \
		EXPECT_EQ(t.status, 3) << t.out;                                                   \
		EXPECT_EQ(t.json["outcome"], "refused") << t.out;                                  \
		bool named = false;                                                                \
		for (const auto &r : t.json["refusals"])                                           \
			named = named || r["symbol"] == (symbol);                                  \
		EXPECT_TRUE(named) << (symbol) << " not among the refusals: " << t.out;            \
		EXPECT_NE(t.out.find(reason), std::string::npos) << t.out;                         \
		EXPECT_FALSE(std::ifstream(patch_of(diff)).good())                                 \
		    << "a refused patch was written";                                              \
	} while (0)

// A member added to a class the program has objects of (Square, in an anonymous namespace):
// the objects keep the old layout.
TEST_F(BuildPatchCxx, ChangedClassLayoutIsRefusedNamingTheType)
{
	EXPECT_CXX_REFUSED(
	    "cxx_refuse_class_layout", "struct Square",
	    "type 'struct Square' changed its layout (added border; used in shapes.cpp)");
}

// A virtual function added to Square: its vtable gets another entry, which the objects the
// program made before the patch (pointing at the old vtable) do not have. The vtable is
// local to shapes.cpp (an anonymous namespace), read-only data the patch would otherwise
// carry as its own with make_square, its user: refused since the builder knows vtables.
TEST_F(BuildPatchCxx, ChangedVtableLayoutIsRefused)
{
	EXPECT_CXX_REFUSED(
	    "cxx_refuse_vtable", "_ZTVN12_GLOBAL__N_16SquareE",
	    "vtable for (anonymous namespace)::Square ('_ZTVN12_GLOBAL__N_16SquareE') "
	    "changed: its size changed from 40 to 48 bytes");
}

TEST_F(BuildPatchCxx, NewThreadLocalIsRefused)
{
	EXPECT_CXX_REFUSED("cxx_refuse_new_thread_local", "levels_parsed",
	                   "'levels_parsed' is a new thread-local variable");
}

TEST_F(BuildPatchCxx, ChangedThreadLocalIsRefused)
{
	EXPECT_CXX_REFUSED("cxx_refuse_changed_thread_local", "thread_calls",
	                   "thread-local variable 'thread_calls'");
}

// std::atomic<int> sessions{0} -> {100}: the program's instance keeps its value.
TEST_F(BuildPatchCxx, ChangedInitialValueOfExistingDataIsRefused)
{
	EXPECT_CXX_REFUSED("cxx_refuse_initial_value", "_ZN12_GLOBAL__N_18sessionsE",
	                   "its initial value changed");
}

#ifdef ATLAS_BP_APPLY

namespace
{

// The state line: "state <Accumulator<int>{40}.add(2)> <total_area(square 3, 1)>
// <make_scaler()(5)> <level(7)> <session_id()>".
constexpr const char *original_state = "state 42 10 10 7 1";

} // namespace

// Builds `diff`, checks the redirects, then the state before, after apply, after revert and
// after the second apply; a worker thread that saw a result neither the original's nor the
// fix's would have printed "error ..." in between, and "bye" would not be its last line.
#define EXPECT_CXX_PATCHED(diff, expected_redirects, after)                                        \
	EXPECT_BP_PATCHED(original_state, diff, expected_redirects, after,                         \
	                  EXPECT_EQ(r.next(200), "");                                              \
	                  EXPECT_EQ(r.stop(), "bye");)

// Accumulator<int>::add, defined in the header, is instantiated in main.cpp and shapes.cpp
// (one COMDAT group each): one redirect, the second unit's copy kept private.
TEST_F(BuildPatchCxx, AppliedTemplateMemberFunctionInTwoUnits)
{
	EXPECT_CXX_PATCHED("cxx_template", Names{"_ZNK11AccumulatorIiE3addEi"},
	                   "state 43 11 10 7 1");
}

// Square::area, a virtual function (the vtable keeps pointing at the original entry, which
// jumps to the patch); gcc also inlined it speculatively into total_area, which comes along.
TEST_F(BuildPatchCxx, AppliedVirtualFunction)
{
	EXPECT_CXX_PATCHED("cxx_virtual",
	                   (Names{"_ZNK12_GLOBAL__N_16Square4areaEv", "_Z10total_areaRK5Shapei"}),
	                   "state 42 11 10 7 1");
}

// The lambda make_scaler() returns lives in std::function's invoker, which is patched.
TEST_F(BuildPatchCxx, AppliedLambdaBehindStdFunction)
{
	EXPECT_CXX_PATCHED("cxx_lambda",
	                   Names{"_ZNSt17_Function_handlerIFiiEZ11make_scalervEUliE_E9_M_"
	                         "invokeERKSt9_Any_dataOi"},
	                   "state 42 10 15 7 1");
}

// The patched parse_level throws: the exception unwinds through the patch's code (its FDE is
// in the patch) to the original caller's handler.
TEST_F(BuildPatchCxx, AppliedFunctionAnExceptionIsThrownThrough)
{
	EXPECT_CXX_PATCHED("cxx_exception", Names{"_Z11parse_leveli"},
	                   "state 42 10 10 caught:level 7 above 5 1");
}

// session_id()'s `static Session s` and its guard variable are the program's: the patched
// code sees the session constructed before the patch (id 1, so 101), never constructs a
// second one (which would have id 2, so 102).
TEST_F(BuildPatchCxx, AppliedFunctionLocalStaticWithItsGuardBoundToTheProgramsInstance)
{
	Tool first = build("cxx_static_guard");
	ASSERT_EQ(first.status, 0) << first.out;
	Names refs;
	for (const auto &r : first.json["references"])
		refs.insert(r["symbol"].get<std::string>());
	EXPECT_TRUE(refs.count("work.cpp:_ZZ10session_idvE1s")) << first.out;
	EXPECT_TRUE(refs.count("work.cpp:_ZGVZ10session_idvE1s")) << first.out;
	EXPECT_CXX_PATCHED("cxx_static_guard", Names{"_Z10session_idv"}, "state 42 10 10 7 101");
}

#endif
