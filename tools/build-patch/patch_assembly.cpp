// SPDX-License-Identifier: MIT
#include "patch_assembly.hpp"

#include "eh_frame.hpp"
#include "elf_writer.hpp"

#include <elf.h>
#include <fmt/format.h>
#include <map>
#include <set>

namespace atlas::build_patch
{

using patch::Errc;
using patch::make_error;
using patch::Result;

namespace
{

// The personality pointer of C++ unwind tables: a datum each object defines for itself.
bool is_personality_ref(const std::string &name)
{
	return name.starts_with("DW.ref.");
}

bool is_named(const ObjSymbol &s)
{
	return s.type == STT_FUNC || s.type == STT_OBJECT || s.type == STT_TLS;
}

// The FUNC/OBJECT/TLS symbol whose bytes a relocation points into, if any (string literals
// and constant pools have none: they go with the code that uses them).
std::optional<uint32_t> owner_of(const ObjectFile &obj, const ObjRelocation &r)
{
	const ObjSymbol &s = obj.symbols()[r.symbol];
	if (!s.in_section())
		return std::nullopt;
	if (is_named(s))
		return r.symbol;
	const ObjSection &sec = obj.sections()[s.section];
	if (sec.strings() || sec.constants())
		return std::nullopt;
	int64_t at = int64_t(s.value) + r.addend + pc_bias(r.type);
	return obj.owner(s.section, uint64_t(std::max<int64_t>(at, 0)));
}

struct Unit {
	const UnitDiff *in = nullptr;
	std::map<uint32_t, const IncludedFunction *> functions; // patched symbol -> entry
	std::set<uint32_t> own_data;
	std::set<uint32_t> sections; // patched sections the patch carries
	std::optional<EhFrameSlice> eh;
	std::map<uint32_t, uint32_t> out_section;
	std::map<uint32_t, uint32_t> out_symbol;

	const ObjectFile &p() const
	{
		return *in->patched;
	}
	const ObjectFile &o() const
	{
		return *in->original;
	}
	bool carried(uint32_t sym) const
	{
		return functions.count(sym) || own_data.count(sym) ||
		       is_personality_ref(p().symbols()[sym].name);
	}
};

class Assembler
{
public:
	Assembler(const std::vector<UnitDiff> &units, const std::string &file_name)
	    : writer_(file_name)
	{
		for (const UnitDiff &u : units) {
			Unit x;
			x.in = &u;
			for (const IncludedFunction &f : u.diff->functions)
				x.functions[f.symbol] = &f;
			x.own_data.insert(u.diff->own_data.begin(), u.diff->own_data.end());
			units_.push_back(std::move(x));
		}
	}

	Result<AssembledPatch> run()
	{
		for (Unit &u : units_)
			if (auto r = close_sections(u); !r)
				return r.error();
		create_sections_and_symbols();
		for (Unit &u : units_)
			if (auto r = rewrite_relocations(u); !r)
				return r.error();
		name_replacements();

		AssembledPatch out;
		for (size_t i = 0; i < units_.size(); i++) {
			const Unit &u = units_[i];
			for (const auto &[sym, f] : u.functions) {
				if (!f->redirected() || duplicates_.count({&u, sym}))
					continue;
				const ObjSymbol &os = u.o().symbols()[*f->original];
				out.redirects.push_back(
				    {writer_.symbol(u.out_symbol.at(sym)).name, os.name,
				     os.local() ? u.o().source_name() : std::string(), i,
				     *f->original});
			}
			out.sections += u.sections.size();
			out.fdes += u.eh ? u.eh->fdes : 0;
		}
		out.references = references_;
		out.object = writer_.write();
		return out;
	}

private:
	// The sections the patch carries: those of the included functions and, transitively,
	// whatever their relocations point into that the program does not provide (string
	// literals, constants, jump tables, own data), then what the kept FDEs point into
	// (exception tables, the personality pointer).
	Result<void> close_sections(Unit &u)
	{
		const ObjectFile &p = u.p();
		std::vector<uint32_t> work;
		for (const auto &[sym, f] : u.functions)
			work.push_back(p.symbols()[sym].section);
		auto follow = [&](const ObjRelocation &r) {
			const ObjSymbol &s = p.symbols()[r.symbol];
			if (!s.in_section())
				return;
			auto own = owner_of(p, r);
			if (!own)
				work.push_back(s.section);
			else if (u.carried(*own))
				work.push_back(p.symbols()[*own].section);
		};
		auto drain = [&] {
			while (!work.empty()) {
				uint32_t sec = work.back();
				work.pop_back();
				if (!u.sections.insert(sec).second)
					continue;
				for (const ObjRelocation &r : p.relocations(sec))
					follow(r);
			}
		};
		drain();
		for (uint32_t i = 1; i < p.sections().size(); i++) {
			if (p.sections()[i].name != ".eh_frame" || p.sections()[i].bytes.empty())
				continue;
			auto slice = filter_eh_frame(p, i, [&](uint32_t sec) {
				return u.sections.count(sec) && p.sections()[sec].exec();
			});
			if (!slice)
				return slice.error();
			if (slice->bytes.size() % 4)
				return make_error(
				    Errc::invalid_format,
				    fmt::format("{}: .eh_frame records are not 4-byte "
				                "aligned",
				                p.path()));
			for (const ObjRelocation &r : slice->relocations)
				follow(r);
			u.eh = std::move(*slice);
			break;
		}
		drain();
		for (uint32_t sec : u.sections) {
			const ObjSection &s = p.sections()[sec];
			if (s.tls())
				return make_error(
				    Errc::unsupported,
				    fmt::format("{}: the patch would carry thread-local "
				                "section {}: new TLS cannot be patched",
				                p.path(), s.name));
			if (!s.alloc())
				return make_error(
				    Errc::internal,
				    fmt::format("{}: the patch would carry section {}, which "
				                "is not loaded",
				                p.path(), s.name));
		}
		return {};
	}

	void create_sections_and_symbols()
	{
		for (Unit &u : units_) {
			const ObjectFile &p = u.p();
			for (uint32_t sec : u.sections) {
				const ObjSection &s = p.sections()[sec];
				OutSection o;
				o.name = s.name;
				o.type = s.type;
				o.flags = s.flags;
				o.align = s.align;
				o.entsize = s.entsize;
				o.size = s.size;
				o.bytes = s.bytes;
				u.out_section[sec] = writer_.add_section(std::move(o));
			}
			if (u.eh && !u.eh->bytes.empty() && !eh_frame_) {
				OutSection o;
				o.name = ".eh_frame";
				o.type = SHT_PROGBITS;
				o.flags = SHF_ALLOC;
				o.align = 8;
				eh_frame_ = writer_.add_section(std::move(o));
			}
			for (uint32_t i = 1; i < p.symbols().size(); i++) {
				const ObjSymbol &s = p.symbols()[i];
				if (!s.in_section() || !is_named(s) || !u.sections.count(s.section))
					continue;
				OutSymbol o;
				o.name = s.name;
				o.type = s.type;
				o.bind = s.bind;
				o.other = s.other;
				o.section = u.out_section.at(s.section);
				o.value = s.value;
				o.size = s.size;
				auto f = u.functions.find(i);
				bool replacement =
				    f != u.functions.end() && f->second->redirected();
				// An inline function or template instance every unit defines (a
				// COMDAT group): the first unit's copy replaces it, the others stay
				// private.
				if (replacement && !s.local() &&
				    !replaced_globals_.insert(s.name).second) {
					replacement = false;
					duplicates_.insert({&u, i});
					// Renamed: one name, one definition in the patch (the
					// replacement is the first unit's).
					o.name = fmt::format("{}.atlas.copy.{}", s.name, ++copies_);
				}
				if (replacement) {
					// Bound by the loader to the original entry.
					o.bind = STB_GLOBAL;
					o.other = STV_DEFAULT;
				} else if (!u.carried(i) || duplicates_.count({&u, i})) {
					// Shares a section with something carried: a private copy.
					o.bind = STB_LOCAL;
				}
				uint32_t h = writer_.add_symbol(o);
				u.out_symbol[i] = h;
				if (replacement && s.local())
					renamed_.push_back(h);
				else if (o.bind != STB_LOCAL)
					globals_.emplace(o.name, h);
			}
		}
	}

	uint32_t undefined(const ObjSymbol &s)
	{
		if (auto it = globals_.find(s.name); it != globals_.end())
			return it->second;
		if (auto it = undefined_.find(s.name); it != undefined_.end())
			return it->second;
		OutSymbol o;
		o.name = s.name;
		o.type = s.type == STT_TLS ? STT_TLS : s.type == STT_SECTION ? STT_NOTYPE : s.type;
		o.bind = s.bind == STB_WEAK ? STB_WEAK : STB_GLOBAL;
		uint32_t h = writer_.add_symbol(o);
		undefined_.emplace(s.name, h);
		return h;
	}

	// The undefined stand-in for a symbol of the program the patch cannot name globally: a
	// local of unit `unit` (`target`, symbol `original` of its original object), or a hidden
	// global (unit empty).
	uint32_t stand_in(const std::string &file, const std::string &name, uint8_t type,
	                  std::optional<size_t> unit, uint32_t original)
	{
		auto key = std::make_pair(file, name);
		if (auto it = stand_ins_.find(key); it != stand_ins_.end())
			return it->second;
		OutSymbol o;
		o.name = (file.empty() ? std::string("hidden") : file) + ":" + name;
		o.type = type == STT_TLS ? STT_TLS : type == STT_SECTION ? STT_NOTYPE : type;
		o.bind = STB_GLOBAL;
		uint32_t h = writer_.add_symbol(o);
		stand_ins_.emplace(key, h);
		references_.push_back({o.name, name, file, unit, original});
		return h;
	}

	static bool hidden(const ObjSymbol &s)
	{
		const int v = ELF64_ST_VISIBILITY(s.other);
		return v == STV_HIDDEN || v == STV_INTERNAL;
	}

	Result<OutRelocation> map_relocation(Unit &u, bool from_code, const ObjRelocation &r)
	{
		const ObjectFile &p = u.p();
		const ObjSymbol &s = p.symbols()[r.symbol];
		OutRelocation out;
		out.offset = r.offset;
		out.type = r.type;
		if (!s.defined() || s.section == SHN_COMMON) {
			out.symbol = hidden(s) ? stand_in("", s.name, s.type, std::nullopt, 0)
			                       : undefined(s);
			out.addend = r.addend;
			return out;
		}
		if (s.section == SHN_ABS) {
			OutSymbol a;
			a.name = s.name;
			a.type = s.type;
			a.section = SHN_ABS;
			a.value = s.value;
			out.symbol = writer_.add_symbol(a);
			out.addend = r.addend;
			return out;
		}
		const int64_t off = int64_t(s.value) + r.addend;
		auto own = owner_of(p, r);
		if (own && !u.functions.count(*own))
			own = entry_of_alias(u, *own);
		if (u.sections.count(s.section)) {
			if (own) {
				auto f = u.functions.find(*own);
				const ObjSymbol &os = p.symbols()[*own];
				const bool entry = off + pc_bias(r.type) == int64_t(os.value);
				if (f != u.functions.end() && f->second->redirected() &&
				    !duplicates_.count({&u, *own}) && entry &&
				    (from_code || r.type == R_X86_64_64)) {
					out.symbol = u.out_symbol.at(*own);
					out.addend = off - int64_t(os.value);
					return out;
				}
			}
			out.symbol = writer_.section_symbol(u.out_section.at(s.section));
			out.addend = off;
			return out;
		}
		if (!own)
			return make_error(
			    Errc::internal,
			    fmt::format("{}: a relocation at 0x{:x} points into section "
			                "{}, which the patch does not carry and which "
			                "has no symbol there",
			                p.path(), r.offset, p.sections()[s.section].name));
		const ObjSymbol &os = p.symbols()[*own];
		out.addend = off - int64_t(os.value);
		if (!os.local()) {
			// A hidden global is local in the linked target: named by a reference.
			out.symbol = hidden(os) ? stand_in("", os.name, os.type, std::nullopt, 0)
			                        : undefined(os);
			return out;
		}
		auto orig = u.in->diff->match.original_of[*own];
		if (!orig)
			return make_error(Errc::internal,
			                  fmt::format("{}: '{}' is neither in the patch nor in the "
			                              "original object",
			                              p.path(), os.name));
		out.symbol = stand_in(u.o().source_name(), u.o().symbols()[*orig].name, os.type,
		                      size_t(&u - units_.data()), *orig);
		return out;
	}

	// The carried function an alias (`f.localalias`) names, or the symbol itself.
	static uint32_t entry_of_alias(const Unit &u, uint32_t sym)
	{
		const ObjSymbol &a = u.p().symbols()[sym];
		for (const auto &[f, entry] : u.functions) {
			const ObjSymbol &b = u.p().symbols()[f];
			if (a.type == STT_FUNC && b.section == a.section && b.value == a.value)
				return f;
		}
		return sym;
	}

	Result<void> rewrite_relocations(Unit &u)
	{
		const ObjectFile &p = u.p();
		for (uint32_t sec : u.sections) {
			OutSection &os = writer_.section(u.out_section.at(sec));
			for (const ObjRelocation &r : p.relocations(sec)) {
				auto m = map_relocation(u, p.sections()[sec].exec(), r);
				if (!m)
					return m.error();
				os.relocations.push_back(*m);
			}
		}
		if (u.eh && !u.eh->bytes.empty()) {
			OutSection &eh = writer_.section(eh_frame_);
			const uint64_t base = eh.bytes.size();
			eh.bytes.insert(eh.bytes.end(), u.eh->bytes.begin(), u.eh->bytes.end());
			for (const ObjRelocation &r : u.eh->relocations) {
				auto m = map_relocation(u, false, r);
				if (!m)
					return m.error();
				m->offset += base;
				writer_.section(eh_frame_).relocations.push_back(*m);
			}
			writer_.section(eh_frame_).size = writer_.section(eh_frame_).bytes.size();
		}
		return {};
	}

	// A static function's replacement becomes global: its name must not meet another
	// global or undefined name of the patch.
	void name_replacements()
	{
		std::set<std::string> taken;
		for (const auto &[name, h] : globals_)
			taken.insert(name);
		for (const auto &[name, h] : undefined_)
			taken.insert(name);
		for (uint32_t h : renamed_) {
			OutSymbol &s = writer_.symbol(h);
			std::string name = s.name;
			for (int n = 2; taken.count(name); n++)
				name = fmt::format("{}.atlas.{}", s.name, n);
			s.name = name;
			taken.insert(name);
		}
	}

	RelocatableWriter writer_;
	std::vector<Unit> units_;
	uint32_t eh_frame_ = 0;
	std::map<std::string, uint32_t> globals_;   // defined globals by name
	std::map<std::string, uint32_t> undefined_; // undefined by name
	std::map<std::pair<std::string, std::string>, uint32_t> stand_ins_;
	std::vector<uint32_t> renamed_; // replacements of local functions
	std::set<std::string> replaced_globals_;
	std::set<std::pair<const Unit *, uint32_t>> duplicates_; // second copies of COMDAT code
	size_t copies_ = 0;
	std::vector<PlannedReference> references_;
};

} // namespace

Result<AssembledPatch> assemble_patch(const std::vector<UnitDiff> &units,
                                      const std::string &file_name)
{
	Assembler a(units, file_name);
	return a.run();
}

} // namespace atlas::build_patch
