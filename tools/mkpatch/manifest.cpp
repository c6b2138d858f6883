// SPDX-License-Identifier: MIT
#include "manifest.hpp"

#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

namespace atlas::mkpatch
{

namespace
{

using patch::Errc;
using patch::make_error;
using json = nlohmann::json;

// Manifest errors carry the JSON path of the offending value ("redirects[1].file").
struct Bad {
	std::string msg;
};

void check_keys(const json &obj, const std::string &where, std::set<std::string> allowed)
{
	if (!obj.is_object())
		throw Bad{fmt::format("{} must be an object", where)};
	for (const auto &[k, v] : obj.items())
		if (!allowed.count(k)) {
			std::string list;
			for (const std::string &a : allowed)
				list += (list.empty() ? "" : ", ") + a;
			throw Bad{
			    fmt::format("{}: unknown key \"{}\" (allowed: {})", where, k, list)};
		}
}

std::string get_string(const json &obj, const char *key, const std::string &where, bool required)
{
	auto it = obj.find(key);
	if (it == obj.end()) {
		if (required)
			throw Bad{fmt::format("{}: \"{}\" is required", where, key)};
		return {};
	}
	if (!it->is_string() || it->get_ref<const std::string &>().empty())
		throw Bad{fmt::format("{}.{} must be a non-empty string", where, key)};
	return it->get<std::string>();
}

// The target-symbol fields shared by redirects and references.
patch::SymbolRef get_ref(const json &obj, const char *name_key, const std::string &where)
{
	patch::SymbolRef r;
	r.name = get_string(obj, name_key, where, true);
	r.file = get_string(obj, "file", where, false);
	if (auto it = obj.find("symtab_index"); it != obj.end()) {
		if (!it->is_number_unsigned() || it->get<uint64_t>() > UINT32_MAX)
			throw Bad{fmt::format("{}.symtab_index must be an unsigned 32-bit integer",
			                      where)};
		r.symtab_index = it->get<uint32_t>();
	}
	if (auto it = obj.find("address"); it != obj.end()) {
		if (it->is_number_unsigned()) {
			r.address = it->get<uint64_t>();
		} else if (it->is_string()) {
			const std::string &s = it->get_ref<const std::string &>();
			size_t pos = 0;
			try {
				r.address = std::stoull(s, &pos, 0);
			} catch (const std::exception &) {
				pos = 0;
			}
			if (pos == 0 || pos != s.size())
				throw Bad{fmt::format("{}.address \"{}\" is not a number (write "
				                      "e.g. \"0x1139\")",
				                      where, s)};
		} else {
			throw Bad{fmt::format("{}.address must be a number or a string like "
			                      "\"0x1139\"",
			                      where)};
		}
	}
	return r;
}

Manifest parse(const json &j, const std::string &dir)
{
	check_keys(j, "manifest",
	           {"name", "target", "symbols", "source", "compiler", "flags", "requires_global",
	            "redirects", "references"});
	Manifest m;
	m.dir = dir;
	m.name = get_string(j, "name", "manifest", true);
	m.target = get_string(j, "target", "manifest", false);
	m.symbols = get_string(j, "symbols", "manifest", false);
	m.source = get_string(j, "source", "manifest", true);
	m.compiler = get_string(j, "compiler", "manifest", false);
	if (auto it = j.find("flags"); it != j.end()) {
		if (!it->is_array())
			throw Bad{"manifest.flags must be an array of strings"};
		for (const json &f : *it) {
			if (!f.is_string())
				throw Bad{"manifest.flags must be an array of strings"};
			m.flags.push_back(f.get<std::string>());
		}
	}
	if (auto it = j.find("requires_global"); it != j.end()) {
		if (!it->is_boolean())
			throw Bad{"manifest.requires_global must be true or false"};
		m.requires_global = it->get<bool>();
	}
	auto redirects = j.find("redirects");
	if (redirects == j.end() || !redirects->is_array() || redirects->empty())
		throw Bad{"manifest.redirects must be a non-empty array: a patch replaces at least "
		          "one function"};
	for (size_t i = 0; i < redirects->size(); i++) {
		const json &r = (*redirects)[i];
		std::string where = fmt::format("redirects[{}]", i);
		check_keys(r, where, {"target", "file", "symtab_index", "address", "replacement"});
		ManifestRedirect out;
		out.target = get_ref(r, "target", where);
		out.replacement = get_string(r, "replacement", where, false);
		if (out.replacement.empty())
			out.replacement = out.target.name;
		m.redirects.push_back(std::move(out));
	}
	if (auto refs = j.find("references"); refs != j.end()) {
		if (!refs->is_array())
			throw Bad{"manifest.references must be an array"};
		for (size_t i = 0; i < refs->size(); i++) {
			const json &r = (*refs)[i];
			std::string where = fmt::format("references[{}]", i);
			check_keys(
			    r, where,
			    {"symbol", "object", "target", "file", "symtab_index", "address"});
			ManifestReference out;
			out.symbol = get_string(r, "symbol", where, true);
			out.object = get_string(r, "object", where, false);
			out.target = r.contains("target") ? get_ref(r, "target", where) : [&] {
				// "target" defaults to the patch symbol's own name.
				json copy = r;
				copy["target"] = out.symbol;
				return get_ref(copy, "target", where);
			}();
			m.references.push_back(std::move(out));
		}
	}
	return m;
}

} // namespace

patch::Result<Manifest> load_manifest(const std::string &path)
{
	try {
		std::ifstream in(path);
		if (!in)
			return make_error(Errc::io, fmt::format("cannot open manifest {}", path));
		json j = json::parse(in);
		std::string dir = std::filesystem::absolute(path).parent_path().string();
		return parse(j, dir);
	} catch (const json::parse_error &e) {
		return make_error(Errc::invalid_format,
		                  fmt::format("manifest {} is not valid JSON: {}", path, e.what()));
	} catch (const Bad &b) {
		return make_error(Errc::invalid_format,
		                  fmt::format("manifest {}: {}", path, b.msg));
	} catch (const std::exception &e) {
		return make_error(Errc::internal, fmt::format("manifest {}: {}", path, e.what()));
	}
}

} // namespace atlas::mkpatch
