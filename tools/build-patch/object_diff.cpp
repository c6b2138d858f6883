// SPDX-License-Identifier: MIT
#include "object_diff.hpp"

#include "symbol_names.hpp"

#include <algorithm>
#include <cstdlib>
#include <cxxabi.h>
#include <elf.h>
#include <fmt/format.h>
#include <map>
#include <set>
#include <tuple>

namespace atlas::build_patch
{

namespace
{

enum class Kind { function, data, tls };

std::optional<Kind> kind_of(const ObjectFile &obj, const ObjSymbol &s)
{
	if (!s.in_section() || s.name.empty())
		return std::nullopt;
	if (s.type == STT_FUNC && obj.sections()[s.section].exec())
		return Kind::function;
	if (s.type == STT_TLS || (s.type == STT_OBJECT && obj.sections()[s.section].tls()))
		return Kind::tls;
	if (s.type == STT_OBJECT)
		return Kind::data;
	return std::nullopt;
}

// The function a code section belongs to (its symbol at offset 0), if any.
std::optional<uint32_t> function_of(const ObjectFile &obj, uint32_t section)
{
	if (!obj.sections()[section].exec())
		return std::nullopt;
	auto own = obj.owner(section, 0);
	if (own && obj.symbols()[*own].type == STT_FUNC)
		return own;
	return std::nullopt;
}

// For each data symbol, the normalised names of the functions whose code refers to it: what
// tells two function-local statics of the same name apart (`calls.0` in f, `calls.1` in g).
std::map<uint32_t, std::set<std::string>> data_referrers(const ObjectFile &obj)
{
	std::map<uint32_t, std::set<std::string>> out;
	for (uint32_t sec = 1; sec < obj.sections().size(); sec++) {
		auto fn = function_of(obj, sec);
		if (!fn)
			continue;
		for (const ObjRelocation &r : obj.relocations(sec)) {
			RelocationTarget t = relocation_target(obj, r);
			if (t.kind == RelocationTarget::symbol &&
			    obj.symbols()[t.symbol_index].type != STT_FUNC)
				out[t.symbol_index].insert(
				    normalized_name(obj.symbols()[*fn].name));
		}
	}
	return out;
}

using GroupKey = std::tuple<Kind, std::string>;

std::map<GroupKey, std::vector<uint32_t>> group_symbols(const ObjectFile &obj,
                                                        const std::set<GroupKey> &ambiguous)
{
	std::map<GroupKey, std::vector<uint32_t>> groups;
	std::map<uint32_t, std::set<std::string>> referrers;
	bool have_referrers = false;
	for (uint32_t i = 1; i < obj.symbols().size(); i++) {
		const ObjSymbol &s = obj.symbols()[i];
		auto kind = kind_of(obj, s);
		if (!kind)
			continue;
		GroupKey key{*kind, normalized_name(s.name)};
		if (*kind != Kind::function && s.local() && ambiguous.count(key)) {
			if (!have_referrers) {
				referrers = data_referrers(obj);
				have_referrers = true;
			}
			std::string by;
			for (const std::string &f : referrers[i])
				by += (by.empty() ? "@" : ",") + f;
			std::get<1>(key) += by;
		}
		groups[key].push_back(i);
	}
	return groups;
}

} // namespace

SymbolMatch match_symbols(const ObjectFile &original, const ObjectFile &patched)
{
	// First pass: plain normalised names; data names that occur more than once in either
	// object are then told apart by the functions that use them.
	std::set<GroupKey> ambiguous;
	for (const ObjectFile *obj : {&original, &patched})
		for (const auto &[key, list] : group_symbols(*obj, {}))
			if (list.size() > 1 && std::get<0>(key) != Kind::function)
				ambiguous.insert(key);
	auto go = group_symbols(original, ambiguous);
	auto gp = group_symbols(patched, ambiguous);

	SymbolMatch m;
	m.patched_of.resize(original.symbols().size());
	m.original_of.resize(patched.symbols().size());
	auto pair = [&](uint32_t o, uint32_t p) {
		m.patched_of[o] = p;
		m.original_of[p] = o;
	};
	for (auto &[key, olist] : go) {
		auto it = gp.find(key);
		if (it == gp.end())
			continue;
		std::vector<uint32_t> &plist = it->second;
		// The same exact name first (most symbols), then the rest in order of appearance
		// (clones renumbered: f.constprop.1 in one build, f.constprop.0 in the other).
		std::vector<uint32_t> orest, prest;
		for (uint32_t o : olist) {
			auto same = std::find_if(plist.begin(), plist.end(), [&](uint32_t p) {
				return !m.original_of[p] &&
				       patched.symbols()[p].name == original.symbols()[o].name;
			});
			if (same != plist.end())
				pair(o, *same);
			else
				orest.push_back(o);
		}
		for (uint32_t p : plist)
			if (!m.original_of[p])
				prest.push_back(p);
		for (size_t i = 0; i < std::min(orest.size(), prest.size()); i++)
			pair(orest[i], prest[i]);
	}
	return m;
}

RelocationTarget relocation_target(const ObjectFile &obj, const ObjRelocation &r)
{
	const ObjSymbol &s = obj.symbols()[r.symbol];
	RelocationTarget t;
	if (!s.defined() || s.section == SHN_COMMON) {
		t.kind = RelocationTarget::undefined;
		t.name = s.name;
		t.offset = r.addend;
		return t;
	}
	if (s.section == SHN_ABS) {
		t.kind = RelocationTarget::absolute;
		t.offset = int64_t(s.value) + r.addend;
		return t;
	}
	if (s.type == STT_FUNC || s.type == STT_OBJECT || s.type == STT_TLS) {
		t.kind = RelocationTarget::symbol;
		t.symbol_index = r.symbol;
		t.offset = r.addend;
		return t;
	}
	const ObjSection &sec = obj.sections()[s.section];
	const int64_t off = int64_t(s.value) + r.addend;
	const int64_t at = off + pc_bias(r.type); // where the instruction points
	if (sec.strings() && at >= 0) {
		if (auto str = string_at(sec, uint64_t(at))) {
			t.kind = RelocationTarget::string;
			t.text = std::move(str->text);
			t.offset = off - int64_t(str->start);
			return t;
		}
	}
	if (sec.constants() && at >= 0 && uint64_t(at) < sec.bytes.size()) {
		uint64_t entry = uint64_t(at) / sec.entsize * sec.entsize;
		uint64_t end = std::min<uint64_t>(entry + sec.entsize, sec.bytes.size());
		t.kind = RelocationTarget::constant;
		t.text.assign(sec.bytes.begin() + int64_t(entry), sec.bytes.begin() + int64_t(end));
		t.offset = off - int64_t(entry);
		return t;
	}
	if (auto own = obj.owner(s.section, uint64_t(std::max<int64_t>(at, 0)))) {
		t.kind = RelocationTarget::symbol;
		t.symbol_index = *own;
		t.offset = off - int64_t(obj.symbols()[*own].value);
		return t;
	}
	t.kind = RelocationTarget::anonymous;
	t.section_index = s.section;
	t.offset = off;
	return t;
}

std::string to_string(Why why)
{
	switch (why) {
	case Why::changed:
		return "changed";
	case Why::added:
		return "new";
	case Why::calls_changed_clone:
		return "calls a changed clone";
	case Why::uses_changed_data:
		return "uses changed read-only data";
	case Why::cold_part_changed:
		return "its .cold part changed";
	case Why::part_of:
		return "part of";
	}
	return "?";
}

bool IncludedFunction::redirected() const noexcept
{
	return original.has_value() && why != Why::part_of && !cold && !local_clone;
}

namespace
{

// Structural equality of code and data between the two objects.
class Comparator
{
public:
	Comparator(const ObjectFile &o, const ObjectFile &p, const SymbolMatch &m)
	    : o_(o), p_(p), m_(m)
	{
	}

	// Bytes [so_off, so_off+size) of section so against [sp_off, ...) of sp, with the
	// relocations inside those ranges.
	bool same_range(uint32_t so, uint64_t so_off, uint32_t sp, uint64_t sp_off, uint64_t size)
	{
		const ObjSection &a = o_.sections()[so];
		const ObjSection &b = p_.sections()[sp];
		if (a.nobits() != b.nobits() || a.exec() != b.exec() || a.tls() != b.tls() ||
		    a.read_only() != b.read_only())
			return false;
		if (!a.nobits()) {
			if (so_off + size > a.bytes.size() || sp_off + size > b.bytes.size())
				return false;
			if (!std::equal(a.bytes.begin() + int64_t(so_off),
			                a.bytes.begin() + int64_t(so_off + size),
			                b.bytes.begin() + int64_t(sp_off)))
				return false;
		}
		auto in = [&](const std::vector<ObjRelocation> &all, uint64_t from) {
			std::vector<const ObjRelocation *> out;
			for (const ObjRelocation &r : all)
				if (r.offset >= from && r.offset < from + size)
					out.push_back(&r);
			return out;
		};
		auto ra = in(o_.relocations(so), so_off);
		auto rb = in(p_.relocations(sp), sp_off);
		if (ra.size() != rb.size())
			return false;
		for (size_t i = 0; i < ra.size(); i++) {
			if (ra[i]->offset - so_off != rb[i]->offset - sp_off ||
			    ra[i]->type != rb[i]->type || !same_target(*ra[i], *rb[i]))
				return false;
		}
		return true;
	}

	bool same_section(uint32_t so, uint32_t sp)
	{
		auto key = std::make_pair(so, sp);
		if (auto it = memo_.find(key); it != memo_.end())
			return it->second;
		memo_[key] = true; // assumed while comparing (cycles through jump tables)
		const ObjSection &a = o_.sections()[so];
		const ObjSection &b = p_.sections()[sp];
		bool same = a.size == b.size && same_range(so, 0, sp, 0, a.size);
		memo_[key] = same;
		return same;
	}

	bool same_symbol(uint32_t so, uint32_t sp)
	{
		const ObjSymbol &a = o_.symbols()[so];
		const ObjSymbol &b = p_.symbols()[sp];
		if (a.size != b.size)
			return false;
		uint64_t size = a.size ? a.size : o_.sections()[a.section].size - a.value;
		if (!a.size && b.size == 0 && p_.sections()[b.section].size - b.value != size)
			return false;
		return same_range(a.section, a.value, b.section, b.value, size);
	}

	bool same_target(const ObjRelocation &ro, const ObjRelocation &rp)
	{
		RelocationTarget a = relocation_target(o_, ro);
		RelocationTarget b = relocation_target(p_, rp);
		if (a.kind != b.kind || a.offset != b.offset)
			return false;
		switch (a.kind) {
		case RelocationTarget::undefined:
			return a.name == b.name;
		case RelocationTarget::absolute:
			return true;
		case RelocationTarget::symbol:
			return m_.patched_of[a.symbol_index] == b.symbol_index;
		case RelocationTarget::string:
		case RelocationTarget::constant:
			return a.text == b.text;
		case RelocationTarget::anonymous:
			return same_section(a.section_index, b.section_index);
		}
		return false;
	}

private:
	const ObjectFile &o_;
	const ObjectFile &p_;
	const SymbolMatch &m_;
	std::map<std::pair<uint32_t, uint32_t>, bool> memo_;
};

// Code sections holding functions at several offsets: compiled without -ffunction-sections.
void check_function_sections(const ObjectFile &obj, const char *which,
                             std::vector<Refusal> &refusals)
{
	for (uint32_t sec = 1; sec < obj.sections().size(); sec++) {
		if (!obj.sections()[sec].exec())
			continue;
		std::set<uint64_t> offsets;
		std::string names;
		for (uint32_t i : obj.symbols_in(sec)) {
			const ObjSymbol &s = obj.symbols()[i];
			if (s.type != STT_FUNC)
				continue;
			if (offsets.insert(s.value).second)
				names += (names.empty() ? "" : ", ") + s.name;
		}
		if (offsets.size() > 1)
			refusals.push_back(
			    {obj.sections()[sec].name,
			     fmt::format("section {} of the {} object {} holds several functions "
			                 "({}): the program must be compiled with "
			                 "-ffunction-sections (atlas build-patch --print-flags)",
			                 obj.sections()[sec].name, which, obj.path(), names)});
	}
}

// A C++ vtable, VTT or construction vtable (Itanium ABI names).
bool is_vtable(const std::string &name)
{
	return name.starts_with("_ZTV") || name.starts_with("_ZTT") || name.starts_with("_ZTC");
}

// "vtable for (anonymous namespace)::Square", or the name itself.
std::string demangled(const std::string &name)
{
	int status = 0;
	char *d = abi::__cxa_demangle(name.c_str(), nullptr, nullptr, &status);
	std::string out = status == 0 && d ? d : name;
	std::free(d);
	return out;
}

std::string describe_data_change(const ObjSymbol &a, const ObjSymbol &b)
{
	if (a.size != b.size)
		return fmt::format("its size changed from {} to {} bytes", a.size, b.size);
	return "its initial value changed";
}

// The function entries of an object: one FUNC symbol per code offset. Of aliases (gcc's
// `f.localalias` in position-independent code, __attribute__((alias))), the global one
// names the entry.
std::vector<uint32_t> function_entries(const ObjectFile &obj)
{
	std::map<std::pair<uint32_t, uint64_t>, uint32_t> at;
	for (uint32_t i = 1; i < obj.symbols().size(); i++) {
		const ObjSymbol &s = obj.symbols()[i];
		if (kind_of(obj, s) != Kind::function)
			continue;
		auto [it, fresh] = at.emplace(std::make_pair(s.section, s.value), i);
		if (!fresh && obj.symbols()[it->second].local() && !s.local())
			it->second = i;
	}
	std::vector<uint32_t> out;
	for (const auto &[where, sym] : at)
		out.push_back(sym);
	std::sort(out.begin(), out.end());
	return out;
}

} // namespace

ObjectDiff diff_objects(const ObjectFile &o, const ObjectFile &p)
{
	ObjectDiff d;
	d.match = match_symbols(o, p);
	check_function_sections(o, "original", d.refusals);
	check_function_sections(p, "patched", d.refusals);
	if (!d.refusals.empty())
		return d;
	Comparator cmp(o, p, d.match);
	const auto &ps = p.symbols();

	std::map<uint32_t, IncludedFunction> inc;
	const std::vector<uint32_t> entries = function_entries(p);
	for (uint32_t f : entries) {
		IncludedFunction e;
		e.symbol = f;
		e.original = d.match.original_of[f];
		e.cold = is_cold_piece(ps[f].name);
		e.local_clone = ps[f].local() && is_clone(ps[f].name);
		if (!e.original)
			e.why = Why::added;
		else if (cmp.same_symbol(*e.original, f))
			continue;
		inc.emplace(f, e);
	}

	std::set<uint32_t> changed_read_only;
	for (uint32_t v = 1; v < ps.size(); v++) {
		auto kind = kind_of(p, ps[v]);
		if (!kind || *kind == Kind::function)
			continue;
		const bool tls = *kind == Kind::tls;
		auto ov = d.match.original_of[v];
		if (!ov) {
			if (tls)
				d.refusals.push_back(
				    {ps[v].name,
				     fmt::format(
				         "'{}' is a new thread-local variable: threads that "
				         "already run have no storage for it; use a "
				         "heap-allocated or global datum instead",
				         ps[v].name)});
			else
				d.own_data.push_back(v);
			continue;
		}
		if (cmp.same_symbol(*ov, v))
			continue;
		const ObjSymbol &a = o.symbols()[*ov];
		const std::string change = describe_data_change(a, ps[v]);
		const ObjSection &sec = p.sections()[ps[v].section];
		if (is_vtable(ps[v].name))
			// Objects made before the patch keep pointing at the old vtable (which has
			// no slot for a new virtual function); objects patched code made would
			// point at the patch's copy, gone after a revert. A changed virtual
			// function leaves the vtable as it is (its slot names the same symbol).
			d.refusals.push_back(
			    {ps[v].name,
			     fmt::format(
			         "{} ('{}') changed: {}; the objects the program already made "
			         "point at the old one, and objects made by patched code would "
			         "point at the patch's copy after a revert: a live patch cannot "
			         "add, remove or reorder virtual functions of an existing class "
			         "(restart the program, or keep the class's virtual functions)",
			         demangled(ps[v].name), ps[v].name, change)});
		else if (tls)
			d.refusals.push_back(
			    {ps[v].name,
			     fmt::format("thread-local variable '{}': {}; every running "
			                 "thread already has its copy, a patch cannot "
			                 "change its layout or initial value",
			                 ps[v].name, change)});
		else if (!sec.read_only())
			d.refusals.push_back(
			    {ps[v].name,
			     fmt::format("variable '{}': {}; the running program keeps its current "
			                 "instance (data are never replaced), so the change would "
			                 "not take effect: keep the definition and assign the new "
			                 "value from patched code, or restart the program",
			                 ps[v].name, change)});
		else if (!ps[v].local())
			d.refusals.push_back(
			    {ps[v].name, fmt::format("read-only global '{}': {}; other translation "
			                             "units use the running program's copy",
			                             ps[v].name, change)});
		else {
			d.own_data.push_back(v);
			changed_read_only.insert(v);
		}
	}

	// What each function of the patched object refers to: symbol targets and whether the
	// reference is to the entry.
	struct Ref {
		uint32_t symbol;
		bool entry;
	};
	std::map<uint32_t, std::vector<Ref>> refs;
	for (uint32_t f : entries) {
		for (const ObjRelocation &r : p.relocations(ps[f].section)) {
			RelocationTarget t = relocation_target(p, r);
			if (t.kind == RelocationTarget::symbol && t.symbol_index != f)
				refs[f].push_back(
				    {t.symbol_index, t.offset + pc_bias(r.type) == 0});
		}
	}
	auto add = [&](uint32_t f, Why why, uint32_t because) {
		IncludedFunction e;
		e.symbol = f;
		e.original = d.match.original_of[f];
		e.cold = is_cold_piece(ps[f].name);
		e.local_clone = ps[f].local() && is_clone(ps[f].name);
		e.why = why;
		e.because = ps[because].name;
		inc.emplace(f, e);
	};
	for (bool grew = true; grew;) {
		grew = false;
		for (uint32_t f : entries) {
			for (const Ref &r : refs[f]) {
				const ObjSymbol &t = ps[r.symbol];
				const bool t_in = inc.count(r.symbol) > 0;
				if (inc.count(f)) {
					// Pieces entered other than through their entry go with f.
					if (t.type == STT_FUNC && !t_in &&
					    (is_cold_piece(t.name) || !r.entry)) {
						add(r.symbol, Why::part_of, f);
						grew = true;
					}
					continue;
				}
				if (t_in && t.type == STT_FUNC && is_cold_piece(t.name)) {
					add(f, Why::cold_part_changed, r.symbol);
					grew = true;
				} else if (t_in && t.type == STT_FUNC && is_clone(t.name)) {
					add(f, Why::calls_changed_clone, r.symbol);
					grew = true;
				} else if (changed_read_only.count(r.symbol)) {
					add(f, Why::uses_changed_data, r.symbol);
					grew = true;
				}
				if (inc.count(f))
					break;
			}
		}
	}
	// Static constructors run once, at start: a changed one means a new or changed global
	// with a dynamic initialiser, which a patch cannot initialise without re-running the
	// constructors of every other global of the unit.
	for (uint32_t sec = 1; sec < p.sections().size(); sec++) {
		const std::string &name = p.sections()[sec].name;
		if (!name.starts_with(".init_array") && !name.starts_with(".ctors") &&
		    !name.starts_with(".preinit_array"))
			continue;
		for (const ObjRelocation &r : p.relocations(sec)) {
			RelocationTarget t = relocation_target(p, r);
			if (t.kind == RelocationTarget::symbol && inc.count(t.symbol_index))
				d.refusals.push_back(
				    {ps[t.symbol_index].name,
				     fmt::format(
				         "'{}' runs from {} (the unit's static initialisation) and "
				         "is new or changed: a global with a new or changed "
				         "dynamic "
				         "initialiser cannot be live-patched (the program's "
				         "globals are already constructed); initialise it on "
				         "first use instead (a function-local static)",
				         ps[t.symbol_index].name, name)});
		}
	}
	for (auto &[sym, e] : inc)
		d.functions.push_back(e);
	return d;
}

} // namespace atlas::build_patch
