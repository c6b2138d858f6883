// SPDX-License-Identifier: MIT
#include "elf_object.hpp"

#include "atlas/patch/patch.hpp"

#include <algorithm>
#include <cstring>
#include <fmt/format.h>
#include <gelf.h>
#include <libelf.h>
#include <memory>

namespace atlas::build_patch
{

using patch::Errc;
using patch::make_error;
using patch::Result;

bool ObjSection::alloc() const noexcept
{
	return flags & SHF_ALLOC;
}
bool ObjSection::exec() const noexcept
{
	return flags & SHF_EXECINSTR;
}
bool ObjSection::write() const noexcept
{
	return flags & SHF_WRITE;
}
bool ObjSection::tls() const noexcept
{
	return flags & SHF_TLS;
}
bool ObjSection::nobits() const noexcept
{
	return type == SHT_NOBITS;
}
bool ObjSection::strings() const noexcept
{
	return (flags & SHF_MERGE) && (flags & SHF_STRINGS);
}
bool ObjSection::constants() const noexcept
{
	return (flags & SHF_MERGE) && !(flags & SHF_STRINGS) && entsize > 0;
}
bool ObjSection::read_only() const noexcept
{
	return !write() || name.starts_with(".data.rel.ro");
}

bool ObjSymbol::defined() const noexcept
{
	return section != SHN_UNDEF;
}
bool ObjSymbol::in_section() const noexcept
{
	return section != SHN_UNDEF && section != SHN_ABS && section != SHN_COMMON;
}
bool ObjSymbol::local() const noexcept
{
	return bind == STB_LOCAL;
}

namespace
{

struct ElfCloser {
	void operator()(Elf *e) const noexcept
	{
		elf_end(e);
	}
};

std::string elf_message()
{
	const char *m = elf_errmsg(-1);
	return m ? m : "unknown libelf error";
}

} // namespace

Result<ObjectFile> ObjectFile::read(const std::string &path)
{
	if (elf_version(EV_CURRENT) == EV_NONE)
		return make_error(Errc::internal, "libelf initialisation failed: " + elf_message());
	auto bytes = patch::read_file(path);
	if (!bytes)
		return bytes.error();
	std::unique_ptr<Elf, ElfCloser> elf(
	    elf_memory(reinterpret_cast<char *>(bytes->data()), bytes->size()));
	auto fail = [&](const std::string &what) {
		return make_error(Errc::invalid_format, fmt::format("{}: {}", path, what));
	};
	ObjectFile obj;
	obj.path_ = path;
	{
		if (!elf || elf_kind(elf.get()) != ELF_K_ELF)
			return fail("not an ELF file");
		GElf_Ehdr eh;
		if (!gelf_getehdr(elf.get(), &eh))
			return fail("cannot read the ELF header: " + elf_message());
		if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB ||
		    eh.e_machine != EM_X86_64)
			return fail("not an ELF64 little-endian x86-64 file");
		if (eh.e_type != ET_REL)
			return fail("not a relocatable object (ET_REL)");
		size_t shnum, shstrndx;
		if (elf_getshdrnum(elf.get(), &shnum) != 0 ||
		    elf_getshdrstrndx(elf.get(), &shstrndx) != 0)
			return fail("cannot read the section table: " + elf_message());
		obj.sections_.resize(shnum);
		obj.relocations_.resize(shnum);
		obj.rela_of_.assign(shnum, 0);
		obj.by_section_.resize(shnum);
		obj.section_symbols_.assign(shnum, 0);
		uint32_t symtab = 0, symtab_shndx = 0;
		for (size_t i = 1; i < shnum; i++) {
			Elf_Scn *scn = elf_getscn(elf.get(), i);
			GElf_Shdr sh;
			if (!scn || !gelf_getshdr(scn, &sh))
				return fail(fmt::format("cannot read section header [{}]: {}", i,
				                        elf_message()));
			ObjSection &s = obj.sections_[i];
			const char *name = elf_strptr(elf.get(), shstrndx, sh.sh_name);
			s.name = name ? name : "";
			s.type = sh.sh_type;
			s.flags = sh.sh_flags;
			s.align = sh.sh_addralign;
			s.entsize = sh.sh_entsize;
			s.link = sh.sh_link;
			s.info = sh.sh_info;
			s.size = sh.sh_size;
			if (sh.sh_flags & SHF_COMPRESSED)
				return fail(fmt::format("section {} is compressed; build without "
				                        "--compress-debug-sections",
				                        s.name));
			if (sh.sh_type != SHT_NOBITS && sh.sh_size > 0) {
				Elf_Data *d = elf_rawdata(scn, nullptr);
				if (!d || d->d_size != sh.sh_size)
					return fail(fmt::format("cannot read section {}: {}",
					                        s.name, elf_message()));
				const uint8_t *p = static_cast<const uint8_t *>(d->d_buf);
				s.bytes.assign(p, p + d->d_size);
			}
			if (sh.sh_type == SHT_SYMTAB)
				symtab = i;
			if (sh.sh_type == SHT_SYMTAB_SHNDX)
				symtab_shndx = i;
			if (sh.sh_type == SHT_REL)
				return fail(fmt::format("section {} is SHT_REL; x86-64 objects use "
				                        "SHT_RELA",
				                        s.name));
		}
		if (!symtab)
			return fail("no symbol table (.symtab)");

		// Symbols.
		Elf_Scn *sscn = elf_getscn(elf.get(), symtab);
		Elf_Data *sdata = elf_getdata(sscn, nullptr);
		Elf_Data *xdata = symtab_shndx
		                      ? elf_getdata(elf_getscn(elf.get(), symtab_shndx), nullptr)
		                      : nullptr;
		const ObjSection &st = obj.sections_[symtab];
		size_t count = st.entsize ? st.size / st.entsize : 0;
		obj.symbols_.resize(count);
		for (size_t i = 0; i < count; i++) {
			GElf_Sym sym;
			Elf32_Word xndx = 0;
			if (!gelf_getsymshndx(sdata, xdata, int(i), &sym, &xndx))
				return fail(
				    fmt::format("cannot read symbol {}: {}", i, elf_message()));
			ObjSymbol &o = obj.symbols_[i];
			const char *name = elf_strptr(elf.get(), st.link, sym.st_name);
			o.name = name ? name : "";
			o.type = GELF_ST_TYPE(sym.st_info);
			o.bind = GELF_ST_BIND(sym.st_info);
			o.other = sym.st_other;
			o.section = sym.st_shndx == SHN_XINDEX ? xndx : sym.st_shndx;
			o.value = sym.st_value;
			o.size = sym.st_size;
			if (o.in_section() && o.section >= shnum)
				return fail(
				    fmt::format("symbol {} has section index {} out of range",
				                o.name, o.section));
			if (o.type == STT_FILE && obj.source_name_.empty())
				obj.source_name_ = o.name;
			if (o.type == STT_SECTION && o.in_section())
				obj.section_symbols_[o.section] = uint32_t(i);
			if ((o.type == STT_FUNC || o.type == STT_OBJECT || o.type == STT_TLS) &&
			    o.in_section())
				obj.by_section_[o.section].push_back(uint32_t(i));
		}

		// Relocations.
		for (size_t i = 1; i < shnum; i++) {
			const ObjSection &rs = obj.sections_[i];
			if (rs.type != SHT_RELA)
				continue;
			if (rs.info == 0 || rs.info >= shnum || rs.link != symtab)
				return fail(fmt::format("relocation section {} links to section {} "
				                        "and symbol table {}",
				                        rs.name, rs.info, rs.link));
			Elf_Data *d = elf_getdata(elf_getscn(elf.get(), i), nullptr);
			size_t n = rs.entsize ? rs.size / rs.entsize : 0;
			auto &out = obj.relocations_[rs.info];
			obj.rela_of_[rs.info] = uint32_t(i);
			for (size_t k = 0; k < n; k++) {
				GElf_Rela r;
				if (!gelf_getrela(d, int(k), &r))
					return fail(
					    fmt::format("cannot read relocation {} of {}: {}", k,
					                rs.name, elf_message()));
				ObjRelocation e{r.r_offset, uint32_t(GELF_R_TYPE(r.r_info)),
				                uint32_t(GELF_R_SYM(r.r_info)), r.r_addend};
				if (e.symbol >= count)
					return fail(
					    fmt::format("relocation {} of {} names symbol {} "
					                "out of range",
					                k, rs.name, e.symbol));
				out.push_back(e);
			}
			std::stable_sort(out.begin(), out.end(),
			                 [](const ObjRelocation &a, const ObjRelocation &b) {
				                 return a.offset < b.offset;
			                 });
		}
	}
	return obj;
}

const std::vector<ObjRelocation> &ObjectFile::relocations(uint32_t index) const noexcept
{
	static const std::vector<ObjRelocation> none;
	return index < relocations_.size() ? relocations_[index] : none;
}

std::optional<uint32_t> ObjectFile::relocation_section(uint32_t index) const noexcept
{
	if (index < rela_of_.size() && rela_of_[index])
		return rela_of_[index];
	return std::nullopt;
}

std::optional<uint32_t> ObjectFile::owner(uint32_t index, uint64_t offset) const noexcept
{
	if (index >= by_section_.size())
		return std::nullopt;
	std::optional<uint32_t> best;
	for (uint32_t i : by_section_[index]) {
		const ObjSymbol &s = symbols_[i];
		bool covers = offset >= s.value &&
		              (offset < s.value + s.size || (s.size == 0 && offset == s.value));
		if (!covers)
			continue;
		if (!best || s.size > symbols_[*best].size)
			best = i;
	}
	return best;
}

std::vector<uint32_t> ObjectFile::symbols_in(uint32_t index) const
{
	return index < by_section_.size() ? by_section_[index] : std::vector<uint32_t>{};
}

std::optional<uint32_t> ObjectFile::section_symbol(uint32_t index) const noexcept
{
	if (index < section_symbols_.size() && section_symbols_[index])
		return section_symbols_[index];
	return std::nullopt;
}

std::optional<StringAt> string_at(const ObjSection &section, uint64_t offset)
{
	if (offset >= section.bytes.size())
		return std::nullopt;
	const uint8_t *b = section.bytes.data();
	uint64_t start = offset;
	while (start > 0 && b[start - 1] != 0)
		start--;
	uint64_t end = offset;
	while (end < section.bytes.size() && b[end] != 0)
		end++;
	return StringAt{start, std::string(reinterpret_cast<const char *>(b + start), end - start)};
}

int64_t pc_bias(uint32_t type) noexcept
{
	switch (type) {
	case R_X86_64_PC32:
	case R_X86_64_PLT32:
	case R_X86_64_GOTPCREL:
	case R_X86_64_GOTPCRELX:
	case R_X86_64_REX_GOTPCRELX:
	case R_X86_64_GOTTPOFF:
	case R_X86_64_TLSGD:
	case R_X86_64_TLSLD:
		return 4;
	default:
		return 0;
	}
}

std::string relocation_type_name(uint32_t type)
{
	switch (type) {
	case R_X86_64_64:
		return "R_X86_64_64";
	case R_X86_64_PC32:
		return "R_X86_64_PC32";
	case R_X86_64_PLT32:
		return "R_X86_64_PLT32";
	case R_X86_64_GOTPCREL:
		return "R_X86_64_GOTPCREL";
	case R_X86_64_GOTPCRELX:
		return "R_X86_64_GOTPCRELX";
	case R_X86_64_REX_GOTPCRELX:
		return "R_X86_64_REX_GOTPCRELX";
	case R_X86_64_32:
		return "R_X86_64_32";
	case R_X86_64_32S:
		return "R_X86_64_32S";
	case R_X86_64_GOTTPOFF:
		return "R_X86_64_GOTTPOFF";
	case R_X86_64_TPOFF32:
		return "R_X86_64_TPOFF32";
	case R_X86_64_TLSGD:
		return "R_X86_64_TLSGD";
	case R_X86_64_TLSLD:
		return "R_X86_64_TLSLD";
	case R_X86_64_DTPOFF32:
		return "R_X86_64_DTPOFF32";
	case R_X86_64_DTPOFF64:
		return "R_X86_64_DTPOFF64";
	default:
		return fmt::format("relocation type {}", type);
	}
}

} // namespace atlas::build_patch
