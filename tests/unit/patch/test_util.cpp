// SPDX-License-Identifier: MIT
#include "test_util.hpp"

#include <cstdio>
#include <stdexcept>
#include <sys/wait.h>

namespace atlas::patch::test
{

std::vector<uint8_t> load(const std::string &path)
{
	auto r = read_file(path);
	if (!r)
		throw std::runtime_error(r.error().message);
	return *r;
}

std::string bin(const std::string &name)
{
	return std::string(ATLAS_TEST_BIN_DIR) + "/" + name;
}

std::string patch_src(const std::string &name)
{
	return std::string(ATLAS_TEST_PATCH_DIR) + "/" + name;
}

Elf64_Ehdr ElfBytes::ehdr() const
{
	return get<Elf64_Ehdr>(0);
}

void ElfBytes::set_ehdr(const Elf64_Ehdr &e)
{
	put(0, e);
}

size_t ElfBytes::section_count() const
{
	return ehdr().e_shnum;
}

Elf64_Shdr ElfBytes::shdr(size_t index) const
{
	return get<Elf64_Shdr>(ehdr().e_shoff + index * sizeof(Elf64_Shdr));
}

void ElfBytes::set_shdr(size_t index, const Elf64_Shdr &s)
{
	put(ehdr().e_shoff + index * sizeof(Elf64_Shdr), s);
}

std::string ElfBytes::section_name(size_t index) const
{
	Elf64_Shdr strtab = shdr(ehdr().e_shstrndx);
	return reinterpret_cast<const char *>(bytes.data() + strtab.sh_offset +
	                                      shdr(index).sh_name);
}

size_t ElfBytes::section_index(const std::string &name) const
{
	for (size_t i = 1; i < section_count(); i++)
		if (section_name(i) == name)
			return i;
	return 0;
}

size_t ElfBytes::symbol_index(const std::string &name) const
{
	Elf64_Shdr st = shdr(section_index(".symtab"));
	Elf64_Shdr str = shdr(st.sh_link);
	for (size_t i = 1; i < st.sh_size / sizeof(Elf64_Sym); i++) {
		Elf64_Sym s = sym(i);
		if (name ==
		    reinterpret_cast<const char *>(bytes.data() + str.sh_offset + s.st_name))
			return i;
	}
	return 0;
}

Elf64_Sym ElfBytes::sym(size_t index) const
{
	return get<Elf64_Sym>(shdr(section_index(".symtab")).sh_offset + index * sizeof(Elf64_Sym));
}

void ElfBytes::set_sym(size_t index, const Elf64_Sym &s)
{
	put(shdr(section_index(".symtab")).sh_offset + index * sizeof(Elf64_Sym), s);
}

Elf64_Rela ElfBytes::rela(const std::string &section, size_t k) const
{
	return get<Elf64_Rela>(shdr(section_index(section)).sh_offset + k * sizeof(Elf64_Rela));
}

void ElfBytes::set_rela(const std::string &section, size_t k, const Elf64_Rela &r)
{
	put(shdr(section_index(section)).sh_offset + k * sizeof(Elf64_Rela), r);
}

size_t ElfBytes::metadata_offset() const
{
	return shdr(section_index(".atlas.patch")).sh_offset;
}

RunResult run(const std::string &command)
{
	RunResult r;
	FILE *p = popen((command + " 2>&1").c_str(), "r");
	if (!p)
		return r;
	char buf[4096];
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), p)) > 0)
		r.output.append(buf, n);
	int status = pclose(p);
	r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	return r;
}

} // namespace atlas::patch::test
