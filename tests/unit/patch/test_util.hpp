// SPDX-License-Identifier: MIT
// Helpers of the patch unit tests: test files, raw ELF editing for crafted malformed patches,
// running atlas-mkpatch.
#pragma once

#include "atlas/patch/patch.hpp"

#include <cstdint>
#include <cstring>
#include <elf.h>
#include <string>
#include <vector>

namespace atlas::patch::test
{

std::vector<uint8_t> load(const std::string &path);
std::string bin(const std::string &name);       // a file of the test build directory
std::string patch_src(const std::string &name); // a file of tests/unit/patch/patches

// Locates headers and entries in a (valid) ELF64 image so that a test can corrupt exactly
// one field. Offsets come from the raw headers, which the tests read through these typed
// accessors (memcpy: the image may be unaligned).
class ElfBytes
{
public:
	explicit ElfBytes(std::vector<uint8_t> image) : bytes(std::move(image)) {}

	Elf64_Ehdr ehdr() const;
	void set_ehdr(const Elf64_Ehdr &);
	size_t section_count() const;
	size_t section_index(const std::string &name) const; // 0 if missing
	Elf64_Shdr shdr(size_t index) const;
	void set_shdr(size_t index, const Elf64_Shdr &);
	size_t symbol_index(const std::string &name) const; // 0 if missing
	Elf64_Sym sym(size_t index) const;
	void set_sym(size_t index, const Elf64_Sym &);
	Elf64_Rela rela(const std::string &section, size_t k) const;
	void set_rela(const std::string &section, size_t k, const Elf64_Rela &);
	// Offset in the file of the metadata section's first byte.
	size_t metadata_offset() const;

	std::vector<uint8_t> bytes;

private:
	template <class T>
	T get(size_t off) const
	{
		T v;
		std::memcpy(&v, bytes.data() + off, sizeof(v));
		return v;
	}
	template <class T>
	void put(size_t off, const T &v)
	{
		std::memcpy(bytes.data() + off, &v, sizeof(v));
	}
	std::string section_name(size_t index) const;
};

struct RunResult {
	int status = -1;
	std::string output; // stdout and stderr
};

// Runs a shell command line (paths in tests contain no spaces or quotes).
RunResult run(const std::string &command);

} // namespace atlas::patch::test
