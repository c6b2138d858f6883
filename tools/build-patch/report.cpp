// SPDX-License-Identifier: MIT
#include "report.hpp"

#include "producer_check.hpp"

#include <fmt/format.h>

namespace atlas::build_patch
{

namespace
{

const char *outcome_name(Outcome o)
{
	switch (o) {
	case Outcome::written:
		return "written";
	case Outcome::failed:
		return "failed";
	case Outcome::usage:
		return "usage";
	case Outcome::refused:
		return "refused";
	case Outcome::no_change:
		return "no_change";
	case Outcome::mismatch:
		return "target_mismatch";
	}
	return "?";
}

} // namespace

nlohmann::ordered_json report_json(const BuildReport &r)
{
	nlohmann::ordered_json j;
	j["ok"] = r.outcome == Outcome::written;
	j["outcome"] = outcome_name(r.outcome);
	j["message"] = r.message;
	if (!r.output.empty())
		j["output"] = r.output;
	j["name"] = r.name;
	if (!r.identity.empty())
		j["identity"] = r.identity;
	j["target"] = {{"path", r.target}, {"build_id", r.build_id}};
	j["objects"] = nlohmann::ordered_json::array();
	for (const UnitReport &u : r.units) {
		nlohmann::ordered_json o;
		o["object"] = u.object;
		o["source"] = u.source;
		o["functions"] = nlohmann::ordered_json::array();
		for (const FunctionReport &f : u.functions) {
			nlohmann::ordered_json fj{{"name", f.name}, {"why", f.why}};
			if (!f.because.empty())
				fj["because"] = f.because;
			fj["redirected"] = f.redirected;
			o["functions"].push_back(fj);
		}
		o["own_data"] = u.own_data;
		j["objects"].push_back(o);
	}
	j["redirects"] = nlohmann::ordered_json::array();
	for (const auto &[target, replacement] : r.redirects)
		j["redirects"].push_back({{"target", target}, {"replacement", replacement}});
	j["references"] = nlohmann::ordered_json::array();
	for (const auto &[sym, target] : r.references)
		j["references"].push_back({{"symbol", sym}, {"target", target}});
	j["refusals"] = nlohmann::ordered_json::array();
	for (const Refusal &x : r.refusals)
		j["refusals"].push_back({{"symbol", x.symbol}, {"reason", x.reason}});
	j["mismatches"] = r.mismatches;
	j["warnings"] = r.warnings;
	j["line_directives"] = r.line_directives;
	j["objects_built"] = r.objects_built;
	j["objects_rebuilt"] = r.objects_rebuilt;
	j["original_build"] = r.original_build;
	if (!r.cache_entry.empty())
		j["cache_entry"] = r.cache_entry;
	nlohmann::ordered_json t = nlohmann::ordered_json::object();
	for (const auto &[step, s] : r.timings)
		t[step] = s;
	j["seconds"] = t;
	if (!r.work_dir.empty())
		j["work_dir"] = r.work_dir;
	return j;
}

void print_report(const BuildReport &r)
{
	if (r.outcome == Outcome::written)
		fmt::print("{}\n", r.message);
	else
		fmt::print(stderr, "atlas build-patch: {}\n", r.message);
}

void print_flags(bool as_json)
{
	if (as_json) {
		nlohmann::ordered_json j;
		auto list = [](const std::vector<RequiredFlag> &flags) {
			nlohmann::ordered_json a = nlohmann::ordered_json::array();
			for (const RequiredFlag &f : flags)
				a.push_back({{"flag", f.flag}, {"why", f.why}});
			return a;
		};
		j["compile"] = list(required_compile_flags());
		j["link"] = list(required_link_flags());
		fmt::print("{}\n", j.dump(2));
		return;
	}
	std::string line;
	for (const RequiredFlag &f : required_compile_flags())
		line += (line.empty() ? "" : " ") + f.flag;
	fmt::print("{}\n", line);
}

} // namespace atlas::build_patch
