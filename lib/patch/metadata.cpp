// SPDX-License-Identifier: MIT
// Encoding and decoding of the `.atlas.patch` metadata section (docs/patch-format.md).
#include "atlas/patch/format.hpp"

#include "internal.hpp"

#include <algorithm>
#include <cstring>
#include <fmt/format.h>
#include <map>

namespace atlas::patch
{

namespace
{

// Byte-wise little-endian access: independent of host byte order and of the section's
// alignment in the file (a crafted file may misalign it).
uint32_t get_u32(std::span<const uint8_t> b, size_t off)
{
	return uint32_t(b[off]) | uint32_t(b[off + 1]) << 8 | uint32_t(b[off + 2]) << 16 |
	       uint32_t(b[off + 3]) << 24;
}

uint64_t get_u64(std::span<const uint8_t> b, size_t off)
{
	return uint64_t(get_u32(b, off)) | uint64_t(get_u32(b, off + 4)) << 32;
}

void put_u32(std::vector<uint8_t> &b, size_t off, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		b[off + i] = uint8_t(v >> (8 * i));
}

void put_u64(std::vector<uint8_t> &b, size_t off, uint64_t v)
{
	put_u32(b, off, uint32_t(v));
	put_u32(b, off + 4, uint32_t(v >> 32));
}

// Per-record flags of redirect and reference records.
constexpr uint32_t rec_has_symtab_index = 1u << 0;
constexpr uint32_t rec_has_address = 1u << 1;
constexpr uint32_t rec_known_flags = rec_has_symtab_index | rec_has_address;

bool valid_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '-' || c == '+';
}

// The checks that do not depend on the encoding: shared by encode (refuse to write a patch the
// reader would refuse) and decode.
Expected<void> validate_fields(const Metadata &m)
{
	if (m.version != format_version)
		return make_error(Errc::version_mismatch,
		                  fmt::format("metadata format version {} is not supported (this "
		                              "reader knows version {}): rebuild the patch with "
		                              "this atlas",
		                              m.version, format_version));
	if (m.flags & ~known_patch_flags)
		return make_error(
		    Errc::unsupported,
		    fmt::format("unknown patch flags 0x{:x}: the patch was written for "
		                "a newer atlas",
		                m.flags & ~known_patch_flags));
	if (m.name.empty() || m.name.size() > max_patch_name_size ||
	    !std::all_of(m.name.begin(), m.name.end(), valid_name_char))
		return make_error(Errc::invalid_format,
		                  fmt::format("patch name '{}' is invalid: use 1 to {} characters "
		                              "from [A-Za-z0-9._+-]",
		                              m.name, max_patch_name_size));
	if (m.target_path.empty())
		return make_error(Errc::invalid_format, "patch names no target object path");
	if (m.target_build_id.empty() || m.target_build_id.size() > max_build_id_size)
		return make_error(Errc::invalid_format,
		                  fmt::format("target build-id has {} bytes, expected 1 to {}",
		                              m.target_build_id.size(), max_build_id_size));
	if (m.redirects.empty())
		return make_error(Errc::invalid_format,
		                  "patch redirects no function: a patch must replace at least one "
		                  "target function");
	for (size_t i = 0; i < m.redirects.size(); i++) {
		const Redirect &r = m.redirects[i];
		if (r.target.name.empty() || r.replacement.empty())
			return make_error(Errc::invalid_format,
			                  fmt::format("redirect #{} has an empty target or "
			                              "replacement symbol name",
			                              i));
		for (size_t j = 0; j < i; j++)
			if (m.redirects[j].target == r.target)
				return make_error(
				    Errc::invalid_format,
				    fmt::format("target function {} is redirected twice (redirects "
				                "#{} and #{})",
				                detail::describe_symbol_ref(r.target), j, i));
	}
	for (size_t i = 0; i < m.references.size(); i++) {
		const Reference &r = m.references[i];
		if (r.patch_symbol.empty() || r.target.name.empty())
			return make_error(Errc::invalid_format,
			                  fmt::format("reference #{} has an empty patch or target "
			                              "symbol name",
			                              i));
		for (size_t j = 0; j < i; j++)
			if (m.references[j].patch_symbol == r.patch_symbol)
				return make_error(Errc::invalid_format,
				                  fmt::format("patch symbol '{}' is bound twice "
				                              "(references #{} and #{})",
				                              r.patch_symbol, j, i));
	}
	return {};
}

class PoolBuilder
{
public:
	PoolBuilder()
	{
		pool_.push_back(0); // offset 0: the empty string, "not given"
	}
	uint32_t add_string(const std::string &s)
	{
		if (s.empty())
			return 0;
		auto it = offsets_.find(s);
		if (it != offsets_.end())
			return it->second;
		uint32_t off = uint32_t(pool_.size());
		pool_.insert(pool_.end(), s.begin(), s.end());
		pool_.push_back(0);
		offsets_.emplace(s, off);
		return off;
	}
	uint32_t add_bytes(std::span<const uint8_t> b)
	{
		uint32_t off = uint32_t(pool_.size());
		pool_.insert(pool_.end(), b.begin(), b.end());
		return off;
	}
	const std::vector<uint8_t> &bytes() const
	{
		return pool_;
	}

private:
	std::vector<uint8_t> pool_;
	std::map<std::string, uint32_t> offsets_;
};

bool has_nul(const std::string &s)
{
	return s.find('\0') != std::string::npos;
}

bool ref_has_nul(const SymbolRef &r)
{
	return has_nul(r.name) || has_nul(r.file);
}

// A decoded string: NUL-terminated inside the pool.
Expected<std::string> pool_string(std::span<const uint8_t> pool, uint32_t off, const char *what)
{
	if (off >= pool.size())
		return make_error(
		    Errc::invalid_format,
		    fmt::format("metadata: {} string offset {} is beyond the string pool "
		                "({} bytes)",
		                what, off, pool.size()));
	const uint8_t *begin = pool.data() + off;
	const void *nul = std::memchr(begin, 0, pool.size() - off);
	if (!nul)
		return make_error(
		    Errc::invalid_format,
		    fmt::format("metadata: {} string at offset {} is not NUL-terminated "
		                "inside the string pool",
		                what, off));
	return std::string(reinterpret_cast<const char *>(begin),
	                   static_cast<const uint8_t *>(nul) - begin);
}

Expected<SymbolRef> decode_ref(std::span<const uint8_t> rec, std::span<const uint8_t> pool,
                               size_t name_off, const char *what)
{
	SymbolRef r;
	auto name = pool_string(pool, get_u32(rec, name_off), what);
	if (!name)
		return name.error();
	auto file = pool_string(pool, get_u32(rec, name_off + 4), what);
	if (!file)
		return file.error();
	uint32_t flags = get_u32(rec, name_off + 8);
	if (flags & ~rec_known_flags)
		return make_error(Errc::invalid_format,
		                  fmt::format("metadata: {} record has unknown flags 0x{:x}", what,
		                              flags & ~rec_known_flags));
	r.name = std::move(*name);
	r.file = std::move(*file);
	uint32_t index = get_u32(rec, name_off + 12);
	if (flags & rec_has_symtab_index)
		r.symtab_index = index;
	else if (index)
		return make_error(Errc::invalid_format,
		                  fmt::format("metadata: {} record has a symtab index but no flag "
		                              "saying so",
		                              what));
	uint64_t address = get_u64(rec, 24);
	if (flags & rec_has_address)
		r.address = address;
	else if (address)
		return make_error(Errc::invalid_format,
		                  fmt::format("metadata: {} record has an address but no flag "
		                              "saying so",
		                              what));
	return r;
}

void encode_ref(std::vector<uint8_t> &out, size_t rec, size_t name_off, PoolBuilder &pool,
                const SymbolRef &r)
{
	put_u32(out, rec + name_off, pool.add_string(r.name));
	put_u32(out, rec + name_off + 4, pool.add_string(r.file));
	uint32_t flags =
	    (r.symtab_index ? rec_has_symtab_index : 0) | (r.address ? rec_has_address : 0);
	put_u32(out, rec + name_off + 8, flags);
	put_u32(out, rec + name_off + 12, r.symtab_index.value_or(0));
	put_u64(out, rec + 24, r.address.value_or(0));
}

} // namespace

std::string to_hex(std::span<const uint8_t> bytes)
{
	static const char digits[] = "0123456789abcdef";
	std::string s;
	s.reserve(bytes.size() * 2);
	for (uint8_t b : bytes) {
		s.push_back(digits[b >> 4]);
		s.push_back(digits[b & 15]);
	}
	return s;
}

Expected<std::vector<uint8_t>> from_hex(std::string_view hex)
{
	return detail::guard([&]() -> Expected<std::vector<uint8_t>> {
		if (hex.size() % 2)
			return make_error(Errc::invalid_format,
			                  fmt::format("hex string '{}' has an odd length", hex));
		auto nibble = [](char c) -> int {
			if (c >= '0' && c <= '9')
				return c - '0';
			if (c >= 'a' && c <= 'f')
				return c - 'a' + 10;
			if (c >= 'A' && c <= 'F')
				return c - 'A' + 10;
			return -1;
		};
		std::vector<uint8_t> out;
		for (size_t i = 0; i < hex.size(); i += 2) {
			int hi = nibble(hex[i]), lo = nibble(hex[i + 1]);
			if (hi < 0 || lo < 0)
				return make_error(Errc::invalid_format,
				                  fmt::format("'{}' is not a hex digit in '{}'",
				                              hi < 0 ? hex[i] : hex[i + 1], hex));
			out.push_back(uint8_t(hi << 4 | lo));
		}
		return out;
	});
}

std::string Identity::to_string() const
{
	return fmt::format("{}@{}/{}", name, to_hex(content_hash), to_hex(target_build_id));
}

Identity identity_of(const Metadata &m)
{
	return Identity{m.name, m.content_hash, m.target_build_id};
}

Expected<std::vector<uint8_t>> encode_metadata(const Metadata &m)
{
	return detail::guard([&]() -> Expected<std::vector<uint8_t>> {
		if (auto v = validate_fields(m); !v)
			return v.error();
		bool nul = has_nul(m.name) || has_nul(m.target_path);
		for (const Redirect &r : m.redirects)
			nul = nul || has_nul(r.replacement) || ref_has_nul(r.target);
		for (const Reference &r : m.references)
			nul = nul || has_nul(r.patch_symbol) || has_nul(r.object) ||
			      ref_has_nul(r.target);
		if (nul)
			return make_error(Errc::invalid_format,
			                  "metadata strings must not contain NUL characters");
		if (m.redirects.size() > 1'000'000 || m.references.size() > 1'000'000)
			return make_error(Errc::invalid_format, "too many redirects or references");

		size_t records = metadata_header_size + m.redirects.size() * redirect_record_size +
		                 m.references.size() * reference_record_size;
		std::vector<uint8_t> out(records, 0);
		PoolBuilder pool;

		std::copy(metadata_magic.begin(), metadata_magic.end(), out.begin());
		put_u32(out, 8, m.version);
		put_u32(out, 12, metadata_header_size);
		put_u32(out, 16, m.flags);
		put_u32(out, 20, pool.add_string(m.name));
		put_u32(out, 24, pool.add_string(m.target_path));
		put_u32(out, 28, pool.add_bytes(m.target_build_id));
		put_u32(out, 32, uint32_t(m.target_build_id.size()));
		put_u32(out, 36, uint32_t(m.redirects.size()));
		put_u32(out, 40, redirect_record_size);
		put_u32(out, 44, uint32_t(m.references.size()));
		put_u32(out, 48, reference_record_size);
		std::copy(m.content_hash.begin(), m.content_hash.end(),
		          out.begin() + content_hash_offset);

		size_t rec = metadata_header_size;
		for (const Redirect &r : m.redirects) {
			put_u32(out, rec, pool.add_string(r.replacement));
			encode_ref(out, rec, 4, pool, r.target);
			rec += redirect_record_size;
		}
		for (const Reference &r : m.references) {
			put_u32(out, rec, pool.add_string(r.patch_symbol));
			put_u32(out, rec + 4, pool.add_string(r.object));
			encode_ref(out, rec, 8, pool, r.target);
			rec += reference_record_size;
		}
		if (pool.bytes().size() > UINT32_MAX)
			return make_error(Errc::invalid_format,
			                  "metadata string pool exceeds 4 GiB");
		put_u32(out, 52, uint32_t(pool.bytes().size()));
		out.insert(out.end(), pool.bytes().begin(), pool.bytes().end());
		return out;
	});
}

Expected<Metadata> decode_metadata(std::span<const uint8_t> s)
{
	return detail::guard([&]() -> Expected<Metadata> {
		if (s.size() < metadata_header_size)
			return make_error(
			    Errc::invalid_format,
			    fmt::format("metadata section is truncated: {} bytes, the "
			                "header alone has {}",
			                s.size(), metadata_header_size));
		if (!std::equal(metadata_magic.begin(), metadata_magic.end(), s.begin()))
			return make_error(Errc::invalid_format,
			                  "metadata section does not start with the magic "
			                  "\"ATLASPAT\": not atlas patch metadata");
		Metadata m;
		m.version = get_u32(s, 8);
		// The version decides the layout of everything after it: check it first.
		if (m.version != format_version)
			return make_error(Errc::version_mismatch,
			                  fmt::format("metadata format version {} is not supported "
			                              "(this reader knows version {}): rebuild the "
			                              "patch with this atlas",
			                              m.version, format_version));
		uint32_t header_size = get_u32(s, 12);
		uint32_t redirect_count = get_u32(s, 36), redirect_size = get_u32(s, 40);
		uint32_t reference_count = get_u32(s, 44), reference_size = get_u32(s, 48);
		uint32_t pool_size = get_u32(s, 52);
		if (header_size != metadata_header_size || redirect_size != redirect_record_size ||
		    reference_size != reference_record_size)
			return make_error(
			    Errc::invalid_format,
			    fmt::format("metadata header/record sizes {}/{}/{} differ "
			                "from version {}'s {}/{}/{}",
			                header_size, redirect_size, reference_size, format_version,
			                metadata_header_size, redirect_record_size,
			                reference_record_size));
		// 64-bit arithmetic: the counts are at most 2^32, the products cannot overflow.
		uint64_t expected = uint64_t(metadata_header_size) +
		                    uint64_t(redirect_count) * redirect_record_size +
		                    uint64_t(reference_count) * reference_record_size + pool_size;
		if (expected != s.size())
			return make_error(
			    Errc::invalid_format,
			    fmt::format("metadata section has {} bytes, but its header "
			                "describes {} ({} redirects, {} references, "
			                "{}-byte string pool)",
			                s.size(), expected, redirect_count, reference_count,
			                pool_size));
		auto pool = s.subspan(s.size() - pool_size);
		if (pool.empty() || pool[0] != 0)
			return make_error(Errc::invalid_format,
			                  "metadata string pool must start with a NUL byte");

		m.flags = get_u32(s, 16);
		auto name = pool_string(pool, get_u32(s, 20), "patch name");
		if (!name)
			return name.error();
		m.name = std::move(*name);
		auto path = pool_string(pool, get_u32(s, 24), "target path");
		if (!path)
			return path.error();
		m.target_path = std::move(*path);
		uint32_t bid_off = get_u32(s, 28), bid_size = get_u32(s, 32);
		if (uint64_t(bid_off) + bid_size > pool.size())
			return make_error(
			    Errc::invalid_format,
			    fmt::format("metadata: build-id ({} bytes at {}) lies beyond "
			                "the string pool ({} bytes)",
			                bid_size, bid_off, pool.size()));
		m.target_build_id.assign(pool.begin() + bid_off, pool.begin() + bid_off + bid_size);
		std::copy_n(s.begin() + content_hash_offset, content_hash_size,
		            m.content_hash.begin());

		size_t rec = metadata_header_size;
		for (uint32_t i = 0; i < redirect_count; i++, rec += redirect_record_size) {
			auto r = s.subspan(rec, redirect_record_size);
			if (get_u32(r, 20) != 0)
				return make_error(
				    Errc::invalid_format,
				    fmt::format("metadata: redirect #{} has a non-zero "
				                "reserved field",
				                i));
			auto repl = pool_string(pool, get_u32(r, 0), "replacement symbol");
			if (!repl)
				return repl.error();
			auto target = decode_ref(r, pool, 4, "redirect");
			if (!target)
				return target.error();
			m.redirects.push_back(Redirect{std::move(*target), std::move(*repl)});
		}
		for (uint32_t i = 0; i < reference_count; i++, rec += reference_record_size) {
			auto r = s.subspan(rec, reference_record_size);
			auto sym = pool_string(pool, get_u32(r, 0), "reference patch symbol");
			if (!sym)
				return sym.error();
			auto object = pool_string(pool, get_u32(r, 4), "reference object");
			if (!object)
				return object.error();
			auto target = decode_ref(r, pool, 8, "reference");
			if (!target)
				return target.error();
			m.references.push_back(
			    Reference{std::move(*sym), std::move(*object), std::move(*target)});
		}
		if (auto v = validate_fields(m); !v)
			return v.error();
		return m;
	});
}

} // namespace atlas::patch
