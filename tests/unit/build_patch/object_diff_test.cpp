// SPDX-License-Identifier: MIT
// The object diff and the patch assembly on objects gcc compiles at test time with the flags
// of a patchable program.
#include "elf_object.hpp"
#include "object_diff.hpp"
#include "patch_assembly.hpp"
#include "process.hpp"
#include "symbol_resolution.hpp"
#include "type_layouts.hpp"

#include "atlas/patch/format.hpp"
#include "atlas/patch/patch.hpp"
#include "atlas/patch/writer.hpp"

#include <algorithm>
#include <cstdlib>
#include <elf.h>
#include <fstream>
#include <gtest/gtest.h>
#include <set>
#include <unistd.h>

using namespace atlas::build_patch;

namespace
{

class ObjectDiffTest : public ::testing::Test
{
protected:
	void SetUp() override
	{
		char tmpl[] = "/tmp/atlas-bp-diff-XXXXXX";
		ASSERT_NE(mkdtemp(tmpl), nullptr);
		dir_ = tmpl;
	}
	void TearDown() override
	{
		std::system(("rm -rf " + dir_).c_str());
	}

	// Compiles `code` as <name>.c with the flags of a patchable program (plus `extra`).
	ObjectFile compile(const std::string &name, const std::string &code,
	                   std::vector<std::string> extra = {})
	{
		const std::string src = dir_ + "/" + name + ".c", obj = dir_ + "/" + name + ".o";
		std::ofstream(src) << code;
		std::vector<std::string> argv = {"gcc", "-c", "-O2", "-fPIE"};
		if (extra.empty())
			extra = {"-ffunction-sections", "-fdata-sections",
			         "-flive-patching=inline-clone"};
		argv.insert(argv.end(), extra.begin(), extra.end());
		argv.insert(argv.end(), {"-o", obj, src});
		auto st = run_process(argv, {});
		EXPECT_TRUE(st.ok() && *st == 0) << "gcc failed on " << name;
		auto o = ObjectFile::read(obj);
		EXPECT_TRUE(o.ok()) << (o.ok() ? "" : o.error().message);
		return o.ok() ? std::move(*o) : ObjectFile{};
	}

	static std::set<std::string> included(const ObjectFile &p, const ObjectDiff &d)
	{
		std::set<std::string> out;
		for (const IncludedFunction &f : d.functions)
			out.insert(p.symbols()[f.symbol].name);
		return out;
	}

	static std::string refusals(const ObjectDiff &d)
	{
		std::string s;
		for (const Refusal &r : d.refusals)
			s += r.symbol + ": " + r.reason + "\n";
		return s;
	}

	std::string dir_;
};

using Names = std::set<std::string>;

} // namespace

TEST_F(ObjectDiffTest, IdenticalObjectsHaveNoChange)
{
	const char *code = "int g = 3; static int h(int x) { return x * g; }\n"
	                   "int f(int x) { return h(x) + 1; }\n";
	ObjectFile o = compile("o", code), p = compile("p", code);
	ObjectDiff d = diff_objects(o, p);
	EXPECT_TRUE(d.empty()) << refusals(d);
}

TEST_F(ObjectDiffTest, StringLiteralsAreComparedByContent)
{
	const char *o_code = "const char *one(void) { return \"one\"; }\n"
	                     "const char *two(void) { return \"two\"; }\n";
	const char *p_code = "const char *one(void) { return \"uno, longer\"; }\n"
	                     "const char *two(void) { return \"two\"; }\n";
	ObjectFile o = compile("o", o_code), p = compile("p", p_code);
	ObjectDiff d = diff_objects(o, p);
	EXPECT_EQ(included(p, d), Names{"one"});
	EXPECT_TRUE(d.refusals.empty()) << refusals(d);
}

// gcc numbers function-local statics in order (`uses.0`, `uses.1`): a new one before them
// renumbers the others, which must still match their own function's.
TEST_F(ObjectDiffTest, RenumberedLocalStaticsMatchTheirFunctions)
{
	const char *o_code = "int f(void) { static int uses; return ++uses; }\n"
	                     "int g(void) { static int uses; return uses += 2; }\n";
	const char *p_code = "int e(void) { static int uses; return uses += 5; }\n"
	                     "int f(void) { static int uses; return ++uses; }\n"
	                     "int g(void) { static int uses; return uses += 2; }\n";
	ObjectFile o = compile("o", o_code), p = compile("p", p_code);
	ObjectDiff d = diff_objects(o, p);
	EXPECT_EQ(included(p, d), Names{"e"});
	ASSERT_EQ(d.own_data.size(), 1u); // e's new static
	EXPECT_TRUE(d.refusals.empty()) << refusals(d);
}

TEST_F(ObjectDiffTest, ChangedInitialValueIsRefusedByName)
{
	ObjectFile o = compile("o", "int limit = 10; int f(void) { return limit; }\n");
	ObjectFile p = compile("p", "int limit = 20; int f(void) { return limit; }\n");
	ObjectDiff d = diff_objects(o, p);
	ASSERT_EQ(d.refusals.size(), 1u);
	EXPECT_EQ(d.refusals[0].symbol, "limit");
	EXPECT_NE(d.refusals[0].reason.find("initial value changed"), std::string::npos);
}

TEST_F(ObjectDiffTest, ChangedSizeIsRefusedByName)
{
	ObjectFile o = compile("o", "int buf[4]; int f(int i) { return buf[i]; }\n");
	ObjectFile p = compile("p", "int buf[8]; int f(int i) { return buf[i]; }\n");
	ObjectDiff d = diff_objects(o, p);
	ASSERT_EQ(d.refusals.size(), 1u) << refusals(d);
	EXPECT_EQ(d.refusals[0].symbol, "buf");
	EXPECT_NE(d.refusals[0].reason.find("size changed from 16 to 32 bytes"), std::string::npos)
	    << d.refusals[0].reason;
}

TEST_F(ObjectDiffTest, NewThreadLocalIsRefused)
{
	ObjectFile o = compile("o", "int f(void) { return 1; }\n");
	ObjectFile p =
	    compile("p", "__thread int tls_count; int f(void) { return ++tls_count; }\n");
	ObjectDiff d = diff_objects(o, p);
	ASSERT_EQ(d.refusals.size(), 1u) << refusals(d);
	EXPECT_EQ(d.refusals[0].symbol, "tls_count");
	EXPECT_NE(d.refusals[0].reason.find("new thread-local"), std::string::npos);
}

TEST_F(ObjectDiffTest, ChangedThreadLocalIsRefused)
{
	ObjectFile o = compile("o", "__thread int depth = 1; int f(void) { return depth; }\n");
	ObjectFile p = compile("p", "__thread int depth = 2; int f(void) { return depth; }\n");
	ObjectDiff d = diff_objects(o, p);
	ASSERT_EQ(d.refusals.size(), 1u) << refusals(d);
	EXPECT_EQ(d.refusals[0].symbol, "depth");
	EXPECT_NE(d.refusals[0].reason.find("thread-local"), std::string::npos);
}

TEST_F(ObjectDiffTest, ReadOnlyGlobalChangeIsRefused)
{
	ObjectFile o = compile("o", "const int primes[4] = {2, 3, 5, 7};\n"
	                            "int f(int i) { return primes[i & 3]; }\n");
	ObjectFile p = compile("p", "const int primes[4] = {2, 3, 5, 11};\n"
	                            "int f(int i) { return primes[i & 3]; }\n");
	ObjectDiff d = diff_objects(o, p);
	ASSERT_EQ(d.refusals.size(), 1u) << refusals(d);
	EXPECT_EQ(d.refusals[0].symbol, "primes");
}

// A local read-only table is the patch's own copy, with every function that reads it.
TEST_F(ObjectDiffTest, ReadOnlyLocalChangePullsItsUsers)
{
	const char *o_code = "static const int primes[4] = {2, 3, 5, 7};\n"
	                     "int f(int i) { return primes[i & 3]; }\n"
	                     "int g(int i) { return primes[(i + 1) & 3] * 2; }\n"
	                     "int h(int i) { return i; }\n";
	std::string p_code = o_code;
	p_code.replace(p_code.find("7}"), 2, "11}");
	ObjectFile o = compile("o", o_code), p = compile("p", p_code);
	ObjectDiff d = diff_objects(o, p);
	EXPECT_TRUE(d.refusals.empty()) << refusals(d);
	EXPECT_EQ(included(p, d), (Names{"f", "g"}));
	for (const IncludedFunction &f : d.functions)
		EXPECT_EQ(f.why, Why::uses_changed_data);
	ASSERT_EQ(d.own_data.size(), 1u);
	EXPECT_EQ(p.symbols()[d.own_data[0]].name, "primes");
}

// A new static constructor (C++: a global with a dynamic initialiser) would never run.
TEST_F(ObjectDiffTest, NewStaticConstructorIsRefused)
{
	ObjectFile o = compile("o", "int level; int f(void) { return level; }\n");
	ObjectFile p =
	    compile("p", "int level;\n"
	                 "__attribute__((constructor)) static void init(void) { level = 5; }\n"
	                 "int f(void) { return level; }\n");
	ObjectDiff d = diff_objects(o, p);
	ASSERT_EQ(d.refusals.size(), 1u) << refusals(d);
	EXPECT_EQ(d.refusals[0].symbol, "init");
	EXPECT_NE(d.refusals[0].reason.find(".init_array"), std::string::npos) << refusals(d);
}

TEST_F(ObjectDiffTest, WithoutFunctionSectionsIsRefused)
{
	const char *code = "int f(int x) { return x + 1; }\nint g(int x) { return x * 2; }\n";
	ObjectFile o = compile("o", code, {"-fno-function-sections"});
	ObjectFile p = compile("p", code, {"-fno-function-sections"});
	ObjectDiff d = diff_objects(o, p);
	ASSERT_FALSE(d.refusals.empty());
	EXPECT_NE(d.refusals[0].reason.find("-ffunction-sections"), std::string::npos)
	    << refusals(d);
}

// A struct whose members move while the variable keeps its size and (zero) initial value:
// the bytes do not show it, the DWARF types do.
TEST_F(ObjectDiffTest, ChangedStructLayoutIsFoundInTheTypes)
{
	const std::vector<std::string> flags = {"-g", "-ffunction-sections", "-fdata-sections",
	                                        "-flive-patching=inline-clone"};
	const char *o_code = "typedef struct { char *buf; int used; } client_t;\n"
	                     "struct module { int id; client_t c; };\n"
	                     "static struct module active;\n"
	                     "struct conn { int fd; long pad; };\n"
	                     "int f(void) { return active.c.used + active.id; }\n";
	const char *p_code = "typedef struct { int used; char *buf; } client_t;\n"
	                     "struct module { int id; client_t c; };\n"
	                     "static struct module active;\n"
	                     "struct conn { int fd; long pad; };\n"
	                     "int f(void) { return active.c.used + active.id + 1; }\n";
	compile("o", o_code, flags);
	compile("p", p_code, flags);
	auto a = read_type_layouts(dir_ + "/o.o");
	auto b = read_type_layouts(dir_ + "/p.o");
	ASSERT_TRUE(a.ok() && b.ok());
	EXPECT_TRUE(a->types.count("struct module"));
	EXPECT_TRUE(a->types.count("client_t")); // the typedef names the anonymous struct
	auto changes = changed_layouts(*a, *b);
	ASSERT_EQ(changes.size(), 1u);
	EXPECT_EQ(changes[0].type, "client_t");
	EXPECT_EQ(changes[0].detail, "2 member(s) moved");
	// Held inside struct module by the static `active`.
	EXPECT_EQ(changes[0].variables, std::vector<std::string>{"active"});
	// Without DWARF there is nothing to compare (the builder warns).
	compile("nodebug", o_code);
	auto none = read_type_layouts(dir_ + "/nodebug.o");
	ASSERT_TRUE(none.ok());
	EXPECT_TRUE(none->types.empty());
}

// The assembled object: replacements global, the program's statics by reference records,
// the string literal carried, only the FDE of the function carried; build_patch accepts it.
TEST_F(ObjectDiffTest, AssembledPatchReferencesTheProgramsLocals)
{
	const char *o_code =
	    "static int calls;\n"
	    "__attribute__((noinline)) static int helper(int x) { return x * 3; }\n"
	    "const char *name(int x) { calls++; return helper(x) > 3 ? \"big\" : "
	    "\"small\"; }\n"
	    "int other(int x) { return helper(x) + 1; }\n";
	std::string p_code = o_code;
	p_code.replace(p_code.find("\"small\""), 7, "\"tiny\"");
	ObjectFile o = compile("o", o_code), p = compile("p", p_code);
	ObjectDiff d = diff_objects(o, p);
	ASSERT_EQ(included(p, d), Names{"name"});
	UnitDiff u{&o, &p, &d};
	auto a = assemble_patch({u}, "test.patch");
	ASSERT_TRUE(a.ok()) << a.error().message;
	ASSERT_EQ(a->redirects.size(), 1u);
	EXPECT_EQ(a->redirects[0].target_name, "name");
	EXPECT_EQ(a->redirects[0].replacement, "name");
	EXPECT_EQ(a->redirects[0].file, ""); // global
	std::set<std::string> refs;
	for (const PlannedReference &r : a->references) {
		refs.insert(r.target_name);
		EXPECT_EQ(r.file, "o.c");
		EXPECT_EQ(r.patch_symbol, "o.c:" + r.target_name);
	}
	EXPECT_EQ(refs, (std::set<std::string>{"calls", "helper"}));
	EXPECT_EQ(a->fdes, 1u);

	atlas::patch::Metadata md;
	md.name = "test";
	md.target_path = "/nowhere/prog";
	md.target_build_id = {1, 2, 3, 4};
	md.redirects.push_back({{"name", "", std::nullopt, std::nullopt}, "name"});
	for (const PlannedReference &r : a->references)
		md.references.push_back({r.patch_symbol, "", {r.target_name, r.file, {}, {}}});
	auto bytes = atlas::patch::build_patch(a->object, md);
	ASSERT_TRUE(bytes.ok()) << bytes.error().message;
	auto parsed = atlas::patch::parse_patch(*bytes);
	ASSERT_TRUE(parsed.ok()) << parsed.error().message;
	bool has_string = false;
	for (const auto &s : parsed->sections) {
		std::string content(s.bytes.begin(), s.bytes.end());
		has_string = has_string || content.find("tiny") != std::string::npos;
		EXPECT_EQ(content.find("small"), std::string::npos) << s.name;
	}
	EXPECT_TRUE(has_string);
}

// A global of hidden visibility is local in the linked program: the patch names it through a
// reference record, not by the global lookup that would miss it.
TEST_F(ObjectDiffTest, HiddenGlobalsAreReferencedByRecord)
{
	const char *o_code = "extern int hid __attribute__((visibility(\"hidden\")));\n"
	                     "int f(void) { return hid + 1; }\n";
	std::string p_code = o_code;
	p_code.replace(p_code.find("+ 1"), 3, "+ 2");
	ObjectFile o = compile("o", o_code), p = compile("p", p_code);
	ObjectDiff d = diff_objects(o, p);
	auto a = assemble_patch({UnitDiff{&o, &p, &d}}, "test.patch");
	ASSERT_TRUE(a.ok()) << a.error().message;
	ASSERT_EQ(a->references.size(), 1u);
	EXPECT_EQ(a->references[0].patch_symbol, "hidden:hid");
	EXPECT_EQ(a->references[0].target_name, "hid");
	EXPECT_EQ(a->references[0].file, "");
}

// Two units built from a/util.c and b/util.c: gcc records "util.c" for both, so name and file
// leave two candidates; the unit whose other locals match the object's is the one.
TEST_F(ObjectDiffTest, SameBaseNameUnitsToldApartByTheirLocals)
{
	ObjectFile o = compile("util", "__attribute__((noinline)) static int only_b(int x) "
	                               "{ return x * 7; }\n"
	                               "__attribute__((noinline)) static int helper(int x) "
	                               "{ return only_b(x) + 1; }\n"
	                               "int api_b(int x) { return helper(x); }\n");
	ASSERT_EQ(o.source_name(), "util.c");
	uint32_t helper = 0;
	for (uint32_t i = 0; i < o.symbols().size(); i++)
		if (o.symbols()[i].name == "helper")
			helper = i;
	ASSERT_NE(helper, 0u);
	using atlas::patch::TargetSymbol;
	auto sym = [](uint32_t index, std::string name, uint8_t type, uint8_t bind) {
		TargetSymbol t;
		t.index = index;
		t.name = std::move(name);
		t.type = type;
		t.bind = bind;
		t.file = type != STT_FILE && bind == STB_LOCAL ? "util.c" : "";
		t.section = type == STT_FILE ? SHN_ABS : 14;
		t.value = 0x1000 + index * 16;
		t.size = 16;
		return t;
	};
	atlas::patch::TargetSymbols t;
	t.symbols = {TargetSymbol{},
	             sym(1, "util.c", STT_FILE, STB_LOCAL),
	             sym(2, "helper", STT_FUNC, STB_LOCAL),
	             sym(3, "only_a", STT_FUNC, STB_LOCAL),
	             sym(4, "util.c", STT_FILE, STB_LOCAL),
	             sym(5, "helper", STT_FUNC, STB_LOCAL),
	             sym(6, "only_b", STT_FUNC, STB_LOCAL),
	             sym(7, "api_b", STT_FUNC, STB_GLOBAL)};
	auto by_name = atlas::patch::resolve_symbol(t, {"helper", "util.c", {}, {}},
	                                            atlas::patch::SymbolKind::any);
	ASSERT_FALSE(by_name.ok());
	auto r = resolve_in_target(t, o, helper, atlas::patch::SymbolKind::function);
	ASSERT_TRUE(r.ok()) << r.error().message;
	EXPECT_EQ((*r)->index, 5u);
}

// In position-independent code gcc gives a global function a local alias (`f.localalias`)
// for calls within the unit: the global name is the one redirected, and calls through the
// alias from patched code still go through the replacement.
TEST_F(ObjectDiffTest, LocalAliasesNameTheirGlobalFunction)
{
	const std::vector<std::string> flags = {"-fPIC", "-fno-semantic-interposition",
	                                        "-ffunction-sections", "-fdata-sections",
	                                        "-flive-patching=inline-clone"};
	const char *o_code = "__attribute__((noinline)) int f(int x) { return x * 3; }\n"
	                     "int g(int x) { return f(x) + 1; }\n";
	const char *p_code = "__attribute__((noinline)) int f(int x) { return x * 5; }\n"
	                     "int g(int x) { return f(x) + 2; }\n";
	ObjectFile o = compile("o", o_code, flags), p = compile("p", p_code, flags);
	bool has_alias = false;
	for (const ObjSymbol &s : p.symbols())
		has_alias = has_alias || s.name == "f.localalias";
	ASSERT_TRUE(has_alias) << "gcc no longer makes f.localalias: the test needs another way";
	ObjectDiff d = diff_objects(o, p);
	EXPECT_EQ(included(p, d), (Names{"f", "g"}));
	auto a = assemble_patch({UnitDiff{&o, &p, &d}}, "test.patch");
	ASSERT_TRUE(a.ok()) << a.error().message;
	std::set<std::string> redirected;
	for (const PlannedRedirect &r : a->redirects)
		redirected.insert(r.target_name);
	EXPECT_EQ(redirected, (std::set<std::string>{"f", "g"}));
	// g's call of f is a relocation against the symbol f (bound to the original entry by
	// the loader), not against f's section.
	atlas::patch::Metadata md;
	md.name = "test";
	md.target_path = "/nowhere/prog";
	md.target_build_id = {1, 2, 3, 4};
	for (const PlannedRedirect &r : a->redirects)
		md.redirects.push_back({{r.target_name, "", {}, {}}, r.replacement});
	auto bytes = atlas::patch::build_patch(a->object, md);
	ASSERT_TRUE(bytes.ok()) << bytes.error().message;
	auto parsed = atlas::patch::parse_patch(*bytes);
	ASSERT_TRUE(parsed.ok()) << parsed.error().message;
	bool call_through_symbol = false;
	for (const auto &rs : parsed->relocations)
		if (parsed->sections[rs.target].name == ".text.g")
			for (const auto &e : rs.entries)
				call_through_symbol =
				    call_through_symbol || parsed->symbols[e.symbol].name == "f";
	EXPECT_TRUE(call_through_symbol);
}
