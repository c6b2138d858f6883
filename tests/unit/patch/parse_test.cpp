// SPDX-License-Identifier: MIT
// parse_patch() on tool-built patches (round trip) and on crafted malformed files: each must
// be refused with an error naming what is wrong, never a crash.
#include "atlas/patch/patch.hpp"
#include "atlas/patch/reloc.hpp"
#include "atlas/patch/target.hpp"
#include "atlas/patch/writer.hpp"

#include "test_util.hpp"

#include <gtest/gtest.h>
#include <set>

namespace atlas::patch
{
namespace
{

using test::bin;
using test::ElfBytes;
using test::load;

const Symbol *find_symbol(const Patch &p, const std::string &name)
{
	for (const Symbol &s : p.symbols)
		if (s.name == name)
			return &s;
	return nullptr;
}

Patch parsed(const std::string &file)
{
	auto p = parse_patch(load(bin(file)));
	EXPECT_TRUE(p.ok()) << (p.ok() ? "" : p.error().message);
	return p.ok() ? std::move(*p) : Patch{};
}

Error refused(const std::vector<uint8_t> &bytes, const ParseOptions &o = {})
{
	auto p = parse_patch(bytes, o);
	EXPECT_FALSE(p.ok());
	return p.ok() ? Error{} : p.error();
}

#define EXPECT_MESSAGE(error, needle)                                                              \
	EXPECT_NE((error).message.find(needle), std::string::npos) << (error).message

TEST(Parse, ToolPatchMetadataMatchesTheTarget)
{
	Patch p = parsed("fix.patch.o");
	const Metadata &m = p.metadata;
	EXPECT_EQ(m.version, format_version);
	EXPECT_EQ(m.name, "fix-helper");
	EXPECT_FALSE(m.requires_global());
	EXPECT_EQ(to_hex(m.target_build_id), ATLAS_TEST_BUILD_ID);
	EXPECT_EQ(m.target_path, ATLAS_TEST_TARGET);

	auto syms = read_symbols(load(ATLAS_TEST_TARGET));
	ASSERT_TRUE(syms.ok());
	auto helper =
	    resolve_symbol(*syms, SymbolRef{"helper", "dup_a.c", {}, {}}, SymbolKind::function);
	auto process =
	    resolve_symbol(*syms, SymbolRef{"process", "", {}, {}}, SymbolKind::function);
	auto counter =
	    resolve_symbol(*syms, SymbolRef{"counter", "dup_a.c", {}, {}}, SymbolKind::any);
	ASSERT_TRUE(helper.ok() && process.ok() && counter.ok());

	ASSERT_EQ(m.redirects.size(), 2u);
	EXPECT_EQ(m.redirects[0].target, exact_ref(**helper));
	EXPECT_EQ(m.redirects[0].target.file, "dup_a.c");
	EXPECT_EQ(m.redirects[0].replacement, "helper_fixed");
	EXPECT_EQ(m.redirects[1].target, exact_ref(**process));
	EXPECT_EQ(m.redirects[1].target.file, "");
	EXPECT_EQ(m.redirects[1].replacement, "process");
	ASSERT_EQ(m.references.size(), 1u);
	EXPECT_EQ(m.references[0].patch_symbol, "a_counter");
	EXPECT_EQ(m.references[0].object, "");
	EXPECT_EQ(m.references[0].target, exact_ref(**counter));
}

TEST(Parse, ToolPatchModel)
{
	Patch p = parsed("fix.patch.o");
	ASSERT_EQ(p.redirect_symbols.size(), 2u);
	for (uint32_t i : p.redirect_symbols) {
		const Symbol &s = p.symbols[i];
		EXPECT_EQ(s.type, STT_FUNC);
		EXPECT_TRUE(s.defined());
		EXPECT_TRUE(p.sections[s.section].exec());
		EXPECT_LE(s.value + s.size, p.sections[s.section].bytes.size());
	}
	EXPECT_EQ(p.symbols[p.redirect_symbols[0]].name, "helper_fixed");
	ASSERT_EQ(p.reference_symbols.size(), 1u);
	ASSERT_EQ(p.reference_symbols[0].size(), 1u);
	EXPECT_FALSE(p.symbols[p.reference_symbols[0][0]].defined());
	EXPECT_EQ(p.sections[p.metadata_section].name, ".atlas.patch");

	std::set<uint32_t> types;
	for (const RelocationSection &rs : p.relocations) {
		EXPECT_TRUE(p.sections[rs.target].alloc());
		for (const Relocation &r : rs.entries) {
			EXPECT_TRUE(is_supported_relocation(r.type));
			EXPECT_LT(r.symbol, p.symbols.size());
			types.insert(r.type);
		}
	}
	// fix.c: extern data through the GOT, a call, TLS (general dynamic with -fPIC),
	// a pointer table in .data.rel.ro.
	EXPECT_TRUE(types.count(R_X86_64_REX_GOTPCRELX));
	EXPECT_TRUE(types.count(R_X86_64_PLT32));
	EXPECT_TRUE(types.count(R_X86_64_TLSGD));
	EXPECT_TRUE(types.count(R_X86_64_64));
	const Symbol *tls = find_symbol(p, "tls_counter");
	ASSERT_NE(tls, nullptr);
	EXPECT_EQ(tls->type, STT_TLS);
	EXPECT_FALSE(tls->defined());
}

TEST(Parse, CxxPatch)
{
	Patch p = parsed("fix_cpp.patch.o");
	EXPECT_TRUE(p.metadata.requires_global());
	std::set<std::string> names;
	for (const Section &s : p.sections)
		names.insert(s.name);
	EXPECT_TRUE(names.count(".eh_frame"));
	EXPECT_TRUE(names.count(".gcc_except_table.process") || names.count(".gcc_except_table"));
	EXPECT_TRUE(names.count(".group")); // COMDAT groups of inline functions and templates
}

// The writer reproduces the tool's patch from the raw object and the parsed metadata:
// same metadata, same content hash, deterministic.
TEST(Parse, WriterRoundTrip)
{
	Patch p = parsed("fix.patch.o");
	auto raw = load(bin("fix_raw.o"));
	auto a = build_patch(raw, p.metadata);
	ASSERT_TRUE(a.ok()) << a.error().message;
	auto b = build_patch(raw, p.metadata);
	ASSERT_TRUE(b.ok());
	EXPECT_EQ(*a, *b);
	auto q = parse_patch(*a);
	ASSERT_TRUE(q.ok()) << q.error().message;
	EXPECT_EQ(q->metadata, p.metadata);
	EXPECT_EQ(q->identity(), p.identity());
}

TEST(Parse, ContentHashCoversTheCode)
{
	ElfBytes e(load(bin("fix.patch.o")));
	Elf64_Shdr text = e.shdr(e.section_index(".text.process"));
	e.bytes[text.sh_offset + 1] ^= 0xff;
	Error err = refused(e.bytes);
	EXPECT_EQ(err.code, Errc::hash_mismatch);
	EXPECT_MESSAGE(err, "content hash mismatch");
	EXPECT_TRUE(parse_patch(e.bytes, ParseOptions{false}).ok());
	// Sealing again makes it valid (what the writer does).
	ASSERT_TRUE(seal_content_hash(e.bytes).ok());
	EXPECT_TRUE(parse_patch(e.bytes).ok());
}

TEST(Parse, RefusesTruncatedFiles)
{
	auto b = load(bin("fix.patch.o"));
	std::vector<size_t> sizes = {0, 1, 4, 16, 63, 64, 65, 200, b.size() / 2, b.size() - 1};
	for (size_t n = 0; n < b.size(); n += 97)
		sizes.push_back(n);
	for (size_t n : sizes) {
		std::vector<uint8_t> t(b.begin(), b.begin() + n);
		EXPECT_FALSE(parse_patch(t, ParseOptions{false}).ok()) << n << " bytes";
	}
	Error e = refused(std::vector<uint8_t>(b.begin(), b.begin() + 32));
	EXPECT_MESSAGE(e, "truncated");
	e = refused(std::vector<uint8_t>(b.begin(), b.end() - 1));
	EXPECT_MESSAGE(e, "truncated");
}

TEST(Parse, RefusesBadHeaders)
{
	const auto good = load(bin("fix.patch.o"));
	auto b = good;
	b[1] = 'X';
	EXPECT_MESSAGE(refused(b), "bad ELF magic");
	b = good;
	b[EI_CLASS] = ELFCLASS32;
	EXPECT_MESSAGE(refused(b), "ELFCLASS64");
	b = good;
	b[EI_DATA] = ELFDATA2MSB;
	EXPECT_MESSAGE(refused(b), "little-endian");

	ElfBytes e(good);
	Elf64_Ehdr h = e.ehdr();
	h.e_machine = EM_386;
	e.set_ehdr(h);
	EXPECT_MESSAGE(refused(e.bytes), "not x86-64");

	e = ElfBytes(good);
	h = e.ehdr();
	h.e_type = ET_EXEC;
	e.set_ehdr(h);
	EXPECT_MESSAGE(refused(e.bytes), "not ET_REL");

	e = ElfBytes(good);
	h = e.ehdr();
	h.e_shoff = good.size() - 10;
	e.set_ehdr(h);
	EXPECT_MESSAGE(refused(e.bytes), "beyond the end");

	e = ElfBytes(good);
	h = e.ehdr();
	h.e_shnum = 0xfff0;
	e.set_ehdr(h);
	EXPECT_MESSAGE(refused(e.bytes), "section header table");

	e = ElfBytes(good);
	h = e.ehdr();
	h.e_shentsize = 32;
	e.set_ehdr(h);
	EXPECT_MESSAGE(refused(e.bytes), "section header size");
}

TEST(Parse, RefusesSectionsOutOfBounds)
{
	ElfBytes e(load(bin("fix.patch.o")));
	size_t i = e.section_index(".text.process");
	Elf64_Shdr s = e.shdr(i);
	s.sh_offset = e.bytes.size() - 4;
	e.set_shdr(i, s);
	Error err = refused(e.bytes);
	EXPECT_MESSAGE(err, ".text.process");
	EXPECT_MESSAGE(err, "beyond the end of the file");

	e = ElfBytes(load(bin("fix.patch.o")));
	s = e.shdr(i);
	s.sh_size = ~0ull - 8; // offset + size overflows
	e.set_shdr(i, s);
	EXPECT_MESSAGE(refused(e.bytes), "beyond the end of the file");

	e = ElfBytes(load(bin("fix.patch.o")));
	s = e.shdr(i);
	s.sh_addralign = 24;
	e.set_shdr(i, s);
	EXPECT_MESSAGE(refused(e.bytes), "not a power of two");

	e = ElfBytes(load(bin("fix.patch.o")));
	s = e.shdr(i);
	s.sh_name = 0x7fffffff;
	e.set_shdr(i, s);
	EXPECT_MESSAGE(refused(e.bytes), "invalid name");
}

TEST(Parse, RefusesSymbolSectionIndexOutOfRange)
{
	ElfBytes e(load(bin("fix.patch.o")));
	size_t i = e.symbol_index("helper_fixed");
	ASSERT_NE(i, 0u);
	Elf64_Sym s = e.sym(i);
	s.st_shndx = 500;
	e.set_sym(i, s);
	Error err = refused(e.bytes);
	EXPECT_EQ(err.code, Errc::invalid_format);
	EXPECT_MESSAGE(err, "'helper_fixed': section index 500 is out of range");
}

TEST(Parse, RefusesSymbolOutsideItsSection)
{
	ElfBytes e(load(bin("fix.patch.o")));
	size_t i = e.symbol_index("helper_fixed");
	Elf64_Sym s = e.sym(i);
	s.st_size = 0x10000;
	e.set_sym(i, s);
	EXPECT_MESSAGE(refused(e.bytes), "lies outside its section");

	e = ElfBytes(load(bin("fix.patch.o")));
	s = e.sym(i);
	s.st_name = 0x7fffffff;
	e.set_sym(i, s);
	EXPECT_MESSAGE(refused(e.bytes), "invalid name offset");
}

TEST(Parse, RefusesRelocationSymbolIndexOutOfRange)
{
	ElfBytes e(load(bin("fix.patch.o")));
	Elf64_Rela r = e.rela(".rela.text.process", 0);
	r.r_info = ELF64_R_INFO(9999, ELF64_R_TYPE(r.r_info));
	e.set_rela(".rela.text.process", 0, r);
	Error err = refused(e.bytes);
	EXPECT_MESSAGE(err, "symbol index 9999 is out of range");
}

TEST(Parse, RefusesRelocationOutsideItsSection)
{
	ElfBytes e(load(bin("fix.patch.o")));
	Elf64_Rela r = e.rela(".rela.text.process", 0);
	r.r_offset = e.shdr(e.section_index(".text.process")).sh_size - 2;
	e.set_rela(".rela.text.process", 0, r);
	EXPECT_MESSAGE(refused(e.bytes), "lies outside .text.process");
}

TEST(Parse, RefusesUnsupportedRelocationType)
{
	ElfBytes e(load(bin("fix.patch.o")));
	Elf64_Rela r = e.rela(".rela.text.process", 0);
	r.r_info = ELF64_R_INFO(ELF64_R_SYM(r.r_info), R_X86_64_32S);
	e.set_rela(".rela.text.process", 0, r);
	Error err = refused(e.bytes);
	EXPECT_EQ(err.code, Errc::unsupported);
	EXPECT_MESSAGE(err, "R_X86_64_32S");
	EXPECT_MESSAGE(err, "section .rela.text.process");
	EXPECT_MESSAGE(err, "-fPIC");

	r.r_info = ELF64_R_INFO(ELF64_R_SYM(r.r_info), 200);
	e.set_rela(".rela.text.process", 0, r);
	EXPECT_MESSAGE(refused(e.bytes), "(200)");
}

TEST(Parse, RefusesTlsRelocationAgainstNonTlsSymbol)
{
	ElfBytes e(load(bin("fix.patch.o")));
	// The first relocation of .text.helper_fixed is a GOT load of a_counter (not TLS).
	Elf64_Rela r = e.rela(".rela.text.helper_fixed", 0);
	r.r_info = ELF64_R_INFO(ELF64_R_SYM(r.r_info), R_X86_64_GOTTPOFF);
	e.set_rela(".rela.text.helper_fixed", 0, r);
	EXPECT_MESSAGE(refused(e.bytes), "against the non-TLS symbol 'a_counter'");
}

TEST(Parse, RefusesRelocationAgainstNonLoadedSection)
{
	ElfBytes e(load(bin("fix.patch.o")));
	size_t messages = e.symbol_index("messages");
	ASSERT_NE(messages, 0u);
	Elf64_Sym s = e.sym(messages);
	s.st_shndx = uint16_t(e.section_index(".comment"));
	s.st_value = 0;
	s.st_size = 8;
	e.set_sym(messages, s);
	Elf64_Rela r = e.rela(".rela.text.helper_fixed", 0);
	r.r_info = ELF64_R_INFO(messages, ELF64_R_TYPE(r.r_info));
	e.set_rela(".rela.text.helper_fixed", 0, r);
	EXPECT_MESSAGE(refused(e.bytes), "'messages', which is defined in the non-loaded section "
	                                 ".comment");
}

TEST(Parse, RefusesRealNonPicObject)
{
	Metadata m = parsed("fix.patch.o").metadata;
	m.references.clear();
	auto r = build_patch(load(bin("nopic.o")), m);
	ASSERT_FALSE(r.ok());
	EXPECT_EQ(r.error().code, Errc::unsupported);
	EXPECT_MESSAGE(r.error(), "R_X86_64_32");
	EXPECT_MESSAGE(r.error(), ".rela.text.process");
}

TEST(Parse, RefusesNewTlsVariables)
{
	Metadata m = parsed("fix.patch.o").metadata;
	m.redirects.resize(1);
	m.redirects[0].replacement = "process";
	m.references.clear();
	auto r = build_patch(load(bin("new_tls.o")), m);
	ASSERT_FALSE(r.ok());
	EXPECT_EQ(r.error().code, Errc::unsupported);
	EXPECT_MESSAGE(r.error(), "thread-local storage");
}

TEST(Parse, RefusesCommonSymbols)
{
	Metadata m = parsed("fix.patch.o").metadata;
	m.redirects.resize(1);
	m.redirects[0].replacement = "process";
	m.references.clear();
	auto r = build_patch(load(bin("common.o")), m);
	ASSERT_FALSE(r.ok());
	EXPECT_MESSAGE(r.error(), "-fno-common");
}

TEST(Parse, RefusesMetadataVersionMismatch)
{
	ElfBytes e(load(bin("fix.patch.o")));
	e.bytes[e.metadata_offset() + 8] = 2;
	Error err = refused(e.bytes);
	EXPECT_EQ(err.code, Errc::version_mismatch);
	EXPECT_MESSAGE(err, "metadata format version 2 is not supported");
}

TEST(Parse, RefusesMissingMetadata)
{
	auto r = parse_patch(load(bin("fix_raw.o")));
	ASSERT_FALSE(r.ok());
	EXPECT_MESSAGE(r.error(), "no .atlas.patch section");

	ElfBytes e(load(bin("fix.patch.o")));
	size_t i = e.section_index(".atlas.patch");
	Elf64_Shdr s = e.shdr(i);
	s.sh_flags = SHF_ALLOC;
	e.set_shdr(i, s);
	EXPECT_MESSAGE(refused(e.bytes), "non-allocated");
}

TEST(Parse, RefusesRedirectToUndefinedSymbol)
{
	Metadata m = parsed("fix.patch.o").metadata;
	m.redirects[0].replacement = "fprintf"; // referenced by fix.c, not defined there
	auto r = build_patch(load(bin("fix_raw.o")), m);
	ASSERT_FALSE(r.ok());
	EXPECT_MESSAGE(r.error(), "replacement 'fprintf' is undefined in the patch");

	m.redirects[0].replacement = "no_such_function";
	r = build_patch(load(bin("fix_raw.o")), m);
	ASSERT_FALSE(r.ok());
	EXPECT_MESSAGE(r.error(), "'no_such_function' is not defined");

	m.redirects[0].replacement = "messages"; // data, not a function
	r = build_patch(load(bin("fix_raw.o")), m);
	ASSERT_FALSE(r.ok());
	EXPECT_MESSAGE(r.error(), "not a function");
}

TEST(Parse, RefusesReferenceToSymbolThePatchDoesNotUse)
{
	Metadata m = parsed("fix.patch.o").metadata;
	m.references[0].patch_symbol = "helper_fixed"; // defined, not undefined
	auto r = build_patch(load(bin("fix_raw.o")), m);
	ASSERT_FALSE(r.ok());
	EXPECT_MESSAGE(r.error(), "no undefined symbol 'helper_fixed'");
}

TEST(Parse, WriterRefusesASecondMetadataSection)
{
	Patch p = parsed("fix.patch.o");
	auto r = build_patch(load(bin("fix.patch.o")), p.metadata);
	ASSERT_FALSE(r.ok());
	EXPECT_MESSAGE(r.error(), "already has");
}

TEST(Parse, RefusesNonElfInput)
{
	std::vector<uint8_t> junk(4096, 0x41);
	EXPECT_MESSAGE(refused(junk), "bad ELF magic");
	EXPECT_MESSAGE(refused({}), "truncated");
	// A target executable is not a patch.
	EXPECT_MESSAGE(refused(load(ATLAS_TEST_TARGET)), "not ET_REL");
}

} // namespace
} // namespace atlas::patch
