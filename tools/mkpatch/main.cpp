// SPDX-License-Identifier: MIT
// atlas-mkpatch: turns a hand-written translation unit plus a manifest into a patch file, and
// prints a patch's metadata (docs/patch-format.md, "atlas-mkpatch").
#include "manifest.hpp"

#include "atlas/patch/patch.hpp"
#include "atlas/patch/target.hpp"
#include "atlas/patch/writer.hpp"

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstring>
#include <elf.h>
#include <filesystem>
#include <fmt/format.h>
#include <map>
#include <nlohmann/json.hpp>
#include <spawn.h>
#include <sys/wait.h>

extern char **environ;

namespace
{

namespace fs = std::filesystem;
using namespace atlas;
using patch::Errc;
using patch::make_error;
using patch::Result;

// Flags every patch is compiled with: position-independent (the loader places it anywhere),
// one section per function and datum (the loader and the builder work per symbol).
const std::vector<std::string> patch_cflags = {"-fPIC", "-ffunction-sections", "-fdata-sections",
                                               "-O2"};

bool is_cxx_source(const std::string &path)
{
	std::string ext = fs::path(path).extension().string();
	return ext == ".cc" || ext == ".cpp" || ext == ".cxx" || ext == ".C" || ext == ".c++";
}

std::string resolve_path(const std::string &dir, const std::string &p)
{
	fs::path path(p);
	if (path.is_relative())
		path = fs::path(dir) / path;
	return fs::weakly_canonical(path).string();
}

// Runs argv without a shell; its output goes to our stderr/stdout.
Result<void> run(const std::vector<std::string> &argv, bool verbose)
{
	if (verbose) {
		std::string line;
		for (const std::string &a : argv)
			line += (line.empty() ? "" : " ") + a;
		fmt::print(stderr, "atlas-mkpatch: {}\n", line);
	}
	std::vector<char *> args;
	for (const std::string &a : argv)
		args.push_back(const_cast<char *>(a.c_str()));
	args.push_back(nullptr);
	pid_t pid;
	int err = posix_spawnp(&pid, args[0], nullptr, nullptr, args.data(), environ);
	if (err)
		return make_error(Errc::io,
		                  fmt::format("cannot run {}: {}", argv[0], std::strerror(err)));
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return make_error(Errc::io,
			                  fmt::format("waitpid: {}", std::strerror(errno)));
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return make_error(
		    Errc::io, fmt::format("{} failed ({})", argv[0],
		                          WIFEXITED(status)
		                              ? fmt::format("exit status {}", WEXITSTATUS(status))
		                              : fmt::format("signal {}", WTERMSIG(status))));
	return {};
}

class TempDir
{
public:
	TempDir()
	{
		std::string tmpl = (fs::temp_directory_path() / "atlas-mkpatch.XXXXXX").string();
		if (mkdtemp(tmpl.data()))
			path_ = tmpl;
	}
	~TempDir()
	{
		std::error_code ec;
		if (!path_.empty())
			fs::remove_all(path_, ec);
	}
	const std::string &path() const
	{
		return path_;
	}

private:
	std::string path_;
};

// Symbols of the objects references name, read once each.
struct ObjectCache {
	std::map<std::string, patch::TargetSymbols> symbols;

	Result<const patch::TargetSymbols *> get(const std::string &path)
	{
		auto it = symbols.find(path);
		if (it != symbols.end())
			return &it->second;
		auto bytes = patch::read_file(path);
		if (!bytes)
			return bytes.error();
		auto syms = patch::read_symbols(*bytes);
		if (!syms)
			return make_error(syms.error().code,
			                  fmt::format("{}: {}", path, syms.error().message));
		return &symbols.emplace(path, std::move(*syms)).first->second;
	}
};

struct BuildOptions {
	std::string manifest;
	std::string output;
	std::string target;  // overrides the manifest's
	std::string symbols; // overrides the manifest's
	std::string compiler;
	std::vector<std::string> extra_flags;
	bool verbose = false;
};

Result<std::string> build(const BuildOptions &o)
{
	auto m = mkpatch::load_manifest(o.manifest);
	if (!m)
		return m.error();
	std::string target_arg = o.target.empty() ? m->target : o.target;
	if (target_arg.empty())
		return make_error(Errc::invalid_format,
		                  "no target: give \"target\" in the manifest or --target");
	const std::string target =
	    o.target.empty() ? resolve_path(m->dir, target_arg) : fs::absolute(target_arg).string();
	const std::string source = resolve_path(m->dir, m->source);
	const std::string output = o.output.empty() ? m->name + ".patch.o" : o.output;

	auto target_bytes = patch::read_file(target);
	if (!target_bytes)
		return target_bytes.error();
	auto build_id = patch::read_build_id(*target_bytes);
	if (!build_id)
		return make_error(build_id.error().code,
		                  fmt::format("{}: {}", target, build_id.error().message));
	// The target's symbols: its own .symtab, or a separate debug file's (same build-id; its
	// .symtab is the unstripped binary's, index for index).
	std::string symbols = !o.symbols.empty()    ? fs::absolute(o.symbols).string()
	                      : !m->symbols.empty() ? resolve_path(m->dir, m->symbols)
	                                            : target;
	ObjectCache objects;
	auto target_syms = objects.get(target);
	if (!target_syms)
		return target_syms.error();
	if (symbols == target && (*target_syms)->dynamic) {
		std::string hex = patch::to_hex(*build_id);
		std::string debug =
		    "/usr/lib/debug/.build-id/" + hex.substr(0, 2) + "/" + hex.substr(2) + ".debug";
		if (!fs::exists(debug))
			return make_error(
			    Errc::not_found,
			    fmt::format("{} is stripped (no .symtab) and {} does not "
			                "exist: build the target unstripped or give its "
			                "separate debug file with --symbols",
			                target, debug));
		symbols = debug;
	}
	if (symbols != target) {
		auto bytes = patch::read_file(symbols);
		if (!bytes)
			return bytes.error();
		auto id = patch::read_build_id(*bytes);
		if (!id)
			return make_error(id.error().code,
			                  fmt::format("{}: {}", symbols, id.error().message));
		if (*id != *build_id)
			return make_error(
			    Errc::invalid_format,
			    fmt::format("symbols file {} has build-id {}, but the target "
			                "{} has {}: it belongs to another build",
			                symbols, patch::to_hex(*id), target,
			                patch::to_hex(*build_id)));
		target_syms = objects.get(symbols);
		if (!target_syms)
			return target_syms.error();
		if ((*target_syms)->dynamic)
			return make_error(Errc::not_found,
			                  fmt::format("symbols file {} has no .symtab", symbols));
	}

	patch::Metadata md;
	md.name = m->name;
	md.target_path = target;
	md.target_build_id = std::move(*build_id);
	md.flags = m->requires_global ? patch::flag_requires_global : 0;

	// Every target symbol must resolve to exactly one symbol now; the patch records the
	// exact one (file, index, address), which the loader checks against the same build-id.
	for (const mkpatch::ManifestRedirect &r : m->redirects) {
		auto sym =
		    patch::resolve_symbol(**target_syms, r.target, patch::SymbolKind::function);
		if (!sym)
			return make_error(sym.error().code,
			                  fmt::format("redirect of '{}': {}", r.target.name,
			                              sym.error().message));
		md.redirects.push_back(patch::Redirect{patch::exact_ref(**sym), r.replacement});
	}
	for (const mkpatch::ManifestReference &r : m->references) {
		std::string object = r.object.empty() ? symbols : resolve_path(m->dir, r.object);
		auto syms = objects.get(object);
		if (!syms)
			return syms.error();
		auto sym = patch::resolve_symbol(**syms, r.target, patch::SymbolKind::any);
		if (!sym)
			return make_error(sym.error().code,
			                  fmt::format("reference '{}' in {}: {}", r.symbol, object,
			                              sym.error().message));
		md.references.push_back(patch::Reference{
		    r.symbol, r.object.empty() ? std::string() : object, patch::exact_ref(**sym)});
	}

	TempDir tmp;
	if (tmp.path().empty())
		return make_error(Errc::io, fmt::format("cannot create a temporary directory: {}",
		                                        std::strerror(errno)));
	const std::string object = tmp.path() + "/patch.o";
	std::string compiler = !o.compiler.empty()     ? o.compiler
	                       : !m->compiler.empty()  ? m->compiler
	                       : is_cxx_source(source) ? "g++"
	                                               : "gcc";
	std::vector<std::string> argv = {compiler, "-c"};
	argv.insert(argv.end(), patch_cflags.begin(), patch_cflags.end());
	argv.insert(argv.end(), m->flags.begin(), m->flags.end());
	argv.insert(argv.end(), o.extra_flags.begin(), o.extra_flags.end());
	argv.insert(argv.end(), {"-o", object, source});
	if (auto r = run(argv, o.verbose); !r)
		return make_error(r.error().code,
		                  fmt::format("compiling {}: {}", source, r.error().message));
	auto obj_bytes = patch::read_file(object);
	if (!obj_bytes)
		return obj_bytes.error();
	auto patch_bytes = patch::build_patch(*obj_bytes, md);
	if (!patch_bytes)
		return patch_bytes.error();
	if (auto w = patch::write_file(output, *patch_bytes); !w)
		return w.error();
	auto parsed = patch::parse_patch(*patch_bytes);
	if (!parsed)
		return parsed.error();
	return fmt::format("{}: patch {} for {} ({} redirect(s), {} reference(s))", output,
	                   parsed->identity().to_string(), target, md.redirects.size(),
	                   md.references.size());
}

nlohmann::ordered_json ref_json(const patch::SymbolRef &r)
{
	nlohmann::ordered_json j;
	j["name"] = r.name;
	if (!r.file.empty())
		j["file"] = r.file;
	if (r.symtab_index)
		j["symtab_index"] = *r.symtab_index;
	if (r.address)
		j["address"] = fmt::format("0x{:x}", *r.address);
	return j;
}

std::string ref_text(const patch::SymbolRef &r)
{
	std::string s = r.name;
	std::vector<std::string> d;
	if (!r.file.empty())
		d.push_back("file " + r.file);
	if (r.symtab_index)
		d.push_back(fmt::format("symtab index {}", *r.symtab_index));
	if (r.address)
		d.push_back(fmt::format("0x{:x}", *r.address));
	for (size_t i = 0; i < d.size(); i++)
		s += (i ? ", " : " [") + d[i];
	return d.empty() ? s : s + "]";
}

int inspect(const std::string &path, bool as_json)
{
	auto bytes = patch::read_file(path);
	if (!bytes) {
		fmt::print(stderr, "atlas-mkpatch: {}\n", bytes.error().message);
		return 1;
	}
	auto p = patch::parse_patch(*bytes);
	if (!p) {
		fmt::print(stderr, "atlas-mkpatch: {}: {}\n", path, p.error().message);
		return 1;
	}
	const patch::Metadata &m = p->metadata;
	auto replacement = [&](size_t i) {
		const patch::Symbol &s = p->symbols[p->redirect_symbols[i]];
		return std::pair<std::string, uint64_t>(p->sections[s.section].name, s.size);
	};
	if (as_json) {
		nlohmann::ordered_json j;
		j["format_version"] = m.version;
		j["name"] = m.name;
		j["content_hash"] = patch::to_hex(m.content_hash);
		j["identity"] = p->identity().to_string();
		j["target"] = {{"path", m.target_path},
		               {"build_id", patch::to_hex(m.target_build_id)}};
		j["flags"] = nlohmann::ordered_json::array();
		if (m.requires_global())
			j["flags"].push_back("requires_global");
		j["redirects"] = nlohmann::ordered_json::array();
		for (size_t i = 0; i < m.redirects.size(); i++) {
			auto [sec, size] = replacement(i);
			j["redirects"].push_back({{"target", ref_json(m.redirects[i].target)},
			                          {"replacement", m.redirects[i].replacement},
			                          {"replacement_section", sec},
			                          {"replacement_size", size}});
		}
		j["references"] = nlohmann::ordered_json::array();
		for (const patch::Reference &r : m.references) {
			nlohmann::ordered_json e;
			e["symbol"] = r.patch_symbol;
			if (!r.object.empty())
				e["object"] = r.object;
			e["target"] = ref_json(r.target);
			j["references"].push_back(e);
		}
		fmt::print("{}\n", j.dump(2));
		return 0;
	}
	fmt::print("patch         {}\n", m.name);
	fmt::print("format        version {}\n", m.version);
	fmt::print("content hash  sha256:{}\n", patch::to_hex(m.content_hash));
	fmt::print("target        {}\n", m.target_path);
	fmt::print("build-id      {}\n", patch::to_hex(m.target_build_id));
	fmt::print("flags         {}\n", m.requires_global() ? "requires-global" : "(none)");
	fmt::print("redirects     {}\n", m.redirects.size());
	for (size_t i = 0; i < m.redirects.size(); i++) {
		auto [sec, size] = replacement(i);
		fmt::print("  {} -> {} ({}, {} bytes)\n", ref_text(m.redirects[i].target),
		           m.redirects[i].replacement, sec, size);
	}
	fmt::print("references    {}\n", m.references.size());
	for (const patch::Reference &r : m.references)
		fmt::print("  {} -> {} in {}\n", r.patch_symbol, ref_text(r.target),
		           r.object.empty() ? "the target" : r.object);
	size_t relocs = 0, alloc = 0;
	for (const patch::RelocationSection &rs : p->relocations)
		relocs += rs.entries.size();
	for (const patch::Section &s : p->sections)
		alloc += s.alloc();
	fmt::print("contents      {} loaded sections, {} symbols, {} relocations\n", alloc,
	           p->symbols.size() - 1, relocs);
	return 0;
}

} // namespace

int main(int argc, char **argv)
{
	CLI::App app{
	    "atlas-mkpatch: build an atlas live patch from a hand-written translation unit "
	    "and a JSON manifest, or inspect a patch (docs/patch-format.md)"};
	BuildOptions o;
	std::string inspect_path;
	bool as_json = false;
	auto *manifest = app.add_option("-m,--manifest", o.manifest, "the manifest (JSON)")
	                     ->check(CLI::ExistingFile);
	app.add_option("-o,--output", o.output,
	               "the patch file to write (default: <name>.patch.o)");
	app.add_option("--target", o.target, "the target binary (overrides the manifest's)");
	app.add_option("--symbols", o.symbols,
	               "the target's separate debug file, for a stripped target (overrides the "
	               "manifest's; default: its /usr/lib/debug/.build-id/ file)");
	app.add_option("--cc", o.compiler,
	               "the compiler (default: the manifest's, else gcc, or g++ for C++ sources)");
	app.add_flag("-v,--verbose", o.verbose, "print the compiler command");
	auto *insp = app.add_option("--inspect", inspect_path, "print the metadata of a patch")
	                 ->check(CLI::ExistingFile);
	auto *json = app.add_flag("--json", as_json, "with --inspect: print JSON");
	app.add_option("compiler-args", o.extra_flags,
	               "extra compiler arguments, after --, appended to the manifest's flags");
	insp->excludes(manifest);
	json->needs(insp);
	try {
		app.parse(argc, argv);
	} catch (const CLI::ParseError &e) {
		// --help is a "parse error" with status 0; real usage errors exit with 2.
		return app.exit(e) == 0 ? 0 : 2;
	}
	if (!inspect_path.empty())
		return inspect(inspect_path, as_json);
	if (o.manifest.empty()) {
		fmt::print(stderr,
		           "atlas-mkpatch: give --manifest to build a patch or --inspect to "
		           "read one (--help)\n");
		return 2;
	}
	try {
		auto r = build(o);
		if (!r) {
			fmt::print(stderr, "atlas-mkpatch: {}\n", r.error().message);
			return 1;
		}
		fmt::print("{}\n", *r);
	} catch (const std::exception &e) {
		fmt::print(stderr, "atlas-mkpatch: {}\n", e.what());
		return 1;
	}
	return 0;
}
