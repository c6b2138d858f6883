// SPDX-License-Identifier: MIT
#include "elf_writer.hpp"

#include <cstring>
#include <elf.h>

namespace atlas::build_patch
{

RelocatableWriter::RelocatableWriter(std::string file_name)
    : file_name_(std::move(file_name)), sections_(1), symbols_(1), section_symbols_(1, 0)
{
}

uint32_t RelocatableWriter::add_section(OutSection section)
{
	if (section.type != SHT_NOBITS)
		section.size = section.bytes.size();
	sections_.push_back(std::move(section));
	section_symbols_.push_back(0);
	return uint32_t(sections_.size() - 1);
}

OutSection &RelocatableWriter::section(uint32_t index)
{
	return sections_[index];
}

uint32_t RelocatableWriter::add_symbol(OutSymbol symbol)
{
	symbols_.push_back(std::move(symbol));
	return uint32_t(symbols_.size() - 1);
}

OutSymbol &RelocatableWriter::symbol(uint32_t handle)
{
	return symbols_[handle];
}

uint32_t RelocatableWriter::section_symbol(uint32_t section)
{
	if (!section_symbols_[section]) {
		OutSymbol s;
		s.type = STT_SECTION;
		s.bind = STB_LOCAL;
		s.section = section;
		section_symbols_[section] = add_symbol(s);
	}
	return section_symbols_[section];
}

namespace
{

class StringTable
{
public:
	StringTable() : bytes_(1, '\0') {}
	uint32_t add(const std::string &s)
	{
		if (s.empty())
			return 0;
		uint32_t at = uint32_t(bytes_.size());
		bytes_.insert(bytes_.end(), s.begin(), s.end());
		bytes_.push_back('\0');
		return at;
	}
	std::vector<uint8_t> bytes() const
	{
		return {bytes_.begin(), bytes_.end()};
	}

private:
	std::vector<char> bytes_;
};

template <class T>
void append(std::vector<uint8_t> &out, const T &v)
{
	const uint8_t *p = reinterpret_cast<const uint8_t *>(&v);
	out.insert(out.end(), p, p + sizeof(T));
}

} // namespace

std::vector<uint8_t> RelocatableWriter::write() const
{
	// Symbol order: null, file, locals, globals.
	std::vector<uint32_t> final_index(symbols_.size(), 0);
	std::vector<const OutSymbol *> order;
	OutSymbol file;
	file.name = file_name_;
	file.type = STT_FILE;
	file.bind = STB_LOCAL;
	file.section = SHN_ABS;
	order.push_back(&file);
	for (uint32_t pass = 0; pass < 2; pass++)
		for (uint32_t h = 1; h < symbols_.size(); h++)
			if ((symbols_[h].bind == STB_LOCAL) == (pass == 0)) {
				final_index[h] = uint32_t(order.size() + 1);
				order.push_back(&symbols_[h]);
			}
	uint32_t first_global = 1;
	for (const OutSymbol *s : order)
		if (s->bind == STB_LOCAL)
			first_global++;

	// Output sections: content, their .rela, .symtab, .strtab, .shstrtab.
	struct Shdr {
		Elf64_Shdr h{};
		std::vector<uint8_t> bytes;
	};
	std::vector<Shdr> out(1);
	StringTable shstr, str;
	for (uint32_t i = 1; i < sections_.size(); i++) {
		const OutSection &s = sections_[i];
		Shdr h;
		h.h.sh_name = shstr.add(s.name);
		h.h.sh_type = s.type;
		h.h.sh_flags = s.flags & ~uint64_t(SHF_GROUP);
		h.h.sh_addralign = s.align ? s.align : 1;
		h.h.sh_entsize = s.entsize;
		h.h.sh_size = s.size;
		h.bytes = s.bytes;
		out.push_back(std::move(h));
	}
	const uint32_t symtab_index = uint32_t(sections_.size());
	uint32_t rela_count = 0;
	for (const OutSection &s : sections_)
		rela_count += !s.relocations.empty();
	const uint32_t symtab = symtab_index + rela_count;
	for (uint32_t i = 1; i < sections_.size(); i++) {
		const OutSection &s = sections_[i];
		if (s.relocations.empty())
			continue;
		Shdr h;
		h.h.sh_name = shstr.add(".rela" + s.name);
		h.h.sh_type = SHT_RELA;
		h.h.sh_flags = SHF_INFO_LINK;
		h.h.sh_addralign = 8;
		h.h.sh_entsize = sizeof(Elf64_Rela);
		h.h.sh_link = symtab;
		h.h.sh_info = i;
		for (const OutRelocation &r : s.relocations) {
			Elf64_Rela e{};
			e.r_offset = r.offset;
			e.r_info = ELF64_R_INFO(final_index[r.symbol], r.type);
			e.r_addend = r.addend;
			append(h.bytes, e);
		}
		h.h.sh_size = h.bytes.size();
		out.push_back(std::move(h));
	}
	{
		Shdr h;
		h.h.sh_name = shstr.add(".symtab");
		h.h.sh_type = SHT_SYMTAB;
		h.h.sh_addralign = 8;
		h.h.sh_entsize = sizeof(Elf64_Sym);
		h.h.sh_link = symtab + 1;
		h.h.sh_info = first_global;
		append(h.bytes, Elf64_Sym{});
		for (const OutSymbol *s : order) {
			Elf64_Sym e{};
			e.st_name = s->type == STT_SECTION ? 0 : str.add(s->name);
			e.st_info = ELF64_ST_INFO(s->bind, s->type);
			e.st_other = s->other;
			e.st_shndx = uint16_t(s->section);
			e.st_value = s->value;
			e.st_size = s->size;
			append(h.bytes, e);
		}
		h.h.sh_size = h.bytes.size();
		out.push_back(std::move(h));
	}
	{
		Shdr h;
		h.h.sh_name = shstr.add(".strtab");
		h.h.sh_type = SHT_STRTAB;
		h.h.sh_addralign = 1;
		h.bytes = str.bytes();
		h.h.sh_size = h.bytes.size();
		out.push_back(std::move(h));
	}
	{
		Shdr h;
		h.h.sh_name = shstr.add(".shstrtab");
		h.h.sh_type = SHT_STRTAB;
		h.h.sh_addralign = 1;
		h.bytes = shstr.bytes();
		h.h.sh_size = h.bytes.size();
		out.push_back(std::move(h));
	}

	std::vector<uint8_t> file_bytes(sizeof(Elf64_Ehdr), 0);
	for (size_t i = 1; i < out.size(); i++) {
		Shdr &h = out[i];
		uint64_t align = h.h.sh_addralign ? h.h.sh_addralign : 1;
		size_t at = (file_bytes.size() + align - 1) / align * align;
		file_bytes.resize(at, 0);
		h.h.sh_offset = at;
		if (h.h.sh_type != SHT_NOBITS)
			file_bytes.insert(file_bytes.end(), h.bytes.begin(), h.bytes.end());
	}
	file_bytes.resize((file_bytes.size() + 7) / 8 * 8, 0);
	const uint64_t shoff = file_bytes.size();
	for (const Shdr &h : out)
		append(file_bytes, h.h);

	Elf64_Ehdr eh{};
	std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS64;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_ident[EI_VERSION] = EV_CURRENT;
	eh.e_ident[EI_OSABI] = ELFOSABI_SYSV;
	eh.e_type = ET_REL;
	eh.e_machine = EM_X86_64;
	eh.e_version = EV_CURRENT;
	eh.e_shoff = shoff;
	eh.e_ehsize = sizeof(Elf64_Ehdr);
	eh.e_shentsize = sizeof(Elf64_Shdr);
	eh.e_shnum = uint16_t(out.size());
	eh.e_shstrndx = uint16_t(out.size() - 1);
	std::memcpy(file_bytes.data(), &eh, sizeof(eh));
	return file_bytes;
}

} // namespace atlas::build_patch
