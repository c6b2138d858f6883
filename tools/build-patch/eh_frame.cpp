// SPDX-License-Identifier: MIT
#include "eh_frame.hpp"

#include <fmt/format.h>
#include <map>

namespace atlas::build_patch
{

using patch::Errc;
using patch::make_error;
using patch::Result;

namespace
{

uint32_t get_u32(const std::vector<uint8_t> &b, size_t off)
{
	return uint32_t(b[off]) | uint32_t(b[off + 1]) << 8 | uint32_t(b[off + 2]) << 16 |
	       uint32_t(b[off + 3]) << 24;
}

void put_u32(std::vector<uint8_t> &b, size_t off, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		b[off + size_t(i)] = uint8_t(v >> (8 * i));
}

struct Record {
	size_t offset = 0; // in the input
	size_t size = 0;   // including the length field
	bool cie = false;
	size_t cie_offset = 0; // for an FDE: its CIE in the input
};

} // namespace

Result<EhFrameSlice> filter_eh_frame(const ObjectFile &obj, uint32_t section,
                                     const std::function<bool(uint32_t)> &keep)
{
	const ObjSection &sec = obj.sections()[section];
	const std::vector<uint8_t> &in = sec.bytes;
	auto bad = [&](const std::string &what) {
		return make_error(Errc::invalid_format,
		                  fmt::format("{}: {}: {}", obj.path(), sec.name, what));
	};
	std::vector<Record> records;
	for (size_t off = 0; off + 4 <= in.size();) {
		uint32_t len = get_u32(in, off);
		if (len == 0) // terminator
			break;
		if (len == 0xffffffff)
			return bad("64-bit records are not supported");
		if (off + 4 + len > in.size() || len < 4)
			return bad(fmt::format("record at 0x{:x} runs past the section", off));
		Record r;
		r.offset = off;
		r.size = 4 + size_t(len);
		uint32_t id = get_u32(in, off + 4);
		r.cie = id == 0;
		if (!r.cie) {
			if (id > off + 4)
				return bad(
				    fmt::format("FDE at 0x{:x} points before the section", off));
			r.cie_offset = off + 4 - id;
		}
		records.push_back(r);
		off += r.size;
	}

	const auto &relocs = obj.relocations(section);
	auto relocs_in = [&](const Record &r) {
		std::vector<const ObjRelocation *> out;
		for (const ObjRelocation &e : relocs)
			if (e.offset >= r.offset && e.offset < r.offset + r.size)
				out.push_back(&e);
		return out;
	};

	EhFrameSlice slice;
	std::map<size_t, size_t> cie_at; // input offset -> output offset
	auto copy = [&](const Record &r) {
		size_t at = slice.bytes.size();
		slice.bytes.insert(slice.bytes.end(), in.begin() + int64_t(r.offset),
		                   in.begin() + int64_t(r.offset + r.size));
		for (const ObjRelocation *e : relocs_in(r)) {
			ObjRelocation c = *e;
			c.offset = e->offset - r.offset + at;
			slice.relocations.push_back(c);
		}
		return at;
	};
	for (const Record &r : records) {
		if (r.cie)
			continue;
		const ObjRelocation *begin = nullptr;
		for (const ObjRelocation &e : relocs)
			if (e.offset == r.offset + 8)
				begin = &e;
		if (!begin)
			return bad(fmt::format("FDE at 0x{:x} has no relocation for its initial "
			                       "location",
			                       r.offset));
		const ObjSymbol &s = obj.symbols()[begin->symbol];
		if (!s.in_section() || !keep(s.section))
			continue;
		auto cie = cie_at.find(r.cie_offset);
		if (cie == cie_at.end()) {
			const Record *c = nullptr;
			for (const Record &x : records)
				if (x.cie && x.offset == r.cie_offset)
					c = &x;
			if (!c)
				return bad(fmt::format("FDE at 0x{:x} points to 0x{:x}, not a CIE",
				                       r.offset, r.cie_offset));
			cie = cie_at.emplace(r.cie_offset, copy(*c)).first;
		}
		size_t at = copy(r);
		put_u32(slice.bytes, at + 4, uint32_t(at + 4 - cie->second));
		slice.fdes++;
	}
	return slice;
}

} // namespace atlas::build_patch
