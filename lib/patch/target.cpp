// SPDX-License-Identifier: MIT
#include "atlas/patch/target.hpp"

#include "internal.hpp"

#include <cstring>
#include <cxxabi.h>
#include <fmt/format.h>
#include <memory>

namespace atlas::patch
{

namespace
{

using detail::ElfImage;

Expected<void> open_target(ElfImage &image, std::span<const uint8_t> bytes)
{
	if (bytes.size() < sizeof(Elf64_Ehdr) || std::memcmp(bytes.data(), ELFMAG, SELFMAG) != 0)
		return make_error(Errc::invalid_format, "target is not an ELF file");
	if (bytes[EI_CLASS] != ELFCLASS64 || bytes[EI_DATA] != ELFDATA2LSB)
		return make_error(Errc::invalid_format, "target is not a little-endian ELF64 file");
	if (auto r = image.open(bytes, "target"); !r)
		return r;
	GElf_Ehdr eh;
	if (!gelf_getehdr(image.elf(), &eh))
		return make_error(Errc::invalid_format,
		                  "target: cannot read the ELF header: " + detail::elf_error());
	if (eh.e_machine != EM_X86_64)
		return make_error(Errc::invalid_format,
		                  fmt::format("target machine {} is not x86-64", eh.e_machine));
	if (eh.e_type != ET_EXEC && eh.e_type != ET_DYN)
		return make_error(Errc::invalid_format,
		                  fmt::format("target ELF type {} is neither an executable nor a "
		                              "shared object",
		                              eh.e_type));
	return {};
}

// Scans the notes of one data block for NT_GNU_BUILD_ID.
bool find_build_id(Elf_Data *data, std::vector<uint8_t> &out)
{
	size_t off = 0, name_off, desc_off;
	GElf_Nhdr nh;
	while (off < data->d_size) {
		size_t next = gelf_getnote(data, off, &nh, &name_off, &desc_off);
		if (next == 0 || next <= off)
			return false;
		if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
		    std::memcmp(static_cast<const char *>(data->d_buf) + name_off, "GNU", 4) == 0 &&
		    nh.n_descsz > 0) {
			const uint8_t *d = static_cast<const uint8_t *>(data->d_buf) + desc_off;
			out.assign(d, d + nh.n_descsz);
			return true;
		}
		off = next;
	}
	return false;
}

bool file_matches(const std::string &want, const std::string &have)
{
	if (want == have)
		return true;
	if (want.find('/') != std::string::npos)
		return false;
	size_t slash = have.rfind('/');
	return slash != std::string::npos && have.compare(slash + 1, std::string::npos, want) == 0;
}

bool kind_matches(SymbolKind kind, const TargetSymbol &s)
{
	switch (kind) {
	case SymbolKind::function:
		return s.type == STT_FUNC;
	case SymbolKind::any:
		return s.type == STT_FUNC || s.type == STT_OBJECT || s.type == STT_TLS ||
		       s.type == STT_NOTYPE;
	}
	return false;
}

} // namespace

std::string describe(const TargetSymbol &s)
{
	const char *bind = s.bind == STB_LOCAL ? "local" : s.bind == STB_WEAK ? "weak" : "global";
	std::string out = fmt::format("{} ({}", s.name, bind);
	if (!s.file.empty())
		out += fmt::format(", file {}", s.file);
	out += fmt::format(", symtab index {}, 0x{:x}, {} bytes)", s.index, s.value, s.size);
	return out;
}

SymbolRef exact_ref(const TargetSymbol &s)
{
	SymbolRef r;
	r.name = s.name;
	if (s.bind == STB_LOCAL)
		r.file = s.file;
	r.symtab_index = s.index;
	r.address = s.value;
	return r;
}

Expected<std::vector<uint8_t>> read_build_id(std::span<const uint8_t> bytes)
{
	return detail::guard([&]() -> Expected<std::vector<uint8_t>> {
		ElfImage image;
		if (auto r = open_target(image, bytes); !r)
			return r.error();
		Elf *elf = image.elf();
		std::vector<uint8_t> id;
		size_t shnum = 0;
		if (elf_getshdrnum(elf, &shnum) != 0)
			shnum = 0;
		for (size_t i = 1; i < shnum; i++) {
			Elf_Scn *scn = elf_getscn(elf, i);
			GElf_Shdr sh;
			if (!scn || !gelf_getshdr(scn, &sh) || sh.sh_type != SHT_NOTE)
				continue;
			if (auto b = detail::check_section_bounds(image, sh, i, "note"); !b)
				return b.error();
			Elf_Data *data = elf_getdata(scn, nullptr);
			if (data && find_build_id(data, id))
				return id;
		}
		size_t phnum = 0;
		if (elf_getphdrnum(elf, &phnum) != 0)
			phnum = 0;
		for (size_t i = 0; i < phnum; i++) {
			GElf_Phdr ph;
			if (!gelf_getphdr(elf, int(i), &ph) || ph.p_type != PT_NOTE)
				continue;
			Elf_Data *data = elf_getdata_rawchunk(elf, int64_t(ph.p_offset),
			                                      ph.p_filesz, ELF_T_NHDR);
			if (data && find_build_id(data, id))
				return id;
		}
		return make_error(Errc::not_found,
		                  "target has no GNU build-id note: link it with -Wl,--build-id");
	});
}

Expected<TargetSymbols> read_symbols(std::span<const uint8_t> bytes)
{
	return detail::guard([&]() -> Expected<TargetSymbols> {
		ElfImage image;
		if (auto r = open_target(image, bytes); !r)
			return r.error();
		Elf *elf = image.elf();
		size_t shnum = 0;
		if (elf_getshdrnum(elf, &shnum) != 0)
			return make_error(Errc::invalid_format,
			                  "target: cannot read the section count: " +
			                      detail::elf_error());
		Elf_Scn *symtab = nullptr, *dynsym = nullptr;
		for (size_t i = 1; i < shnum; i++) {
			Elf_Scn *scn = elf_getscn(elf, i);
			GElf_Shdr sh;
			if (!scn || !gelf_getshdr(scn, &sh))
				return make_error(Errc::invalid_format,
				                  fmt::format("target: cannot read section header "
				                              "[{}]: {}",
				                              i, detail::elf_error()));
			if (auto b = detail::check_section_bounds(image, sh, i, "symbol table");
			    !b && (sh.sh_type == SHT_SYMTAB || sh.sh_type == SHT_DYNSYM))
				return b.error();
			if (sh.sh_type == SHT_SYMTAB && !symtab)
				symtab = scn;
			else if (sh.sh_type == SHT_DYNSYM && !dynsym)
				dynsym = scn;
		}
		TargetSymbols out;
		Elf_Scn *scn = symtab ? symtab : dynsym;
		out.dynamic = !symtab;
		if (!scn)
			return make_error(
			    Errc::not_found,
			    "target has no symbol table: build it unstripped or use its "
			    "separate debug file");
		GElf_Shdr sh;
		gelf_getshdr(scn, &sh);
		if (sh.sh_entsize != sizeof(Elf64_Sym) || sh.sh_link >= shnum)
			return make_error(Errc::invalid_format, "target: malformed symbol table");
		Elf_Data *data = elf_getdata(scn, nullptr);
		if (!data)
			return make_error(Errc::invalid_format,
			                  "target: cannot read the symbol table: " +
			                      detail::elf_error());
		size_t n = data->d_size / sizeof(Elf64_Sym);
		out.symbols.resize(n);
		std::string file;
		for (size_t i = 1; i < n; i++) {
			GElf_Sym sym;
			if (!gelf_getsym(data, int(i), &sym))
				return make_error(Errc::invalid_format,
				                  fmt::format("target: cannot read symbol {}", i));
			const char *name = elf_strptr(elf, sh.sh_link, sym.st_name);
			if (!name)
				return make_error(
				    Errc::invalid_format,
				    fmt::format("target: symbol {} has an invalid name", i));
			TargetSymbol &s = out.symbols[i];
			s.index = uint32_t(i);
			s.name = name;
			s.type = GELF_ST_TYPE(sym.st_info);
			s.bind = GELF_ST_BIND(sym.st_info);
			s.section = sym.st_shndx;
			s.value = sym.st_value;
			s.size = sym.st_size;
			// A STT_FILE symbol names the source of the local symbols that follow it,
			// up to the next STT_FILE (the linker emits one with an empty name before
			// its own locals). Globals belong to no file.
			if (s.type == STT_FILE)
				file = s.name;
			else if (s.bind == STB_LOCAL)
				s.file = file;
		}
		return out;
	});
}

namespace
{

// The part of a symbol name before the compiler's suffixes: "f.isra.0", "f.constprop.0",
// "f.part.0", "f.cold" and a function-local static "n.3" all have the base "f" or "n".
std::string_view base_name(std::string_view name)
{
	const auto dot = name.find('.');
	return dot == std::string_view::npos || dot == 0 ? name : name.substr(0, dot);
}

// For a C++ symbol: its demangled name without the parameter list ("ns::S<int>::f"), and
// that name's last component ("f"); empty when `name` is not a mangled name.
std::pair<std::string, std::string> demangled_names(const std::string &name)
{
	if (!name.starts_with("_Z"))
		return {};
	int status = 0;
	std::unique_ptr<char, void (*)(void *)> text(
	    abi::__cxa_demangle(std::string(base_name(name)).c_str(), nullptr, nullptr, &status),
	    std::free);
	if (status != 0 || !text)
		return {};
	std::string full = text.get();
	// Cut the parameters at the '(' that closes the name (a template argument may hold one).
	int depth = 0;
	for (std::size_t i = 0; i < full.size(); i++) {
		if (full[i] == '<')
			depth++;
		else if (full[i] == '>')
			depth--;
		else if (full[i] == '(' && depth == 0) {
			full.resize(i);
			break;
		}
	}
	const auto colon = full.rfind("::");
	std::string last = colon == std::string::npos ? full : full.substr(colon + 2);
	if (const auto angle = last.find('<'); angle != std::string::npos)
		last.resize(angle);
	return {full, last};
}

// Symbols a user probably meant by `wanted` when no symbol has that name: compiler clones and
// numbered statics of the same base name, and C++ symbols whose demangled name is it.
std::vector<const TargetSymbol *> close_candidates(const TargetSymbols &symbols,
                                                   const std::string &wanted, SymbolKind kind)
{
	const std::string_view base = base_name(wanted);
	std::vector<const TargetSymbol *> out;
	for (const TargetSymbol &s : symbols.symbols) {
		if (!s.defined() || !kind_matches(kind, s) || s.name.empty())
			continue;
		bool close = base_name(s.name) == base;
		if (!close && s.name.starts_with("_Z")) {
			auto [full, last] = demangled_names(s.name);
			close = !full.empty() && (full == wanted || last == wanted);
		}
		if (close)
			out.push_back(&s);
	}
	return out;
}

} // namespace

Expected<const TargetSymbol *> resolve_symbol(const TargetSymbols &symbols, const SymbolRef &ref,
                                              SymbolKind kind)
{
	return detail::guard([&]() -> Expected<const TargetSymbol *> {
		std::vector<const TargetSymbol *> named, matching;
		for (const TargetSymbol &s : symbols.symbols) {
			if (s.name != ref.name || !s.defined() || !kind_matches(kind, s))
				continue;
			named.push_back(&s);
			if (!ref.file.empty() &&
			    (s.bind != STB_LOCAL || !file_matches(ref.file, s.file)))
				continue;
			if (ref.symtab_index && s.index != *ref.symtab_index)
				continue;
			if (ref.address && s.value != *ref.address)
				continue;
			matching.push_back(&s);
		}
		if (matching.size() == 1)
			return matching[0];
		const char *what = kind == SymbolKind::function ? "function" : "symbol";
		auto list = [](const std::vector<const TargetSymbol *> &v) {
			std::string out;
			for (const TargetSymbol *s : v)
				out += "\n  " + describe(*s);
			return out;
		};
		if (matching.empty()) {
			if (named.empty()) {
				auto close = close_candidates(symbols, ref.name, kind);
				constexpr std::size_t shown = 10;
				const std::size_t more =
				    close.size() > shown ? close.size() - shown : 0;
				close.resize(std::min(close.size(), shown));
				return make_error(
				    Errc::not_found,
				    close.empty()
				        ? fmt::format("target defines no {} named '{}'", what,
				                      ref.name)
				        : fmt::format(
				              "target defines no {} named '{}'; close candidates "
				              "(compiler clones such as .isra/.constprop/.part, "
				              "numbered statics, C++ names; docs/patch-format.md "
				              "sec. 2.4 says how to name them):{}{}",
				              what, ref.name, list(close),
				              more ? fmt::format("\n  ... and {} more", more)
				                   : ""));
			}
			return make_error(Errc::not_found,
			                  fmt::format("no {} {} in the target; candidates:{}", what,
			                              detail::describe_symbol_ref(ref),
			                              list(named)));
		}
		return make_error(Errc::ambiguous,
		                  fmt::format("{} {} is ambiguous in the target ({} candidates); "
		                              "add a \"file\" (or symtab index) to choose one:{}",
		                              what, detail::describe_symbol_ref(ref),
		                              matching.size(), list(matching)));
	});
}

namespace detail
{
std::string describe_symbol_ref(const SymbolRef &r)
{
	std::string s = fmt::format("'{}'", r.name);
	if (!r.file.empty())
		s += fmt::format(" in file '{}'", r.file);
	if (r.symtab_index)
		s += fmt::format(" at symtab index {}", *r.symtab_index);
	if (r.address)
		s += fmt::format(" at 0x{:x}", *r.address);
	return s;
}
} // namespace detail

} // namespace atlas::patch
