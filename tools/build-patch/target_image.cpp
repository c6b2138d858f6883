// SPDX-License-Identifier: MIT
#include "target_image.hpp"

#include "atlas/patch/format.hpp"
#include "atlas/patch/patch.hpp"

#include <cstring>
#include <elf.h>
#include <filesystem>
#include <fmt/format.h>

namespace atlas::build_patch
{

using patch::Errc;
using patch::make_error;
using patch::Result;

Result<TargetImage> TargetImage::read(const std::string &path)
{
	TargetImage t;
	t.path_ = path;
	auto bytes = patch::read_file(path);
	if (!bytes)
		return bytes.error();
	t.bytes_ = std::move(*bytes);
	auto id = patch::read_build_id(t.bytes_);
	if (!id)
		return make_error(id.error().code, fmt::format("{}: {}", path, id.error().message));
	t.build_id_ = std::move(*id);
	auto syms = patch::read_symbols(t.bytes_);
	if (!syms)
		return make_error(syms.error().code,
		                  fmt::format("{}: {}", path, syms.error().message));
	t.symbols_ = std::move(*syms);
	t.symbols_path_ = path;
	if (t.symbols_.dynamic) {
		const std::string hex = patch::to_hex(t.build_id_);
		const std::string debug =
		    "/usr/lib/debug/.build-id/" + hex.substr(0, 2) + "/" + hex.substr(2) + ".debug";
		if (!std::filesystem::exists(debug))
			return make_error(
			    Errc::not_found,
			    fmt::format("{} is stripped (no .symtab) and {} does not "
			                "exist: build the target unstripped or install "
			                "its debug file",
			                path, debug));
		auto dbytes = patch::read_file(debug);
		if (!dbytes)
			return dbytes.error();
		auto dsyms = patch::read_symbols(*dbytes);
		if (!dsyms || dsyms->dynamic)
			return make_error(Errc::not_found,
			                  fmt::format("debug file {} has no .symtab", debug));
		t.symbols_ = std::move(*dsyms);
		t.symbols_path_ = debug;
	}

	// The section table: where each loaded section's bytes are in the file.
	const auto &b = t.bytes_;
	Elf64_Ehdr eh;
	std::memcpy(&eh, b.data(), sizeof(eh)); // read_build_id checked the header
	t.pie_ = eh.e_type == ET_DYN;
	if (eh.e_shoff && eh.e_shentsize == sizeof(Elf64_Shdr) &&
	    eh.e_shoff + uint64_t(eh.e_shnum) * sizeof(Elf64_Shdr) <= b.size()) {
		for (unsigned i = 1; i < eh.e_shnum; i++) {
			Elf64_Shdr sh;
			std::memcpy(&sh, b.data() + eh.e_shoff + i * sizeof(Elf64_Shdr),
			            sizeof(sh));
			if ((sh.sh_flags & SHF_ALLOC) && sh.sh_type != SHT_NOBITS &&
			    sh.sh_offset + sh.sh_size <= b.size())
				t.ranges_.push_back({sh.sh_addr, sh.sh_offset, sh.sh_size});
		}
	}
	return t;
}

std::optional<std::span<const uint8_t>> TargetImage::bytes_at(uint64_t address, uint64_t size) const
{
	for (const Range &r : ranges_)
		if (address >= r.address && address + size <= r.address + r.size)
			return std::span<const uint8_t>(
			    bytes_.data() + r.offset + (address - r.address), size);
	return std::nullopt;
}

} // namespace atlas::build_patch
