// SPDX-License-Identifier: MIT
#include "type_layouts.hpp"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <fmt/format.h>
#include <set>

namespace atlas::build_patch
{

using patch::Errc;
using patch::make_error;
using patch::Result;

namespace
{

const char *name_of(Dwarf_Die *die)
{
	const char *n = dwarf_diename(die);
	return n ? n : "";
}

bool type_of(Dwarf_Die *die, Dwarf_Die *out)
{
	Dwarf_Attribute attr;
	return dwarf_attr_integrate(die, DW_AT_type, &attr) && dwarf_formref_die(&attr, out);
}

const char *aggregate_keyword(int tag)
{
	switch (tag) {
	case DW_TAG_structure_type:
		return "struct";
	case DW_TAG_union_type:
		return "union";
	case DW_TAG_class_type:
		return "class";
	default:
		return nullptr;
	}
}

class Reader
{
public:
	TypeInfo info;

	void walk(Dwarf_Die *die)
	{
		do {
			const int tag = dwarf_tag(die);
			if (aggregate_keyword(tag) && *name_of(die))
				record(fmt::format("{} {}", aggregate_keyword(tag), name_of(die)),
				       die);
			if (tag == DW_TAG_typedef) {
				Dwarf_Die t;
				if (type_of(die, &t) && aggregate_keyword(dwarf_tag(&t))) {
					if (!*name_of(&t))
						record(name_of(die), &t);
					else
						info.typedefs[name_of(die)] = fmt::format(
						    "{} {}", aggregate_keyword(dwarf_tag(&t)),
						    name_of(&t));
				}
			}
			if (tag == DW_TAG_variable && *name_of(die) && static_storage(die)) {
				Dwarf_Die t;
				info.variables[name_of(die)] =
				    type_of(die, &t) ? type_name(&t, 0) : "void";
			}
			Dwarf_Die child;
			if (dwarf_child(die, &child) == 0)
				walk(&child);
		} while (dwarf_siblingof(die, die) == 0);
	}

private:
	// A location that is an address: a global or a static, not a stack variable.
	static bool static_storage(Dwarf_Die *die)
	{
		Dwarf_Attribute attr;
		Dwarf_Op *expr;
		size_t len;
		return dwarf_attr(die, DW_AT_location, &attr) &&
		       dwarf_getlocation(&attr, &expr, &len) == 0 && len >= 1 &&
		       expr[0].atom == DW_OP_addr;
	}

	void record(const std::string &name, Dwarf_Die *die)
	{
		if (dwarf_hasattr(die, DW_AT_declaration))
			return; // incomplete
		TypeLayout l = layout(die, 0);
		auto &types = info.types;
		auto [it, fresh] = types.emplace(name, l);
		if (!fresh && !(it->second == l)) {
			// Several types of one name (local to functions): keep them all apart.
			for (int n = 2;; n++) {
				std::string alt = fmt::format("{} #{}", name, n);
				auto [it2, fresh2] = types.emplace(alt, l);
				if (fresh2 || it2->second == l)
					break;
			}
		}
	}

	TypeLayout layout(Dwarf_Die *die, int depth)
	{
		TypeLayout l;
		Dwarf_Word size = 0;
		if (dwarf_aggregate_size(die, &size) == 0)
			l.size = size;
		Dwarf_Die m;
		if (dwarf_child(die, &m) != 0)
			return l;
		do {
			if (dwarf_tag(&m) != DW_TAG_member)
				continue;
			Dwarf_Attribute attr;
			Dwarf_Word offset = 0;
			if (dwarf_attr_integrate(&m, DW_AT_data_member_location, &attr))
				dwarf_formudata(&attr, &offset);
			std::string where = fmt::format("{}", offset);
			if (dwarf_hasattr(&m, DW_AT_bit_size)) {
				Dwarf_Word bit = 0;
				if (dwarf_attr_integrate(&m, DW_AT_data_bit_offset, &attr))
					dwarf_formudata(&attr, &bit);
				where = fmt::format("{}.{}/{}", offset, bit, dwarf_bitsize(&m));
			}
			Dwarf_Die t;
			std::string type = type_of(&m, &t) ? type_name(&t, depth) : "void";
			l.members.push_back(fmt::format("{}@{}:{}", name_of(&m), where, type));
		} while (dwarf_siblingof(&m, &m) == 0);
		return l;
	}

	// A type's name; anonymous aggregates are spelled out (they are part of the layout).
	std::string type_name(Dwarf_Die *t, int depth)
	{
		if (depth > 8)
			return "...";
		Dwarf_Die inner;
		const bool has_inner = type_of(t, &inner);
		switch (dwarf_tag(t)) {
		case DW_TAG_pointer_type:
			return (has_inner ? type_name(&inner, depth + 1) : "void") + "*";
		case DW_TAG_reference_type:
			return (has_inner ? type_name(&inner, depth + 1) : "void") + "&";
		case DW_TAG_const_type:
			return "const " + (has_inner ? type_name(&inner, depth + 1) : "void");
		case DW_TAG_volatile_type:
			return "volatile " + (has_inner ? type_name(&inner, depth + 1) : "void");
		case DW_TAG_atomic_type:
			return "_Atomic " + (has_inner ? type_name(&inner, depth + 1) : "void");
		case DW_TAG_array_type: {
			std::string dims;
			Dwarf_Die sub;
			if (dwarf_child(t, &sub) == 0)
				do {
					Dwarf_Attribute attr;
					Dwarf_Word n = 0;
					if (dwarf_attr_integrate(&sub, DW_AT_count, &attr) ||
					    dwarf_attr_integrate(&sub, DW_AT_upper_bound, &attr))
						dwarf_formudata(&attr, &n);
					dims += fmt::format("[{}]", n);
				} while (dwarf_siblingof(&sub, &sub) == 0);
			return (has_inner ? type_name(&inner, depth + 1) : "void") + dims;
		}
		case DW_TAG_subroutine_type:
			return "function";
		case DW_TAG_enumeration_type:
			return fmt::format("enum {}", name_of(t));
		case DW_TAG_structure_type:
		case DW_TAG_union_type:
		case DW_TAG_class_type: {
			if (*name_of(t))
				return fmt::format("{} {}", aggregate_keyword(dwarf_tag(t)),
				                   name_of(t));
			TypeLayout l = layout(t, depth + 1);
			std::string s = fmt::format("{}{{", aggregate_keyword(dwarf_tag(t)));
			for (const std::string &m : l.members)
				s += m + ";";
			return s + "}";
		}
		default:
			return name_of(t);
		}
	}
};

struct DwflCloser {
	Dwfl *d;
	~DwflCloser()
	{
		if (d)
			dwfl_end(d);
	}
};

} // namespace

Result<TypeInfo> read_type_layouts(const std::string &object)
{
	static char *debuginfo_path = nullptr;
	static const Dwfl_Callbacks callbacks = {
	    dwfl_build_id_find_elf,
	    dwfl_standard_find_debuginfo,
	    dwfl_offline_section_address,
	    &debuginfo_path,
	};
	DwflCloser c{dwfl_begin(&callbacks)};
	if (!c.d)
		return make_error(Errc::internal, fmt::format("libdwfl: {}", dwfl_errmsg(-1)));
	// libdwfl applies the object's .rela.debug_* relocations (libdw alone does not).
	Dwfl_Module *mod = dwfl_report_offline(c.d, "", object.c_str(), -1);
	if (!mod)
		return make_error(
		    Errc::invalid_format,
		    fmt::format("{}: libdwfl cannot read it: {}", object, dwfl_errmsg(-1)));
	dwfl_report_end(c.d, nullptr, nullptr);
	Reader r;
	Dwarf_Addr bias;
	Dwarf *dw = dwfl_module_getdwarf(mod, &bias);
	if (!dw)
		return r.info; // no DWARF
	Dwarf_Off off = 0, next;
	size_t header;
	while (dwarf_nextcu(dw, off, &next, &header, nullptr, nullptr, nullptr) == 0) {
		Dwarf_Die cu;
		if (dwarf_offdie(dw, off + header, &cu)) {
			Dwarf_Die child;
			if (dwarf_child(&cu, &child) == 0)
				r.walk(&child);
		}
		off = next;
	}
	return r.info;
}

namespace
{

// Does a value of type `type` hold a `wanted` (itself, or inside a member, an array element,
// a typedef)? Pointers do not count: what they point to is not part of the value.
bool holds(const TypeInfo &info, std::string type, const std::string &wanted, int depth = 0)
{
	while (type.starts_with("const ") || type.starts_with("volatile ") ||
	       type.starts_with("_Atomic "))
		type = type.substr(type.find(' ') + 1);
	if (type.ends_with("*") || type.ends_with("&") || depth > 6)
		return false;
	if (size_t b = type.find('['); b != std::string::npos)
		type = type.substr(0, b);
	if (auto t = info.typedefs.find(type); t != info.typedefs.end())
		type = t->second;
	if (type == wanted)
		return true;
	auto it = info.types.find(type);
	if (it == info.types.end())
		return false;
	for (const std::string &m : it->second.members)
		if (holds(info, m.substr(m.find(':') + 1), wanted, depth + 1))
			return true;
	return false;
}

} // namespace

std::vector<LayoutChange> changed_layouts(const TypeInfo &original, const TypeInfo &patched)
{
	std::vector<LayoutChange> out;
	for (const auto &[name, a] : original.types) {
		auto it = patched.types.find(name);
		if (it == patched.types.end() || it->second == a)
			continue;
		const TypeLayout &b = it->second;
		std::vector<std::string> what;
		if (a.size != b.size)
			what.push_back(fmt::format("size {} -> {} bytes", a.size, b.size));
		// member -> (place, type)
		auto split = [](const std::vector<std::string> &members) {
			std::map<std::string, std::pair<std::string, std::string>> by_name;
			for (const std::string &m : members) {
				size_t at = m.find('@'), colon = m.find(':', at);
				by_name[m.substr(0, at)] = {m.substr(at + 1, colon - at - 1),
				                            m.substr(colon + 1)};
			}
			return by_name;
		};
		auto am = split(a.members), bm = split(b.members);
		auto label = [](const std::string &n) { return n.empty() ? "(anonymous)" : n; };
		std::string removed, added, retyped;
		size_t moved = 0;
		for (const auto &[n, m] : am) {
			auto j = bm.find(n);
			if (j == bm.end())
				removed += (removed.empty() ? "" : ", ") + label(n);
			else if (j->second.second != m.second)
				retyped +=
				    fmt::format("{}{} ({} -> {})", retyped.empty() ? "" : ", ",
				                label(n), m.second, j->second.second);
			else if (j->second.first != m.first)
				moved++;
		}
		for (const auto &[n, m] : bm)
			if (!am.count(n))
				added += (added.empty() ? "" : ", ") + label(n);
		if (!removed.empty())
			what.push_back("removed " + removed);
		if (!added.empty())
			what.push_back("added " + added);
		if (!retyped.empty())
			what.push_back("retyped " + retyped);
		if (moved)
			what.push_back(fmt::format("{} member(s) moved", moved));
		if (what.empty())
			what.push_back("members reordered");
		LayoutChange c;
		c.type = name;
		for (const std::string &w : what)
			c.detail += (c.detail.empty() ? "" : "; ") + w;
		for (const auto &[var, type] : original.variables)
			if (holds(original, type, name))
				c.variables.push_back(var);
		out.push_back(std::move(c));
	}
	return out;
}

} // namespace atlas::build_patch
