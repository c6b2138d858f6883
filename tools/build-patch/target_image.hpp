// SPDX-License-Identifier: MIT
// The program being patched, as the builder needs it: its build-id, its symbol table (its own
// .symtab, or its separate debug file's when it is stripped) and the bytes of its code.
#pragma once

#include "atlas/patch/result.hpp"
#include "atlas/patch/target.hpp"

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace atlas::build_patch
{

class TargetImage
{
public:
	static patch::Result<TargetImage> read(const std::string &path);

	const std::string &path() const noexcept
	{
		return path_;
	}
	// Where the symbols (and DWARF) come from: the target itself or its debug file.
	const std::string &symbols_path() const noexcept
	{
		return symbols_path_;
	}
	const std::vector<uint8_t> &build_id() const noexcept
	{
		return build_id_;
	}
	const patch::TargetSymbols &symbols() const noexcept
	{
		return symbols_;
	}
	bool position_independent() const noexcept
	{
		return pie_;
	}
	// The file bytes of [address, address + size) of the loaded image, if one section holds
	// them all.
	std::optional<std::span<const uint8_t>> bytes_at(uint64_t address, uint64_t size) const;

private:
	struct Range {
		uint64_t address, offset, size;
	};
	std::string path_;
	std::string symbols_path_;
	std::vector<uint8_t> bytes_;
	std::vector<uint8_t> build_id_;
	patch::TargetSymbols symbols_;
	std::vector<Range> ranges_;
	bool pie_ = false;
};

} // namespace atlas::build_patch
