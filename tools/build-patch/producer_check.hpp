// SPDX-License-Identifier: MIT
// The compiler flags a program was built with, as its DWARF says (DW_AT_producer of each
// compilation unit: gcc records the options that affect code generation), and the set a
// patchable program must have (`atlas build-patch --print-flags`).
#pragma once

#include "atlas/patch/result.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace atlas::build_patch
{

struct RequiredFlag {
	std::string flag;                  // what --print-flags prints
	std::vector<std::string> accepted; // producer-string options that satisfy it
	std::string why;
};

// The compile flags the builder requires, in the order --print-flags prints them.
const std::vector<RequiredFlag> &required_compile_flags();
// Link flags (not visible in DWARF; the build-id is checked directly).
const std::vector<RequiredFlag> &required_link_flags();

struct CompileUnit {
	std::string name;     // DW_AT_name: the source as the compiler was given it
	std::string comp_dir; // DW_AT_comp_dir
	std::string producer; // DW_AT_producer
};

// Every compilation unit of an ELF file's .debug_info (empty if it has none).
patch::Result<std::vector<CompileUnit>> read_compile_units(const std::string &path);

// A unit compiled by gcc or g++ (the units of assembly files and other tools are skipped).
bool is_gcc_unit(const CompileUnit &unit);

// The required compile flags missing from a producer string ("-ffunction-sections", ...),
// or the reason it is not gcc at all.
std::vector<std::string> missing_flags(std::string_view producer);

} // namespace atlas::build_patch
