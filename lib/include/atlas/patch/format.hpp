// SPDX-License-Identifier: MIT
// The patch metadata: what the `.atlas.patch` section of a patch object says, and its on-disk
// encoding (docs/patch-format.md describes every byte). The encoding is little-endian whatever
// the host, fixed-size records plus a string pool, and strictly validated when decoded.
#pragma once

#include "atlas/patch/result.hpp"

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

// The public API: visible outside libatlas.so, whose other symbols are hidden (lib/libatlas.cmake).
#pragma GCC visibility push(default)

namespace atlas::patch
{

inline constexpr std::string_view metadata_section_name = ".atlas.patch";
// Any change to the encoding increments this; readers refuse every version they do not know.
inline constexpr uint32_t format_version = 1;
inline constexpr std::array<char, 8> metadata_magic = {'A', 'T', 'L', 'A', 'S', 'P', 'A', 'T'};

inline constexpr size_t metadata_header_size = 88;
inline constexpr size_t redirect_record_size = 32;
inline constexpr size_t reference_record_size = 32;
inline constexpr size_t content_hash_offset = 56; // within the metadata section
inline constexpr size_t content_hash_size = 32;   // SHA-256
inline constexpr size_t max_build_id_size = 64;
inline constexpr size_t max_patch_name_size = 128;

// Patch flags (header field `flags`). Unknown bits are refused.
inline constexpr uint32_t flag_requires_global = 1u << 0;
inline constexpr uint32_t known_patch_flags = flag_requires_global;

// Which symbol of a target object is meant. `name` alone suffices for a unique name; local
// symbols that share a name (two `static int helper()` in different files) are told apart by
// the STT_FILE symbol they follow (`file`), their index in the object's .symtab, and/or their
// value (address relative to the object's load base). Every given field must match.
struct SymbolRef {
	std::string name;
	std::string file; // empty: not given
	std::optional<uint32_t> symtab_index;
	std::optional<uint64_t> address;

	bool operator==(const SymbolRef &) const = default;
};

// Redirect the target function `target` to the patch's function `replacement` (a defined
// STT_FUNC symbol of the patch object).
struct Redirect {
	SymbolRef target;
	std::string replacement;

	bool operator==(const Redirect &) const = default;
};

// Bind the patch's undefined symbol `patch_symbol` to `target` in `object` (empty: the target
// object). Undefined symbols without a reference resolve by the loader's normal lookup.
struct Reference {
	std::string patch_symbol;
	std::string object;
	SymbolRef target;

	bool operator==(const Reference &) const = default;
};

using ContentHash = std::array<uint8_t, content_hash_size>;

struct Metadata {
	uint32_t version = format_version;
	uint32_t flags = 0;
	std::string name;
	ContentHash content_hash{};
	std::string target_path;
	std::vector<uint8_t> target_build_id;
	std::vector<Redirect> redirects;
	std::vector<Reference> references;

	bool requires_global() const noexcept
	{
		return flags & flag_requires_global;
	}
	bool operator==(const Metadata &) const = default;
};

// A patch's identity: re-applying the same identity is "already applied".
struct Identity {
	std::string name;
	ContentHash content_hash{};
	std::vector<uint8_t> target_build_id;

	bool operator==(const Identity &) const = default;
	// "<name>@<hash hex>/<build-id hex>"
	std::string to_string() const;
};

Identity identity_of(const Metadata &metadata);

// Lower-case hex of bytes.
std::string to_hex(std::span<const uint8_t> bytes);
// Inverse of to_hex; an error names the offending character.
Expected<std::vector<uint8_t>> from_hex(std::string_view hex);

// Encode (validating every field first) and decode (validating every byte) the section.
Expected<std::vector<uint8_t>> encode_metadata(const Metadata &metadata);
Expected<Metadata> decode_metadata(std::span<const uint8_t> section);

} // namespace atlas::patch

#pragma GCC visibility pop
