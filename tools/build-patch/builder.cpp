// SPDX-License-Identifier: MIT
#include "builder.hpp"

#include "apply_diff.hpp"
#include "archive_members.hpp"
#include "atlas/patch/format.hpp"
#include "atlas/patch/patch.hpp"
#include "atlas/patch/writer.hpp"
#include "build_cache.hpp"
#include "elf_object.hpp"
#include "patch_assembly.hpp"
#include "producer_check.hpp"
#include "progress.hpp"
#include "reproduce_check.hpp"
#include "symbol_names.hpp"
#include "symbol_resolution.hpp"
#include "target_image.hpp"
#include "type_layouts.hpp"
#include "work_tree.hpp"

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <elf.h>
#include <filesystem>
#include <fmt/format.h>
#include <map>
#include <memory>
#include <optional>
#include <set>

namespace atlas::build_patch
{

namespace fs = std::filesystem;

namespace
{

// A patch name from the diff's file name: "0001-Fix-the-thing.patch" -> "0001-Fix-the-thing".
std::string name_from_diff(const std::string &diff)
{
	std::string stem = fs::path(diff).filename().string();
	for (const char *ext : {".patch", ".diff"})
		if (stem.size() > std::strlen(ext) && stem.ends_with(ext))
			stem.resize(stem.size() - std::strlen(ext));
	std::string out;
	for (char c : stem)
		out += (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' ||
		        c == '+' || c == '-')
		           ? c
		           : '-';
	if (out.size() > patch::max_patch_name_size)
		out.resize(patch::max_patch_name_size);
	return out.empty() ? "patch" : out;
}

// One translation unit whose object the patched build rebuilt.
struct Unit {
	CompileRecord original;
	CompileRecord patched;
	std::unique_ptr<ObjectFile> original_object;
	std::unique_ptr<ObjectFile> patched_object;
	ObjectDiff diff;
};

bool same_file_contents(const std::string &a, const std::string &b)
{
	auto x = patch::read_file(a);
	auto y = patch::read_file(b);
	return x && y && *x == *y;
}

std::string relative_to(const std::string &path, const std::string &root)
{
	std::string r = fs::path(path).lexically_relative(root).string();
	return r.empty() || r.starts_with("..") ? path : r;
}

class Builder
{
public:
	Builder(const BuildOptions &o, Progress &p) : o_(o), progress_(p) {}

	BuildReport run()
	{
		if (check_inputs() && read_target() && prepare_work() && build_original() &&
		    apply_fix() && build_patched() && diff_units() && check_unit_flags() &&
		    assemble_and_write()) {
			rep_.outcome = Outcome::written;
		}
		rep_.timings = progress_.timings();
		finish_work_dir();
		return std::move(rep_);
	}

public:
	// The patched build failed in a tree copied from the cache: the run is repeated
	// without the cache (a tree that does not build when moved, e.g. a CMake build
	// directory, or a cache entry gone stale).
	bool patched_failed_on_cached_tree() const noexcept
	{
		return patched_failed_on_cached_tree_;
	}

private:
	bool patched_failed_on_cached_tree_ = false;

	bool stop(Outcome outcome, std::string message)
	{
		rep_.outcome = outcome;
		rep_.message = std::move(message);
		return false;
	}

	bool check_inputs()
	{
		std::error_code ec;
		if (!fs::is_directory(o_.source_dir, ec))
			return stop(Outcome::usage,
			            fmt::format("{} {}: not a directory",
			                        o_.prebuilt ? "--original-build" : "--src",
			                        o_.source_dir));
		if (!fs::is_regular_file(o_.diff, ec))
			return stop(Outcome::usage,
			            fmt::format("--diff {}: no such file", o_.diff));
		if (!fs::is_regular_file(o_.target, ec))
			return stop(Outcome::usage,
			            fmt::format("--target {}: no such file", o_.target));
		rep_.target = fs::absolute(o_.target).lexically_normal().string();
		rep_.name = o_.name.empty() ? name_from_diff(o_.diff) : o_.name;
		return true;
	}

	// The target: build-id, symbols, position independence, and a first look at its
	// compiler flags (a target built without them is refused before anything is built).
	bool read_target()
	{
		auto t = TargetImage::read(rep_.target);
		if (!t)
			return stop(Outcome::mismatch, t.error().message);
		target_ = std::make_unique<TargetImage>(std::move(*t));
		rep_.build_id = patch::to_hex(target_->build_id());
		if (!target_->position_independent())
			return stop(
			    Outcome::mismatch,
			    fmt::format("{} is not position-independent (ELF type EXEC): build "
			                "it with -fPIE and link it with -pie (atlas "
			                "build-patch --print-flags)",
			                rep_.target));
		auto cus = read_compile_units(target_->symbols_path());
		if (!cus)
			return stop(Outcome::mismatch, cus.error().message);
		for (CompileUnit &u : *cus)
			if (is_gcc_unit(u))
				units_dwarf_.push_back(std::move(u));
		if (units_dwarf_.empty())
			return stop(
			    Outcome::mismatch,
			    fmt::format("{} has no DWARF from gcc: build it with -g (the builder "
			                "reads the compiler flags from DW_AT_producer; atlas "
			                "build-patch --print-flags)",
			                target_->symbols_path()));
		bool any = false;
		for (const CompileUnit &u : units_dwarf_)
			any = any || missing_flags(u.producer).empty();
		if (!any) {
			const auto missing = missing_flags(units_dwarf_.front().producer);
			std::string list;
			for (const std::string &m : missing)
				list += (list.empty() ? "" : " ") + m;
			return stop(
			    Outcome::mismatch,
			    fmt::format("{} was not built to be patchable: no compilation unit "
			                "has the required flags ({} lacks: {}); rebuild it with "
			                "$(atlas build-patch --print-flags) in CFLAGS/CXXFLAGS",
			                rep_.target, units_dwarf_.front().name, list));
		}
		progress_.line(fmt::format("target {}: build-id {}, {} symbols, {} gcc units",
		                           rep_.target, rep_.build_id,
		                           target_->symbols().symbols.size(), units_dwarf_.size()));
		return true;
	}

	bool prepare_work()
	{
		if (o_.work_dir.empty()) {
			std::string tmpl =
			    (fs::temp_directory_path() / "atlas-build-patch.XXXXXX").string();
			if (!mkdtemp(tmpl.data()))
				return stop(Outcome::failed,
				            fmt::format("cannot create a work directory in {}: {}",
				                        fs::temp_directory_path().string(),
				                        std::strerror(errno)));
			work_dir_ = tmpl;
			temporary_ = true;
		} else {
			work_dir_ = fs::absolute(o_.work_dir).lexically_normal().string();
		}
		build_command_ = o_.build_command.empty() ? default_build_command(o_.source_dir)
		                                          : o_.build_command;
		// --configure runs once, before the original build (and is cached with it); the
		// patched build is the build command alone.
		original_command_ =
		    o_.configure_command.empty()
		        ? build_command_
		        : fmt::format("( {} ) && {}", o_.configure_command, build_command_);
		look_up_cache();
		if (cached_) {
			progress_.begin("copy", fmt::format("copying the original build of {} from "
			                                    "the cache to {}/tree",
			                                    o_.source_dir, work_dir_));
			auto t = WorkTree::restore(work_dir_, cached_->dir + "/tree", o_.source_dir,
			                           o_.self_exe);
			if (t) {
				tree_ = std::make_unique<WorkTree>(std::move(*t));
				progress_.end(fmt::format("{} files", tree_->files_copied()));
				return true;
			}
			progress_.end("failed");
			warn(fmt::format("the cached original build {} cannot be used ({}): "
			                 "building the original tree",
			                 cached_->dir, t.error().message));
			cached_.reset();
			std::error_code ec;
			fs::remove_all(work_dir_ + "/tree", ec);
			fs::remove_all(work_dir_ + "/bin", ec);
		}
		progress_.begin("copy",
		                fmt::format("copying {} to {}/tree", o_.source_dir, work_dir_));
		auto t = WorkTree::create(work_dir_, o_.source_dir, o_.self_exe);
		if (!t)
			return stop(Outcome::failed, t.error().message);
		tree_ = std::make_unique<WorkTree>(std::move(*t));
		progress_.end(fmt::format("{} files", tree_->files_copied()));
		return true;
	}

	// The cache of original builds: the key of this tree and command, and its entry.
	void look_up_cache()
	{
		if (!o_.use_cache || o_.prebuilt)
			return;
		cache_dir_ = o_.cache_dir.empty() ? default_cache_dir() : o_.cache_dir;
		if (cache_dir_.empty()) {
			warn(
			    fmt::format("no cache directory (set {} or HOME): the original tree is "
			                "built in full",
			                env_cache_dir));
			return;
		}
		progress_.begin("cache-key",
		                fmt::format("looking up the original build in {}", cache_dir_));
		auto k = original_build_key(o_.source_dir, original_command_, o_.self_exe);
		if (!k) {
			progress_.end("no key");
			warn(fmt::format("the original build cannot be cached: {}",
			                 k.error().message));
			return;
		}
		key_ = std::move(*k);
		cached_ = cache_lookup(cache_dir_, *key_);
		progress_.end(cached_
		                  ? fmt::format("found {} ({} objects, built in {:.2f} s)",
		                                cached_->dir, cached_->objects, cached_->seconds)
		                  : fmt::format("not there ({} files hashed)", key_->files));
	}

	bool build_original()
	{
		if (o_.prebuilt)
			return take_original_build();
		if (cached_) {
			auto r = cache_restore_records(*cached_, work_dir_);
			if (!r)
				return stop(
				    Outcome::failed,
				    fmt::format("the cached original build {} cannot be read: {}; "
				                "remove it, or run again with --no-cache",
				                cached_->dir, r.error().message));
			original_ = std::move(*r);
			drop_temporaries(original_);
			rep_.objects_built = original_.compiles.size();
			rep_.original_build = "reused";
			rep_.cache_entry = cached_->dir;
			progress_.line(
			    fmt::format("original build reused from the cache: {} objects",
			                original_.compiles.size()));
			if (original_.compiles.empty())
				return stop(
				    Outcome::failed,
				    fmt::format("the cached original build {} has no objects: "
				                "remove it, or run again with --no-cache",
				                cached_->dir));
			return true;
		}
		progress_.begin("build-original",
		                fmt::format("building the original tree: {}", original_command_));
		auto r = tree_->build("original", original_command_);
		if (!r) {
			build_failed_ = true;
			return stop(Outcome::failed, r.error().message);
		}
		original_ = std::move(*r);
		drop_temporaries(original_);
		rep_.objects_built = original_.compiles.size();
		const double seconds =
		    progress_.end(fmt::format("{} objects compiled", original_.compiles.size()));
		if (original_.compiles.empty())
			return stop(
			    Outcome::failed,
			    fmt::format(
			        "the original build ({}) compiled nothing through the compiler "
			        "wrapper: the tree was already built (give a clean source "
			        "tree), or the build calls its compiler by an absolute path "
			        "(use gcc/cc/g++/c++ from PATH); see {}",
			        original_command_, tree_->log_of("original")));
		if (key_) {
			progress_.begin(
			    "cache-store",
			    fmt::format("keeping the original build in {}", cache_dir_));
			auto e = cache_store(cache_dir_, *key_, work_dir_, seconds,
			                     original_.compiles.size());
			if (e) {
				rep_.original_build = "stored";
				rep_.cache_entry = e->dir;
				progress_.end(e->dir);
			} else {
				progress_.end("failed");
				warn(fmt::format("the original build was not cached: {}",
				                 e.error().message));
			}
		}
		return true;
	}

	// --original-build: the copied tree's objects are the original build. Each is kept
	// (the patched build overwrites those it recompiles); the link records come from the
	// patched build's relink, which links the same objects.
	bool take_original_build()
	{
		progress_.begin("build-original", fmt::format("taking the objects of {} as the "
		                                              "original build",
		                                              o_.source_dir));
		const std::string records = work_dir_ + "/records/original";
		std::error_code ec;
		fs::create_directories(records, ec);
		if (ec)
			return stop(Outcome::failed,
			            fmt::format("cannot create {}: {}", records, ec.message()));
		size_t n = 0;
		for (auto it = fs::recursive_directory_iterator(tree_->tree(), ec);
		     !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
			if (!it->is_regular_file() || it->is_symlink() ||
			    it->path().extension() != ".o")
				continue;
			CompileRecord r;
			r.object = it->path().lexically_normal().string();
			r.cwd = it->path().parent_path().string();
			r.copy = fmt::format("{}/object-{}.o", records, n++);
			fs::copy_file(r.object, r.copy, fs::copy_options::overwrite_existing, ec);
			if (ec)
				break;
			original_.compiles.push_back(std::move(r));
		}
		if (ec)
			return stop(Outcome::failed, fmt::format("reading the objects of {}: {}",
			                                         o_.source_dir, ec.message()));
		rep_.objects_built = 0;
		rep_.original_build = "given";
		progress_.end(fmt::format("{} objects", original_.compiles.size()));
		if (original_.compiles.empty())
			return stop(
			    Outcome::failed,
			    fmt::format("--original-build {} has no objects (*.o): give the "
			                "tree the target was built in, after its build",
			                o_.source_dir));
		return true;
	}

	bool apply_fix()
	{
		progress_.begin("apply", fmt::format("applying {}", o_.diff));
		auto a =
		    apply_diff(tree_->tree(), o_.diff, work_dir_ + "/apply.log", o_.keep_lines);
		if (!a)
			return stop(Outcome::failed, a.error().message);
		rep_.line_directives = a->line_directives;
		for (const std::string &w : a->warnings)
			warn(w);
		std::string files;
		for (const std::string &f : a->modified)
			files += (files.empty() ? "" : ", ") + f;
		progress_.end(fmt::format(
		    "-p{}, {} file(s) changed ({}){}", a->strip, a->modified.size(), files,
		    a->line_directives ? fmt::format(", {} #line directive(s) keep the "
		                                     "line numbers of unchanged lines",
		                                     a->line_directives)
		                       : ""));
		if (!a->created.empty() || !a->deleted.empty())
			warn(fmt::format("the diff creates {} and deletes {} file(s): only changes "
			                 "compiled into existing objects are patched",
			                 a->created.size(), a->deleted.size()));
		return true;
	}

	bool build_patched()
	{
		progress_.begin("build-patched",
		                fmt::format("building the patched tree: {}", build_command_));
		auto r = tree_->build("patched", build_command_);
		if (!r) {
			build_failed_ = true;
			patched_failed_on_cached_tree_ = cached_.has_value();
			return stop(Outcome::failed, r.error().message);
		}
		patched_ = std::move(*r);
		const size_t temporary = drop_temporaries(patched_);
		if (o_.prebuilt)
			original_.links = patched_.links;
		rep_.objects_rebuilt = patched_.compiles.size();
		std::string list;
		for (const CompileRecord &c : patched_.compiles)
			list += (list.empty() ? "" : ", ") + relative_to(c.object, tree_->tree());
		progress_.end(fmt::format("{} object(s) recompiled{}{}{}", patched_.compiles.size(),
		                          list.empty() ? "" : ": ", list,
		                          temporary
		                              ? fmt::format(" (and {} temporary object(s) the "
		                                            "build deleted, e.g. configure "
		                                            "checks)",
		                                            temporary)
		                              : ""));
		return true;
	}

	// Objects the build deleted again (configure's conftest.o, ...) are no part of any
	// program: left out of the comparison.
	static size_t drop_temporaries(BuildRecords &records)
	{
		auto gone = [](const CompileRecord &c) {
			std::error_code ec;
			return !fs::exists(c.object, ec);
		};
		const size_t before = records.compiles.size();
		std::erase_if(records.compiles, gone);
		return before - records.compiles.size();
	}

	// The objects linked into the target, by the original build's link command whose
	// output has the target's name.
	std::optional<std::set<std::string>> target_objects()
	{
		// The target's name, or the name of the file it links to (libfoo.so.1 ->
		// libfoo.so.1.2.3, as libtool links it).
		const std::string name = fs::path(rep_.target).filename().string();
		std::error_code ec;
		const std::string real = fs::canonical(rep_.target, ec).filename().string();
		const LinkRecord *link = nullptr;
		for (const LinkRecord &l : original_.links) {
			const std::string out = fs::path(l.output).filename().string();
			if (out == name || out == real)
				link = &l;
		}
		if (!link) {
			warn(fmt::format("no link step of the original build writes '{}': every "
			                 "changed object is assumed to be part of the target",
			                 name));
			return std::nullopt;
		}
		for (const std::string &s : link->compiled_and_linked)
			warn(fmt::format(
			    "{} is compiled and linked in one step: its changes are not "
			    "seen (compile it with -c)",
			    relative_to(s, tree_->tree())));
		std::set<std::string> objs(link->inputs.begin(), link->inputs.end());
		for (const std::string &i : link->inputs)
			if (i.ends_with(".a") && !add_archive_members(i, objs)) {
				warn(fmt::format("{} links the archive {}, whose members cannot be "
				                 "read: every changed object is assumed to be part "
				                 "of the target",
				                 name, relative_to(i, tree_->tree())));
				return std::nullopt;
			}
		return objs;
	}

	// The objects of the original build an archive the target links holds: for a regular
	// archive, the compiled objects with a member's file name (those in the archive's
	// directory when there are several), for a thin one the paths it names.
	bool add_archive_members(const std::string &archive, std::set<std::string> &objs)
	{
		auto members = archive_members(archive);
		if (!members)
			return false;
		const fs::path dir = fs::path(archive).parent_path();
		std::map<std::string, std::vector<std::string>> by_name;
		for (const CompileRecord &c : original_.compiles)
			by_name[fs::path(c.object).filename().string()].push_back(c.object);
		for (const std::string &m : *members) {
			const fs::path mp(m);
			if (mp.has_parent_path()) { // a thin archive's path
				objs.insert(
				    (mp.is_absolute() ? mp : dir / mp).lexically_normal().string());
				continue;
			}
			auto it = by_name.find(m);
			if (it == by_name.end())
				continue; // not compiled through the wrapper: the diff cannot
				          // change it
			std::vector<std::string> here;
			for (const std::string &o : it->second)
				if (fs::path(o).parent_path() == dir)
					here.push_back(o);
			for (const std::string &o : here.empty() ? it->second : here)
				objs.insert(o);
		}
		return true;
	}

	bool diff_units()
	{
		progress_.begin("diff", "comparing the changed objects");
		std::map<std::string, const CompileRecord *> before;
		for (const CompileRecord &c : original_.compiles)
			before[c.object] = &c; // the last compile of each object
		std::map<std::string, const CompileRecord *> after;
		for (const CompileRecord &c : patched_.compiles)
			after[c.object] = &c;
		const auto linked = target_objects();
		size_t identical = 0;
		for (const auto &[object, rec] : after) {
			const std::string rel = relative_to(object, tree_->tree());
			if (linked && !linked->count(object)) {
				warn(fmt::format("{} changed but is not linked into {}: ignored",
				                 rel, fs::path(rep_.target).filename().string()));
				continue;
			}
			auto b = before.find(object);
			if (b == before.end()) {
				rep_.refusals.push_back(
				    {rel,
				     fmt::format("{} is a new translation unit ({}): new source "
				                 "files are not supported yet; put the new code in "
				                 "an existing file",
				                 rel, relative_to(rec->source, tree_->tree()))});
				continue;
			}
			if (same_file_contents(b->second->copy, rec->copy)) {
				identical++;
				continue;
			}
			auto u = std::make_unique<Unit>();
			u->original = *b->second;
			u->patched = *rec;
			auto oo = ObjectFile::read(u->original.copy);
			auto po = ObjectFile::read(u->patched.copy);
			if (!oo)
				return stop(Outcome::failed, oo.error().message);
			if (!po)
				return stop(Outcome::failed, po.error().message);
			u->original_object = std::make_unique<ObjectFile>(std::move(*oo));
			u->patched_object = std::make_unique<ObjectFile>(std::move(*po));
			u->diff = diff_objects(*u->original_object, *u->patched_object);
			check_layouts(*u, rel);
			report_unit(*u, rel);
			for (const Refusal &r : u->diff.refusals)
				rep_.refusals.push_back(
				    {r.symbol, fmt::format("{}: {}", rel, r.reason)});
			if (!u->diff.functions.empty() || !u->diff.refusals.empty())
				units_.push_back(std::move(u));
		}
		refuse_layouts();
		size_t functions = 0;
		for (const auto &u : units_)
			functions += u->diff.functions.size();
		progress_.end(fmt::format("{} object(s) with code changes, {} function(s) in the "
		                          "patch, {} object(s) rebuilt identical",
		                          units_.size(), functions, identical));
		if (!rep_.refusals.empty()) {
			std::string m = "the change cannot be live-patched:";
			for (const Refusal &r : rep_.refusals)
				m += "\n  " + r.reason;
			return stop(Outcome::refused, m);
		}
		if (units_.empty())
			return stop(
			    Outcome::no_change,
			    fmt::format("no change to this binary: the diff changes no code of "
			                "{} ({} object(s) recompiled, none with different "
			                "functions)",
			                rep_.target, patched_.compiles.size()));
		return true;
	}

	// Types whose layout the diff changes: existing data would be misread.
	void check_layouts(Unit &u, const std::string &rel)
	{
		auto a = read_type_layouts(u.original.copy);
		auto b = read_type_layouts(u.patched.copy);
		if (!a || !b) {
			warn(fmt::format("{}: the type layouts cannot be compared: {}", rel,
			                 (!a ? a.error() : b.error()).message));
			return;
		}
		if (a->types.empty())
			warn(fmt::format("{}: no DWARF types in the object: changed struct layouts "
			                 "cannot be detected (build with -g)",
			                 rel));
		for (const LayoutChange &c : changed_layouts(*a, *b)) {
			LayoutRefusal &r = layouts_[{c.type, c.detail}];
			r.units.push_back(relative_to(u.patched.source, tree_->tree()));
			r.variables.insert(c.variables.begin(), c.variables.end());
		}
	}

	// One refusal per changed type, naming the units that use it and the variables that
	// hold it.
	void refuse_layouts()
	{
		for (const auto &[key, r] : layouts_) {
			const auto &[type, detail] = key;
			std::string units, held;
			for (size_t i = 0; i < r.units.size() && i < 4; i++)
				units += (i ? ", " : "") + r.units[i];
			if (r.units.size() > 4)
				units += fmt::format(" and {} more", r.units.size() - 4);
			for (const std::string &v : r.variables)
				held += (held.empty() ? "; held by " : ", ") + v;
			rep_.refusals.push_back(
			    {type,
			     fmt::format("type '{}' changed its layout ({}; used in {}){}: data of "
			                 "this type the running program already holds keep the old "
			                 "layout and the patched code would misread them; a live "
			                 "patch cannot convert existing data",
			                 type, detail, units, held)});
		}
	}

	void report_unit(const Unit &u, const std::string &rel)
	{
		UnitReport r;
		r.object = rel;
		r.source = relative_to(u.patched.source, tree_->tree());
		const auto &ps = u.patched_object->symbols();
		std::string changed;
		for (const IncludedFunction &f : u.diff.functions) {
			FunctionReport fr{ps[f.symbol].name, to_string(f.why), f.because,
			                  f.redirected()};
			changed += fmt::format("{}{} ({}{})", changed.empty() ? "" : ", ", fr.name,
			                       fr.why, fr.because.empty() ? "" : " " + fr.because);
			r.functions.push_back(std::move(fr));
		}
		for (uint32_t d : u.diff.own_data)
			r.own_data.push_back(ps[d].name);
		progress_.line(fmt::format("  {}: {}", r.source,
		                           changed.empty() ? "no function changed" : changed));
		rep_.units.push_back(std::move(r));
	}

	// The DWARF units of a changed source must carry the required flags.
	bool check_unit_flags()
	{
		for (const auto &u : units_) {
			const std::string rel = relative_to(u->patched.source, tree_->tree());
			const CompileUnit *cu = nullptr;
			for (const CompileUnit &c : units_dwarf_) {
				fs::path p = fs::path(c.name).is_absolute()
				                 ? fs::path(c.name)
				                 : fs::path(c.comp_dir) / c.name;
				std::string abs = p.lexically_normal().string();
				if (abs == rel || abs.ends_with("/" + rel))
					cu = &c;
			}
			if (!cu)
				return stop(
				    Outcome::mismatch,
				    fmt::format("{} has no DWARF unit for {}: build the target "
				                "with -g, from this source tree",
				                target_->symbols_path(), rel));
			const auto missing = missing_flags(cu->producer);
			if (!missing.empty()) {
				std::string list;
				for (const std::string &m : missing)
					list += (list.empty() ? "" : " ") + m;
				return stop(
				    Outcome::mismatch,
				    fmt::format(
				        "{} in {} was compiled without {}: a function-level "
				        "patch of it is not safe; rebuild the target with "
				        "$(atlas build-patch --print-flags)",
				        rel, rep_.target, list));
			}
		}
		return true;
	}

	// The target symbol a symbol of an original object names (exact: file for locals).
	patch::Result<const patch::TargetSymbol *> resolve(const ObjectFile &obj, uint32_t sym,
	                                                   patch::SymbolKind kind)
	{
		return resolve_in_target(target_->symbols(), obj, sym, kind);
	}

	bool assemble_and_write()
	{
		progress_.begin("assemble", "assembling the patch object");
		std::vector<UnitDiff> diffs;
		for (const auto &u : units_)
			diffs.push_back(
			    {u->original_object.get(), u->patched_object.get(), &u->diff});
		auto a = assemble_patch(diffs, rep_.name + ".patch");
		if (!a)
			return stop(Outcome::failed, a.error().message);

		patch::Metadata md;
		md.name = rep_.name;
		md.target_path = rep_.target;
		md.target_build_id = target_->build_id();
		for (const PlannedRedirect &r : a->redirects) {
			const Unit &u = *units_[r.unit];
			auto ts = resolve(*u.original_object, r.original_symbol,
			                  patch::SymbolKind::function);
			if (!ts)
				return stop(Outcome::mismatch,
				            fmt::format("function '{}' of {} is not in {}: {}",
				                        r.target_name,
				                        u.original_object->source_name(),
				                        rep_.target, ts.error().message));
			if ((*ts)->size < 5)
				rep_.refusals.push_back(
				    {r.target_name,
				     fmt::format(
				         "function '{}' is {} byte(s) long in the target, shorter "
				         "than the 5-byte jump a redirect writes",
				         r.target_name, (*ts)->size)});
			check_reproduced(u, r.original_symbol, **ts);
			if (r.target_name == "main")
				warn("main() is in the patch: the thread running it never returns "
				     "from it, "
				     "so an apply waits for it in vain (the stack check refuses "
				     "it); move "
				     "the change out of main()");
			md.redirects.push_back({patch::exact_ref(**ts), r.replacement});
			rep_.redirects.emplace_back(r.target_name, r.replacement);
		}
		for (const PlannedReference &r : a->references) {
			auto ts = r.unit ? resolve(*units_[*r.unit]->original_object,
			                           r.original_symbol, patch::SymbolKind::any)
			                 : patch::resolve_symbol(target_->symbols(),
			                                         {r.target_name, r.file, {}, {}},
			                                         patch::SymbolKind::any);
			if (!ts)
				return stop(Outcome::mismatch,
				            fmt::format("'{}' of {} is not in {}: {}",
				                        r.target_name, r.file, rep_.target,
				                        ts.error().message));
			md.references.push_back({r.patch_symbol, "", patch::exact_ref(**ts)});
			rep_.references.emplace_back(r.patch_symbol, patch::describe(**ts));
		}
		progress_.end(fmt::format("{} section(s), {} FDE(s), {} redirect(s), {} "
		                          "reference(s) to local symbols",
		                          a->sections, a->fdes, md.redirects.size(),
		                          md.references.size()));
		if (!rep_.refusals.empty()) {
			std::string m = "the change cannot be live-patched:";
			for (const Refusal &r : rep_.refusals)
				m += "\n  " + r.reason;
			return stop(Outcome::refused, m);
		}
		if (!rep_.mismatches.empty()) {
			std::string m =
			    fmt::format("the original build does not reproduce {}; no patch "
			                "written. Functions that differ:",
			                rep_.target);
			for (const std::string &x : rep_.mismatches)
				m += "\n  " + x;
			m += "\nBuild the target from this source tree with this build command "
			     "(same "
			     "compiler and flags), or give the tree and command it was built from.";
			return stop(Outcome::mismatch, m);
		}
		if (md.redirects.empty())
			return stop(Outcome::no_change,
			            "no change to this binary: the diff adds code but changes no "
			            "existing function, so nothing would call it");
		auto bytes = patch::build_patch(a->object, md);
		if (!bytes)
			return stop(
			    Outcome::failed,
			    fmt::format("the patch object is not valid: {} (work directory {} "
			                "kept)",
			                bytes.error().message, keep_work_dir()));
		rep_.output = o_.output.empty()
		                  ? fmt::format("{}-{}.patch.o", rep_.build_id, rep_.name)
		                  : o_.output;
		if (auto w = patch::write_file(rep_.output, *bytes); !w)
			return stop(Outcome::failed, w.error().message);
		auto parsed = patch::parse_patch(*bytes);
		if (!parsed)
			return stop(Outcome::failed, parsed.error().message);
		rep_.identity = parsed->identity().to_string();
		rep_.message = fmt::format("{}: patch {} for {} ({} redirect(s), {} reference(s))",
		                           rep_.output, rep_.identity, rep_.target,
		                           md.redirects.size(), md.references.size());
		return true;
	}

	// The function and its .cold pieces must be the target's.
	void check_reproduced(const Unit &u, uint32_t sym, const patch::TargetSymbol &ts)
	{
		const ObjectFile &obj = *u.original_object;
		if (auto why = reproduction_mismatch(obj, sym, *target_, ts))
			rep_.mismatches.push_back(fmt::format(
			    "{} ({}): {}", obj.symbols()[sym].name, obj.source_name(), *why));
		for (const ObjRelocation &r : obj.relocations(obj.symbols()[sym].section)) {
			const ObjSymbol &t = obj.symbols()[r.symbol];
			std::optional<uint32_t> piece;
			if (t.type == STT_FUNC && is_cold_piece(t.name))
				piece = r.symbol;
			else if (t.type == STT_SECTION && t.in_section())
				if (auto own = obj.owner(t.section, 0);
				    own && is_cold_piece(obj.symbols()[*own].name))
					piece = own;
			if (!piece || !checked_pieces_.insert({&obj, *piece}).second)
				continue;
			auto pts = resolve(obj, *piece, patch::SymbolKind::function);
			if (!pts) {
				rep_.mismatches.push_back(fmt::format(
				    "{} ({}): not in the target: {}", obj.symbols()[*piece].name,
				    obj.source_name(), pts.error().message));
				continue;
			}
			if (auto why = reproduction_mismatch(obj, *piece, *target_, **pts))
				rep_.mismatches.push_back(fmt::format("{} ({}): {}",
				                                      obj.symbols()[*piece].name,
				                                      obj.source_name(), *why));
		}
	}

	void warn(const std::string &w)
	{
		progress_.line("warning: " + w);
		rep_.warnings.push_back(w);
	}

	std::string keep_work_dir()
	{
		keep_ = true;
		return work_dir_;
	}

	void finish_work_dir()
	{
		if (work_dir_.empty())
			return;
		if (o_.keep_work || keep_ || (build_failed_ && !patched_failed_on_cached_tree_) ||
		    !temporary_) {
			rep_.work_dir = work_dir_;
			if (temporary_)
				progress_.line(fmt::format("work directory kept: {}", work_dir_));
			return;
		}
		std::error_code ec;
		fs::remove_all(work_dir_, ec);
	}

	const BuildOptions &o_;
	Progress &progress_;
	BuildReport rep_;
	std::unique_ptr<TargetImage> target_;
	std::vector<CompileUnit> units_dwarf_;
	std::string work_dir_;
	bool temporary_ = false, keep_ = false, build_failed_ = false;
	std::unique_ptr<WorkTree> tree_;
	std::string build_command_, original_command_;
	std::string cache_dir_;
	std::optional<CacheKey> key_;
	std::optional<CacheEntry> cached_;
	BuildRecords original_, patched_;
	std::vector<std::unique_ptr<Unit>> units_;
	std::set<std::pair<const ObjectFile *, uint32_t>> checked_pieces_;
	struct LayoutRefusal {
		std::vector<std::string> units;
		std::set<std::string> variables;
	};
	std::map<std::pair<std::string, std::string>, LayoutRefusal> layouts_;
};

} // namespace

BuildReport build_patch_from_diff(const BuildOptions &options, Progress &progress)
{
	Builder b(options, progress);
	BuildReport r = b.run();
	if (!b.patched_failed_on_cached_tree())
		return r;
	progress.line(fmt::format("the patched build failed in the tree copied from the cache "
	                          "({}): building the original tree again, without the cache",
	                          r.cache_entry));
	BuildOptions again = options;
	again.use_cache = false;
	if (!again.work_dir.empty()) {
		std::error_code ec;
		for (const char *d : {"tree", "bin", "records"})
			fs::remove_all(fs::path(again.work_dir) / d, ec);
	}
	Builder b2(again, progress);
	BuildReport r2 = b2.run();
	r2.warnings.insert(r2.warnings.begin(),
	                   fmt::format("the patched build failed in the tree copied from the "
	                               "cache entry {}; built again without the cache",
	                               r.cache_entry));
	return r2;
}

} // namespace atlas::build_patch
