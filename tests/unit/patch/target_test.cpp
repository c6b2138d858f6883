// SPDX-License-Identifier: MIT
// Target-side helpers: build-id and symbol tables with duplicate local names.
#include "atlas/patch/target.hpp"

#include "test_util.hpp"

#include <gtest/gtest.h>

namespace atlas::patch
{
namespace
{

using test::ElfBytes;
using test::load;

TEST(Target, BuildId)
{
	auto id = read_build_id(load(ATLAS_TEST_TARGET));
	ASSERT_TRUE(id.ok()) << id.error().message;
	EXPECT_EQ(to_hex(*id), ATLAS_TEST_BUILD_ID);
}

TEST(Target, BuildIdFromProgramHeadersAlone)
{
	// Without section headers only the PT_NOTE segment can give the build-id.
	ElfBytes e(load(ATLAS_TEST_TARGET));
	Elf64_Ehdr h = e.ehdr();
	h.e_shoff = 0;
	h.e_shnum = 0;
	h.e_shstrndx = 0;
	e.set_ehdr(h);
	auto id = read_build_id(e.bytes);
	ASSERT_TRUE(id.ok()) << id.error().message;
	EXPECT_EQ(to_hex(*id), ATLAS_TEST_BUILD_ID);
}

TEST(Target, MissingBuildId)
{
	auto id = read_build_id(load(ATLAS_TEST_NOBUILDID_TARGET));
	ASSERT_FALSE(id.ok());
	EXPECT_EQ(id.error().code, Errc::not_found);
	EXPECT_NE(id.error().message.find("--build-id"), std::string::npos);
}

TEST(Target, RefusesNonTargets)
{
	std::vector<uint8_t> junk(100, 7);
	EXPECT_FALSE(read_build_id(junk).ok());
	EXPECT_FALSE(read_symbols(junk).ok());
	auto patch = load(test::bin("fix_raw.o"));
	auto r = read_symbols(patch);
	ASSERT_FALSE(r.ok());
	EXPECT_NE(r.error().message.find("neither an executable nor a shared object"),
	          std::string::npos);
}

class DupTarget : public ::testing::Test
{
protected:
	void SetUp() override
	{
		auto s = read_symbols(load(ATLAS_TEST_TARGET));
		ASSERT_TRUE(s.ok()) << s.error().message;
		syms = std::move(*s);
	}
	std::vector<const TargetSymbol *> named(const std::string &name)
	{
		std::vector<const TargetSymbol *> out;
		for (const TargetSymbol &s : syms.symbols)
			if (s.name == name)
				out.push_back(&s);
		return out;
	}
	TargetSymbols syms;
};

TEST_F(DupTarget, LocalsAreAttributedToTheirFile)
{
	EXPECT_FALSE(syms.dynamic);
	auto helpers = named("helper");
	ASSERT_EQ(helpers.size(), 2u);
	EXPECT_EQ(helpers[0]->file, "dup_a.c");
	EXPECT_EQ(helpers[1]->file, "dup_b.c");
	EXPECT_NE(helpers[0]->value, helpers[1]->value);
	for (const TargetSymbol *h : helpers) {
		EXPECT_EQ(h->type, STT_FUNC);
		EXPECT_EQ(h->bind, STB_LOCAL);
		EXPECT_EQ(&syms.symbols[h->index], h);
	}
	auto counters = named("counter");
	ASSERT_EQ(counters.size(), 2u);
	EXPECT_EQ(counters[0]->file, "dup_a.c");
	EXPECT_EQ(counters[1]->file, "dup_b.c");
	auto process = named("process");
	ASSERT_EQ(process.size(), 1u);
	EXPECT_EQ(process[0]->file, ""); // globals belong to no file
	EXPECT_EQ(process[0]->bind, STB_GLOBAL);
}

TEST_F(DupTarget, AmbiguousNameListsCandidates)
{
	auto r = resolve_symbol(syms, SymbolRef{"helper", "", {}, {}}, SymbolKind::function);
	ASSERT_FALSE(r.ok());
	EXPECT_EQ(r.error().code, Errc::ambiguous);
	EXPECT_NE(r.error().message.find("'helper' is ambiguous"), std::string::npos);
	EXPECT_NE(r.error().message.find("file dup_a.c"), std::string::npos);
	EXPECT_NE(r.error().message.find("file dup_b.c"), std::string::npos);
}

TEST_F(DupTarget, DisambiguationByFileIndexOrAddress)
{
	auto helpers = named("helper");
	ASSERT_EQ(helpers.size(), 2u);
	for (const TargetSymbol *h : helpers) {
		auto by_file = resolve_symbol(syms, SymbolRef{"helper", h->file, {}, {}},
		                              SymbolKind::function);
		ASSERT_TRUE(by_file.ok()) << by_file.error().message;
		EXPECT_EQ(*by_file, h);
		auto by_index = resolve_symbol(syms, SymbolRef{"helper", "", h->index, {}},
		                               SymbolKind::function);
		ASSERT_TRUE(by_index.ok());
		EXPECT_EQ(*by_index, h);
		auto by_address = resolve_symbol(syms, SymbolRef{"helper", "", {}, h->value},
		                                 SymbolKind::function);
		ASSERT_TRUE(by_address.ok());
		EXPECT_EQ(*by_address, h);
		auto exact = resolve_symbol(syms, exact_ref(*h), SymbolKind::function);
		ASSERT_TRUE(exact.ok());
		EXPECT_EQ(*exact, h);
	}
	// A path ending in the file name matches too.
	auto by_path =
	    resolve_symbol(syms, SymbolRef{"counter", "dup_b.c", {}, {}}, SymbolKind::any);
	ASSERT_TRUE(by_path.ok());
	EXPECT_EQ((*by_path)->file, "dup_b.c");
}

TEST_F(DupTarget, ContradictoryDisambiguationIsNotFound)
{
	auto helpers = named("helper");
	ASSERT_EQ(helpers.size(), 2u);
	// dup_a.c's name with dup_b.c's index
	auto r = resolve_symbol(syms, SymbolRef{"helper", "dup_a.c", helpers[1]->index, {}},
	                        SymbolKind::function);
	ASSERT_FALSE(r.ok());
	EXPECT_EQ(r.error().code, Errc::not_found);
	EXPECT_NE(r.error().message.find("candidates"), std::string::npos);
	r = resolve_symbol(syms, SymbolRef{"helper", "dup_c.c", {}, {}}, SymbolKind::function);
	ASSERT_FALSE(r.ok());
	EXPECT_NE(r.error().message.find("dup_b.c"), std::string::npos); // lists candidates
	// A file for a global symbol selects nothing: globals follow no STT_FILE.
	r = resolve_symbol(syms, SymbolRef{"process", "dup_main.c", {}, {}}, SymbolKind::function);
	EXPECT_FALSE(r.ok());
}

TEST_F(DupTarget, KindAndUnknownNames)
{
	auto r = resolve_symbol(syms, SymbolRef{"no_such_symbol", "", {}, {}}, SymbolKind::any);
	ASSERT_FALSE(r.ok());
	EXPECT_EQ(r.error().code, Errc::not_found);
	EXPECT_NE(r.error().message.find("no symbol named 'no_such_symbol'"), std::string::npos);
	// counter is data: not a function
	r = resolve_symbol(syms, SymbolRef{"counter", "dup_a.c", {}, {}}, SymbolKind::function);
	EXPECT_FALSE(r.ok());
	auto tls = resolve_symbol(syms, SymbolRef{"tls_counter", "", {}, {}}, SymbolKind::any);
	ASSERT_TRUE(tls.ok());
	EXPECT_EQ((*tls)->type, STT_TLS);
	auto process = resolve_symbol(syms, SymbolRef{"process", "", {}, {}}, SymbolKind::function);
	ASSERT_TRUE(process.ok());
	EXPECT_EQ(exact_ref(**process).file, "");
}

// A name that is not in the table: the symbols the user probably meant are named (compiler
// clones, numbered statics, C++ symbols by their demangled name), nothing else.
TEST(Target, UnknownNameListsCloseCandidates)
{
	auto sym = [](std::string name, uint8_t type, uint32_t index) {
		TargetSymbol s;
		s.index = index;
		s.name = std::move(name);
		s.type = type;
		s.bind = STB_LOCAL;
		s.section = 14;
		s.value = 0x1000 + index * 0x10;
		s.size = 0x10;
		return s;
	};
	TargetSymbols t;
	t.symbols = {TargetSymbol{},
	             sym("handle.isra.0", STT_FUNC, 1),
	             sym("handle.cold", STT_FUNC, 2),
	             sym("_ZN2ns6Server6handleEi", STT_FUNC, 3),
	             sym("_ZN2ns3BoxIiE4openEv", STT_FUNC, 4),
	             sym("counter.3", STT_OBJECT, 5),
	             sym("handler", STT_FUNC, 6),
	             sym("unrelated", STT_FUNC, 7)};
	auto r = resolve_symbol(t, SymbolRef{"handle", "", {}, {}}, SymbolKind::function);
	ASSERT_FALSE(r.ok());
	const std::string &m = r.error().message;
	EXPECT_EQ(r.error().code, Errc::not_found);
	EXPECT_NE(m.find("no function named 'handle'; close candidates"), std::string::npos) << m;
	EXPECT_NE(m.find("handle.isra.0"), std::string::npos) << m;
	EXPECT_NE(m.find("handle.cold"), std::string::npos) << m;
	EXPECT_NE(m.find("_ZN2ns6Server6handleEi"), std::string::npos) << m;
	EXPECT_EQ(m.find("handler"), std::string::npos) << m;
	EXPECT_EQ(m.find("unrelated"), std::string::npos) << m;
	// A qualified C++ name, a template, a renumbered clone, a function-local static.
	r = resolve_symbol(t, SymbolRef{"ns::Server::handle", "", {}, {}}, SymbolKind::function);
	ASSERT_FALSE(r.ok());
	EXPECT_NE(r.error().message.find("_ZN2ns6Server6handleEi"), std::string::npos);
	EXPECT_EQ(r.error().message.find("handle.isra.0"), std::string::npos);
	r = resolve_symbol(t, SymbolRef{"open", "", {}, {}}, SymbolKind::function);
	ASSERT_FALSE(r.ok());
	EXPECT_NE(r.error().message.find("_ZN2ns3BoxIiE4openEv"), std::string::npos);
	r = resolve_symbol(t, SymbolRef{"handle.isra.1", "", {}, {}}, SymbolKind::function);
	ASSERT_FALSE(r.ok());
	EXPECT_NE(r.error().message.find("handle.isra.0"), std::string::npos);
	r = resolve_symbol(t, SymbolRef{"counter", "", {}, {}}, SymbolKind::any);
	ASSERT_FALSE(r.ok());
	EXPECT_NE(r.error().message.find("counter.3"), std::string::npos);
	// Nothing close: the plain message.
	r = resolve_symbol(t, SymbolRef{"nothing_like_it", "", {}, {}}, SymbolKind::function);
	ASSERT_FALSE(r.ok());
	EXPECT_EQ(r.error().message, "target defines no function named 'nothing_like_it'");
}

} // namespace
} // namespace atlas::patch
