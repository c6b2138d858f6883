// SPDX-License-Identifier: MIT
#include "build_records.hpp"

#include "atlas/patch/writer.hpp"

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <nlohmann/json.hpp>
#include <unistd.h>

namespace atlas::build_patch
{

using patch::Errc;
using patch::make_error;
using patch::Result;
namespace fs = std::filesystem;

long long record_sequence()
{
	timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

namespace
{

Result<void> write_json(const std::string &dir, const char *kind, long long seq,
                        const nlohmann::json &j)
{
	std::string path = fmt::format("{}/{}-{}-{}.json", dir, kind, seq, getpid());
	std::string text = j.dump();
	return patch::write_file(
	    path,
	    std::span<const uint8_t>(reinterpret_cast<const uint8_t *>(text.data()), text.size()));
}

} // namespace

Result<void> write_compile_record(const std::string &dir, const CompileRecord &r)
{
	nlohmann::json j{{"kind", "compile"}, {"compiler", r.compiler}, {"args", r.args},
	                 {"cwd", r.cwd},      {"source", r.source},     {"object", r.object},
	                 {"copy", r.copy},    {"sequence", r.sequence}};
	return write_json(dir, "compile", r.sequence, j);
}

Result<void> write_link_record(const std::string &dir, const LinkRecord &r)
{
	nlohmann::json j{{"kind", "link"},
	                 {"output", r.output},
	                 {"inputs", r.inputs},
	                 {"compiled_and_linked", r.compiled_and_linked},
	                 {"sequence", r.sequence}};
	return write_json(dir, "link", r.sequence, j);
}

Result<BuildRecords> read_build_records(const std::string &dir)
{
	BuildRecords out;
	std::error_code ec;
	for (const auto &e : fs::directory_iterator(dir, ec)) {
		if (e.path().extension() != ".json")
			continue;
		std::ifstream in(e.path());
		auto j = nlohmann::json::parse(in, nullptr, false);
		if (j.is_discarded() || !j.is_object())
			return make_error(
			    Errc::invalid_format,
			    fmt::format("compiler record {} is not valid JSON", e.path().string()));
		try {
			if (j.at("kind") == "compile") {
				CompileRecord r;
				r.compiler = j.at("compiler");
				r.args = j.at("args").get<std::vector<std::string>>();
				r.cwd = j.at("cwd");
				r.source = j.at("source");
				r.object = j.at("object");
				r.copy = j.at("copy");
				r.sequence = j.at("sequence");
				out.compiles.push_back(std::move(r));
			} else {
				LinkRecord r;
				r.output = j.at("output");
				r.inputs = j.at("inputs").get<std::vector<std::string>>();
				r.compiled_and_linked =
				    j.at("compiled_and_linked").get<std::vector<std::string>>();
				r.sequence = j.at("sequence");
				out.links.push_back(std::move(r));
			}
		} catch (const nlohmann::json::exception &x) {
			return make_error(
			    Errc::invalid_format,
			    fmt::format("compiler record {}: {}", e.path().string(), x.what()));
		}
	}
	if (ec)
		return make_error(Errc::io, fmt::format("cannot list {}: {}", dir, ec.message()));
	auto by_seq = [](const auto &a, const auto &b) { return a.sequence < b.sequence; };
	std::sort(out.compiles.begin(), out.compiles.end(), by_seq);
	std::sort(out.links.begin(), out.links.end(), by_seq);
	return out;
}

} // namespace atlas::build_patch
