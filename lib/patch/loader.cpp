// SPDX-License-Identifier: MIT
// The patch loader's passes (docs/patch-format.md, "Loader"); the redirect engine, unwind
// registration and the loaded-objects scan are in their own files (loader_internal.hpp).
//
// Order of work, so that a refusal leaves the process unchanged: parse and validate the file;
// find the target object among the loaded ones by build-id; resolve every redirect site (and
// check it can take a jump) and every symbol; lay out the image; only then reserve address
// space, relocate into private buffers, and publish the mappings (text from a memfd as R+X,
// never W+X). Redirects are written by CodeChange::apply(), not here.
#include "atlas/patch/loader.hpp"

#include "atlas/patch/reloc.hpp"
#include "atlas/patch/target.hpp"
#include "internal.hpp"
#include "loader_internal.hpp"

#include <Zydis/Zydis.h>
#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <dlfcn.h>
#include <elf.h>
#include <fmt/format.h>
#include <map>
#include <set>
#include <sys/mman.h>
#include <tuple>
#include <unistd.h>

// .fini_array entries are registered like destructors, against the patch's handle: run by
// __cxa_finalize in unreachable() before the text is unmapped, or at exit if still mapped.
extern "C" int __cxa_atexit(void (*fn)(void *), void *arg, void *dso);

namespace atlas::patch
{

namespace
{

using namespace detail;

std::string base_name(const std::string &p)
{
	size_t s = p.rfind('/');
	return s == std::string::npos ? p : p.substr(s + 1);
}

// How a patch symbol resolved.
struct Resolved {
	enum Kind { none, internal, absolute, tls } kind = none;
	uint32_t section = 0; // internal
	uint64_t value = 0;   // internal: offset in section; absolute: address
	// tls: the module and offset in its block, and (when static) the thread-pointer offset.
	size_t modid = 0;
	int64_t dtpoff = 0;
	std::optional<int64_t> tpoff;
	std::string tls_object;
};

// The cells the loader generates next to the patch.
enum class CellKind { stub, got, got_tpoff, tls_index };
using CellKey = std::tuple<CellKind, uint64_t, uint64_t>;

struct SectionPlace {
	bool loaded = false;
	bool rx = false;
	uint64_t offset = 0; // within its region
	uint64_t size = 0;
};

// Decodes the target function and refuses it when the jump would not fit or a branch in it
// lands inside the bytes the jump overwrites (it would execute half an instruction).
// `code` holds the function's bytes as the file has them: the entry in memory may already hold
// an earlier patch's jump, after which the rest of the first instruction would decode as
// garbage.
Expected<void> check_redirect_site(const RedirectSite &r, const uint8_t *code)
{
	if (r.entry + r.size < r.site + jump_size)
		return make_error(
		    Errc::unsupported,
		    fmt::format(
		        "function '{}' at 0x{:x} is {} bytes long: too short for the {}-byte "
		        "jump{} (patch its caller instead)",
		        r.name, r.entry, r.size, jump_size,
		        r.site != r.entry ? " after its endbr64" : ""));
	ZydisDecoder decoder;
	if (ZYAN_FAILED(
	        ZydisDecoderInit(&decoder, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64)))
		return make_error(Errc::internal, "Zydis decoder initialisation failed");
	uint64_t off = 0;
	while (off < r.size) {
		ZydisDecodedInstruction insn;
		ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
		if (ZYAN_FAILED(
		        ZydisDecoderDecodeFull(&decoder, code + off, r.size - off, &insn, ops)))
			return make_error(
			    Errc::unsupported,
			    fmt::format("function '{}': cannot decode the instruction at "
			                "offset 0x{:x}; refusing to redirect code that "
			                "cannot be checked for branches into its entry",
			                r.name, off));
		for (unsigned i = 0; i < insn.operand_count; i++) {
			const ZydisDecodedOperand &op = ops[i];
			if (op.type != ZYDIS_OPERAND_TYPE_IMMEDIATE || !op.imm.is_relative)
				continue;
			ZyanU64 dest = 0;
			if (ZYAN_FAILED(ZydisCalcAbsoluteAddress(&insn, &op, r.entry + off, &dest)))
				continue;
			if (dest > r.site && dest < r.site + jump_size)
				return make_error(
				    Errc::unsupported,
				    fmt::format(
				        "function '{}': the instruction at offset 0x{:x} "
				        "branches to offset 0x{:x}, inside the {} bytes the "
				        "redirect overwrites; refusing (patch its caller "
				        "instead)",
				        r.name, off, dest - r.entry, jump_size));
		}
		off += insn.length;
	}
	return {};
}

// Free address space for `size` bytes such that it and [lo, hi) fit in near_span; the
// candidate closest to the object wins. Reserved with MAP_FIXED_NOREPLACE (PROT_NONE), so a
// concurrent mapping is never clobbered: on EEXIST the search runs again.
Expected<uint64_t> reserve_near(uint64_t lo, uint64_t hi, uint64_t size)
{
	for (int attempt = 0; attempt < 8; attempt++) {
		FILE *f = std::fopen("/proc/self/maps", "re");
		if (!f) {
			const int err = errno;
			return make_error(
			    Errc::io,
			    fmt::format("cannot read /proc/self/maps: {}", std::strerror(err)),
			    err);
		}
		std::vector<std::pair<uint64_t, uint64_t>> maps;
		char line[4096];
		while (std::fgets(line, sizeof line, f)) {
			unsigned long s, e;
			if (std::sscanf(line, "%lx-%lx", &s, &e) == 2)
				maps.emplace_back(s, e);
		}
		std::fclose(f);
		std::sort(maps.begin(), maps.end());
		std::vector<std::pair<uint64_t, uint64_t>> gaps;
		uint64_t prev = 0x10000; // vm.mmap_min_addr's default
		for (auto [s, e] : maps) {
			if (s > prev)
				gaps.emplace_back(prev, s);
			prev = std::max(prev, e);
		}
		if (prev < 0x7ffffffff000)
			gaps.emplace_back(prev, 0x7ffffffff000);
		uint64_t best = 0, best_dist = UINT64_MAX;
		for (auto [gs, ge] : gaps) {
			uint64_t s0 = align_up(gs, page_size);
			if (ge < s0 || ge - s0 < size)
				continue;
			for (uint64_t c : {(ge - size) & ~(page_size - 1), s0}) {
				uint64_t span = std::max(c + size, hi) - std::min(c, lo);
				if (span > near_span)
					continue;
				uint64_t dist = c + size <= lo ? lo - (c + size)
				                : c >= hi      ? c - hi
				                               : 0;
				if (dist < best_dist) {
					best = c;
					best_dist = dist;
				}
			}
		}
		if (best_dist == UINT64_MAX)
			return make_error(Errc::out_of_range,
			                  fmt::format("no free {} bytes within 2 GiB of the target "
			                              "object [0x{:x}, 0x{:x})",
			                              size, lo, hi));
		void *p = mmap(reinterpret_cast<void *>(best), size, PROT_NONE,
		               MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
		if (p == reinterpret_cast<void *>(best))
			return best;
		if (p != MAP_FAILED)
			munmap(p, size); // an old kernel ignored the flag: try again
		else if (const int err = errno; err != EEXIST)
			return make_error(Errc::io,
			                  fmt::format("cannot reserve {} bytes at 0x{:x}: {}", size,
			                              best, std::strerror(err)),
			                  err);
	}
	return make_error(Errc::io, "the address space kept changing while placing the patch");
}

// Everything load_patch works out before it maps anything.
class Loader
{
public:
	Loader(const Patch &patch, const LoadOptions &options) : p_(patch), opt_(options) {}

	Expected<std::shared_ptr<atlas::CodeChange>> run();

private:
	Expected<void> find_target();
	Expected<void> resolve_redirects();
	Expected<const uint8_t *> file_bytes(uint64_t vaddr, uint64_t size) const;
	Expected<void> resolve_symbols();
	// The target's defined global symbols by name; the patch symbols that replace a function,
	// with its original entry.
	using Globals = std::map<std::string, const TargetSymbol *>;
	using Replaced = std::map<uint32_t, uint64_t>;
	Resolved resolve_defined(uint32_t i, const Symbol &sym, const Replaced &replaced,
	                         const Globals &target_globals) const;
	Expected<Resolved> resolve_reference(const Symbol &sym, const Reference &ref,
	                                     std::map<std::string, TargetSymbols> &other_syms);
	bool resolve_in_earlier(const Symbol &sym, Resolved &out);
	Expected<void> check_tls_relocations() const;
	Expected<Resolved> resolve_in_object(const LoadedObject &o, const TargetSymbols &syms,
	                                     const TargetSymbol &s);
	void layout();
	uint64_t cell(CellKind kind, uint64_t a, uint64_t b);
	uint64_t address_of(const Resolved &r) const;
	Expected<void> relocate();
	Expected<void> relocate_section(const RelocationSection &rs);
	uint64_t slot_of(const Relocation &e, const Resolved &r) const;
	void write_cells();
	Expected<void> place_redirects();
	Expected<std::shared_ptr<atlas::CodeChange>> publish();
	std::shared_ptr<PatchImpl> make_patch() const;
	Expected<void> map_image();
	void register_unwind(PatchImpl &impl) const;
	void for_each_array_entry(uint32_t type, const std::function<void(uint64_t)> &fn) const;

	std::string who() const
	{
		return "patch " + p_.metadata.name;
	}
	static bool within(const atlas::AddressRange &r, uint64_t a)
	{
		return a >= r.start && a < r.end;
	}
	void note_base(const std::shared_ptr<const LoadedPatch> &p)
	{
		if (std::find(bases_.begin(), bases_.end(), p) == bases_.end())
			bases_.push_back(p);
	}
	std::vector<std::shared_ptr<const LoadedPatch>> bases_; // earlier patches it binds into

	const Patch &p_;
	const LoadOptions &opt_;
	std::vector<LoadedObject> objects_;
	const LoadedObject *target_ = nullptr;
	TargetSymbols target_syms_;
	std::vector<uint8_t> target_file_;
	std::vector<RedirectSite> redirects_;
	std::vector<Resolved> syms_;
	bool needs_dso_handle_ = false;
	std::vector<SectionPlace> places_;
	std::map<CellKey, uint64_t> cells_; // offset in the rx region
	uint64_t cells_offset_ = 0, eh_frame_offset_ = 0, dso_offset_ = 0;
	uint32_t eh_frame_section_ = 0;
	uint64_t rx_size_ = 0, rw_size_ = 0, base_ = 0;
	std::vector<uint8_t> rx_, rw_;
	std::set<uint32_t> stubs_used_;
};

Expected<void> Loader::find_target()
{
	objects_ = loaded_objects();
	const auto &want = p_.metadata.target_build_id;
	for (const auto &o : objects_)
		if (o.build_id == want) {
			target_ = &o;
			break;
		}
	if (!target_) {
		std::string seen;
		for (const auto &o : objects_)
			if (base_name(o.path()) == base_name(p_.metadata.target_path) ||
			    (o.name.empty() && !o.build_id.empty()))
				seen +=
				    fmt::format("\n  {} has build-id {}", o.display(),
				                o.build_id.empty() ? "(none)" : to_hex(o.build_id));
		return make_error(
		    Errc::not_found,
		    fmt::format("{}: its target {} (build-id {}) is not loaded in this "
		                "process; loaded instead:{}\nrebuild the patch "
		                "against the running binary",
		                who(), p_.metadata.target_path, to_hex(want),
		                seen.empty() ? std::string(" no object of that name") : seen));
	}
	auto bytes = read_file(target_->path());
	if (!bytes)
		return bytes.error();
	auto file_id = read_build_id(*bytes);
	if (!file_id || *file_id != want)
		return make_error(
		    Errc::not_found,
		    fmt::format("{}: {} on disk is not the loaded object (build-id {}, "
		                "loaded {}): its symbols cannot be trusted",
		                who(), target_->path(),
		                file_id ? to_hex(*file_id) : std::string("none"), to_hex(want)));
	auto syms = read_symbols(*bytes);
	if (!syms)
		return syms.error();
	if (syms->dynamic)
		return make_error(Errc::unsupported,
		                  fmt::format("{}: {} is stripped; the loader needs its .symtab",
		                              who(), target_->display()));
	target_syms_ = std::move(*syms);
	target_file_ = std::move(*bytes);
	return {};
}

// The file bytes of [vaddr, vaddr + size) of the target (through its PT_LOAD headers).
Expected<const uint8_t *> Loader::file_bytes(uint64_t vaddr, uint64_t size) const
{
	const auto &f = target_file_;
	Elf64_Ehdr eh;
	if (f.size() < sizeof eh)
		return make_error(Errc::invalid_format, "target file too short");
	std::memcpy(&eh, f.data(), sizeof eh);
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		uint64_t off = eh.e_phoff + uint64_t(i) * sizeof(Elf64_Phdr);
		if (eh.e_phentsize != sizeof(Elf64_Phdr) || off > f.size() ||
		    f.size() - off < sizeof(Elf64_Phdr))
			break;
		Elf64_Phdr ph;
		std::memcpy(&ph, f.data() + off, sizeof ph);
		if (ph.p_type != PT_LOAD || vaddr < ph.p_vaddr ||
		    vaddr - ph.p_vaddr > ph.p_filesz || ph.p_filesz - (vaddr - ph.p_vaddr) < size)
			continue;
		uint64_t at = ph.p_offset + (vaddr - ph.p_vaddr);
		if (at > f.size() || f.size() - at < size)
			break;
		return f.data() + at;
	}
	return make_error(Errc::invalid_format,
	                  fmt::format("the code at 0x{:x} ({} bytes) is not in the target file's "
	                              "loaded segments",
	                              vaddr, size));
}

Expected<void> Loader::resolve_redirects()
{
	for (size_t i = 0; i < p_.metadata.redirects.size(); i++) {
		const Redirect &rd = p_.metadata.redirects[i];
		auto s = resolve_symbol(target_syms_, rd.target, SymbolKind::function);
		if (!s)
			return make_error(s.error().code,
			                  fmt::format("{}: redirect of '{}': {}", who(),
			                              rd.target.name, s.error().message));
		RedirectSite r;
		r.name = rd.target.name;
		r.entry = target_->bias + (*s)->value;
		r.size = (*s)->size;
		r.site = r.entry;
		auto code = file_bytes((*s)->value, r.size);
		if (!code)
			return make_error(code.error().code,
			                  fmt::format("{}: redirect of '{}': {}", who(),
			                              rd.target.name, code.error().message));
		if (r.size >= endbr64.size() &&
		    std::memcmp(*code, endbr64.data(), endbr64.size()) == 0)
			r.site += endbr64.size();
		r.replacement = p_.redirect_symbols[i];
		if (auto c = check_redirect_site(r, *code); !c)
			return make_error(c.error().code, who() + ": " + c.error().message);
		redirects_.push_back(std::move(r));
	}
	return {};
}

Expected<Resolved> Loader::resolve_in_object(const LoadedObject &o, const TargetSymbols &,
                                             const TargetSymbol &s)
{
	Resolved r;
	if (s.type == STT_TLS) {
		r.kind = Resolved::tls;
		r.modid = o.tls_modid;
		// In a linked object an STT_TLS symbol's value is its offset in the TLS segment.
		r.dtpoff = int64_t(s.value);
		if (auto off = static_tls_offset(o))
			r.tpoff = *off + int64_t(s.value);
		r.tls_object = o.display();
		if (r.modid == 0)
			return make_error(
			    Errc::not_found,
			    fmt::format("TLS symbol '{}' of {}: the object has no TLS "
			                "module",
			                s.name, o.display()));
		return r;
	}
	r.kind = Resolved::absolute;
	r.value = s.section == SHN_ABS ? s.value : o.bias + s.value;
	return r;
}

// An undefined symbol from the global scope (dlsym), or an undefined weak one (0).
bool resolve_global(const Symbol &sym, Resolved &out)
{
	dlerror();
	void *a = dlsym(RTLD_DEFAULT, sym.name.c_str());
	if (a || !dlerror()) {
		out.kind = Resolved::absolute;
		out.value = reinterpret_cast<uint64_t>(a);
		return true;
	}
	if (sym.bind == STB_WEAK) {
		out.kind = Resolved::absolute; // an undefined weak symbol is 0
		out.value = 0;
		return true;
	}
	return false;
}

// A symbol the patch defines.
Resolved Loader::resolve_defined(uint32_t i, const Symbol &sym, const Replaced &replaced,
                                 const Globals &target_globals) const
{
	Resolved out;
	if (auto it = replaced.find(i); it != replaced.end() && sym.bind != STB_LOCAL) {
		// &replacement is the original's address: function pointers keep comparing equal,
		// and calls take the newest redirect.
		out.kind = Resolved::absolute;
		out.value = it->second;
		return out;
	}
	if (sym.section == section_abs) {
		out.kind = Resolved::absolute;
		out.value = sym.value;
		return out;
	}
	if (sym.type == STT_OBJECT && sym.bind != STB_LOCAL) {
		auto it = target_globals.find(sym.name);
		if (it != target_globals.end() && it->second->type == STT_OBJECT) {
			// Data are never duplicated: bind to the program's instance (COMDAT statics
			// of inline functions, guard variables).
			out.kind = Resolved::absolute;
			out.value = target_->bias + it->second->value;
			return out;
		}
	}
	out.kind = Resolved::internal;
	out.section = sym.section;
	out.value = sym.value;
	return out;
}

// An undefined symbol the metadata binds: "this symbol is that symbol of that object".
Expected<Resolved> Loader::resolve_reference(const Symbol &sym, const Reference &ref,
                                             std::map<std::string, TargetSymbols> &other_syms)
{
	const LoadedObject *obj = target_;
	const TargetSymbols *table = &target_syms_;
	if (!ref.object.empty()) {
		obj = nullptr;
		for (const auto &o : objects_)
			if (o.name == ref.object)
				obj = &o;
		if (!obj)
			return make_error(Errc::not_found,
			                  fmt::format("{}: reference '{}': object {} is not loaded",
			                              who(), sym.name, ref.object));
		auto &t = other_syms[ref.object];
		if (t.symbols.empty()) {
			auto bytes = read_file(obj->path());
			if (!bytes)
				return bytes.error();
			auto st = read_symbols(*bytes);
			if (!st)
				return st.error();
			t = std::move(*st);
		}
		table = &t;
	}
	auto s = resolve_symbol(*table, ref.target, SymbolKind::any);
	if (!s)
		return make_error(s.error().code, fmt::format("{}: reference '{}': {}", who(),
		                                              sym.name, s.error().message));
	auto r = resolve_in_object(*obj, *table, **s);
	if (!r)
		return make_error(r.error().code, who() + ": " + r.error().message);
	return *r;
}

// An undefined symbol an earlier patch defines (the newest first).
bool Loader::resolve_in_earlier(const Symbol &sym, Resolved &out)
{
	for (auto e = opt_.earlier.rbegin(); e != opt_.earlier.rend(); ++e) {
		if (!*e)
			continue;
		auto a = (*e)->lookup(sym.name);
		if (!a)
			continue;
		out.kind = Resolved::absolute;
		out.value = *a;
		// Bound into that patch's own text or data (not an original entry it redirects):
		// this patch stacks on it.
		if (within((*e)->text_range(), *a) || within((*e)->data_range(), *a))
			note_base(*e);
		return true;
	}
	return false;
}

Expected<void> Loader::resolve_symbols()
{
	syms_.assign(p_.symbols.size(), Resolved{});
	std::vector<bool> referenced(p_.symbols.size(), false);
	for (const auto &rs : p_.relocations)
		for (const auto &e : rs.entries)
			referenced[e.symbol] = true;

	// Metadata references: "this undefined symbol is that symbol of that object".
	std::map<uint32_t, size_t> by_reference;
	for (size_t i = 0; i < p_.reference_symbols.size(); i++)
		for (uint32_t s : p_.reference_symbols[i])
			by_reference[s] = i;
	std::map<std::string, TargetSymbols> other_syms;

	// The target's defined global symbols by name, for the normal lookup and for data
	// the patch defines that the program already has (bound to the program's instance).
	Globals target_globals;
	for (const auto &s : target_syms_.symbols)
		if (s.defined() && s.bind != STB_LOCAL && !s.name.empty())
			target_globals.emplace(s.name, &s);

	Replaced replaced; // patch symbol -> original entry
	for (const auto &r : redirects_)
		replaced[r.replacement] = r.entry;

	std::string unresolved;
	for (uint32_t i = 1; i < p_.symbols.size(); i++) {
		const Symbol &sym = p_.symbols[i];
		Resolved &out = syms_[i];
		if (sym.defined()) {
			out = resolve_defined(i, sym, replaced, target_globals);
			continue;
		}
		if (!referenced[i])
			continue;
		if (auto it = by_reference.find(i); it != by_reference.end()) {
			auto r =
			    resolve_reference(sym, p_.metadata.references[it->second], other_syms);
			if (!r)
				return r.error();
			out = *r;
			continue;
		}
		if (sym.name == "__dso_handle") {
			// The patch's own DSO handle, so that its static destructors can be run
			// and dropped (__cxa_finalize) before its text is unmapped.
			needs_dso_handle_ = true;
			out.kind = Resolved::internal;
			out.section = UINT32_MAX;
			continue;
		}
		if (resolve_in_earlier(sym, out))
			continue;
		if (auto it = target_globals.find(sym.name); it != target_globals.end()) {
			auto r = resolve_in_object(*target_, target_syms_, *it->second);
			if (!r)
				return make_error(r.error().code, who() + ": " + r.error().message);
			out = *r;
			continue;
		}
		if (sym.type == STT_TLS) {
			unresolved += fmt::format("\n  {} (TLS: only the target's TLS symbols, or "
			                          "those named by a reference, are resolved)",
			                          sym.name);
			continue;
		}
		if (!resolve_global(sym, out))
			unresolved += "\n  " + sym.name;
	}
	if (!unresolved.empty())
		return make_error(Errc::not_found,
		                  fmt::format("{}: unresolved symbols (not in the patch, earlier "
		                              "patches, the target {} or the global scope):{}\nadd "
		                              "a reference in the manifest or load the object that "
		                              "defines them; nothing was mapped",
		                              who(), target_->display(), unresolved));
	return check_tls_relocations();
}

// TLS references: initial- and local-exec need the block in static TLS.
Expected<void> Loader::check_tls_relocations() const
{
	for (const auto &rs : p_.relocations)
		for (const auto &e : rs.entries) {
			const Resolved &r = syms_[e.symbol];
			bool needs_tp = e.type == R_X86_64_GOTTPOFF || e.type == R_X86_64_TPOFF32;
			if (is_tls_relocation(e.type) && r.kind != Resolved::tls)
				return make_error(
				    Errc::unsupported,
				    fmt::format("{}: TLS relocation {} against '{}', which "
				                "is not a TLS symbol of a loaded object",
				                who(), relocation_name(e.type),
				                p_.symbols[e.symbol].name));
			if (needs_tp && !r.tpoff)
				return make_error(
				    Errc::unsupported,
				    fmt::format(
				        "{}: {} (initial/local-exec TLS) against '{}' of {}, "
				        "whose TLS block is not in the static TLS area: compile "
				        "the patch with -ftls-model=global-dynamic",
				        who(), relocation_name(e.type), p_.symbols[e.symbol].name,
				        r.tls_object));
		}
	return {};
}

uint64_t Loader::cell(CellKind kind, uint64_t a, uint64_t b)
{
	auto [it, inserted] = cells_.try_emplace(CellKey{kind, a, b}, 0);
	return it->second;
}

void Loader::layout()
{
	places_.assign(p_.sections.size(), SectionPlace{});
	uint64_t rx = 0, rw = 0;
	for (uint32_t i = 1; i < p_.sections.size(); i++) {
		const Section &s = p_.sections[i];
		if (!s.alloc() || i == p_.metadata_section)
			continue;
		SectionPlace &pl = places_[i];
		pl.loaded = true;
		pl.size = s.size;
		pl.rx = !s.write() && !s.nobits();
		uint64_t align = std::max<uint64_t>(s.align, 1);
		uint64_t &cursor = pl.rx ? rx : rw;
		pl.offset = align_up(cursor, align);
		cursor = pl.offset + s.size;
		if (s.name == ".eh_frame" && pl.rx) {
			eh_frame_section_ = i;
			eh_frame_offset_ = pl.offset;
			cursor += 4; // the zero terminator __register_frame needs
		}
	}
	// Cells: stubs for calls leaving the patch, GOT and TLS slots. Collected here, filled
	// once the addresses are known.
	for (const auto &rs : p_.relocations)
		for (const auto &e : rs.entries) {
			const Resolved &r = syms_[e.symbol];
			switch (relocation_slot(e.type)) {
			case Slot::got:
				cell(CellKind::got, e.symbol, 0);
				break;
			case Slot::got_tpoff:
				cell(CellKind::got_tpoff, uint64_t(*r.tpoff), 0);
				break;
			case Slot::tls_index:
				cell(CellKind::tls_index, r.modid, uint64_t(r.dtpoff));
				break;
			case Slot::tls_module:
				cell(CellKind::tls_index, r.modid, 0);
				break;
			case Slot::none:
				if (e.type == R_X86_64_PLT32 && r.kind == Resolved::absolute)
					cell(CellKind::stub, e.symbol, 0);
				break;
			}
		}
	rx = align_up(rx, 16);
	cells_offset_ = rx;
	for (auto &[key, off] : cells_) {
		off = rx;
		rx += std::get<0>(key) == CellKind::stub        ? stub_size
		      : std::get<0>(key) == CellKind::tls_index ? 16
		                                                : 8;
	}
	// A .fini_array needs the patch's own DSO handle even when no code names __dso_handle:
	// its entries are registered against it (see publish()).
	for (uint32_t i = 1; i < p_.sections.size(); i++)
		if (p_.sections[i].type == SHT_FINI_ARRAY && places_[i].loaded &&
		    p_.sections[i].size >= 8)
			needs_dso_handle_ = true;
	if (needs_dso_handle_) {
		rw = align_up(rw, 8);
		dso_offset_ = rw;
		rw += 8;
	}
	rx_size_ = align_up(std::max<uint64_t>(rx, 1), page_size);
	rw_size_ = rw ? align_up(rw, page_size) : 0;
}

uint64_t Loader::address_of(const Resolved &r) const
{
	switch (r.kind) {
	case Resolved::absolute:
		return r.value;
	case Resolved::internal: {
		if (r.section == UINT32_MAX)
			return base_ + rx_size_ + dso_offset_;
		const SectionPlace &pl = places_[r.section];
		return base_ + (pl.rx ? 0 : rx_size_) + pl.offset + r.value;
	}
	default:
		return 0;
	}
}

// The address of the cell a relocation of `e` (against `r`) uses; 0 when it uses none.
uint64_t Loader::slot_of(const Relocation &e, const Resolved &r) const
{
	switch (relocation_slot(e.type)) {
	case Slot::got:
		return base_ + cells_.at({CellKind::got, e.symbol, 0});
	case Slot::got_tpoff:
		return base_ + cells_.at({CellKind::got_tpoff, uint64_t(*r.tpoff), 0});
	case Slot::tls_index:
		return base_ + cells_.at({CellKind::tls_index, r.modid, uint64_t(r.dtpoff)});
	case Slot::tls_module:
		return base_ + cells_.at({CellKind::tls_index, r.modid, 0});
	case Slot::none:
		break;
	}
	return 0;
}

Expected<void> Loader::relocate()
{
	rx_.assign(rx_size_, 0);
	rw_.assign(rw_size_, 0);
	for (uint32_t i = 1; i < p_.sections.size(); i++) {
		const SectionPlace &pl = places_[i];
		if (!pl.loaded || p_.sections[i].nobits())
			continue;
		auto &buf = pl.rx ? rx_ : rw_;
		std::copy(p_.sections[i].bytes.begin(), p_.sections[i].bytes.end(),
		          buf.begin() + pl.offset);
	}
	// Every symbol a relocation uses must have an address in the image.
	for (const auto &rs : p_.relocations)
		if (auto r = relocate_section(rs); !r)
			return r;
	write_cells();
	if (needs_dso_handle_) {
		uint64_t self = base_ + rx_size_ + dso_offset_;
		std::memcpy(rw_.data() + dso_offset_, &self, 8);
	}
	return place_redirects();
}

Expected<void> Loader::relocate_section(const RelocationSection &rs)
{
	const SectionPlace &tp = places_[rs.target];
	if (!tp.loaded)
		return {};
	auto &buf = tp.rx ? rx_ : rw_;
	std::span<uint8_t> field(buf.data() + tp.offset, tp.size);
	uint64_t sec_addr = base_ + (tp.rx ? 0 : rx_size_) + tp.offset;
	for (const auto &e : rs.entries) {
		const Resolved &r = syms_[e.symbol];
		if (r.kind == Resolved::internal && r.section != UINT32_MAX &&
		    !places_[r.section].loaded)
			return make_error(Errc::unsupported,
			                  fmt::format("{}: relocation in {} against '{}' in the "
			                              "non-loaded section {}",
			                              who(), p_.sections[rs.target].name,
			                              p_.symbols[e.symbol].name,
			                              p_.sections[r.section].name));
		RelocationInput in;
		in.type = e.type;
		in.addend = e.addend;
		in.place = sec_addr + e.offset;
		in.symbol = address_of(r);
		in.slot = slot_of(e, r);
		if (e.type == R_X86_64_TPOFF32)
			in.tls_offset = r.tpoff ? *r.tpoff : 0;
		else if (e.type == R_X86_64_DTPOFF32 || e.type == R_X86_64_DTPOFF64)
			in.tls_offset = r.dtpoff;
		auto v = compute_relocation(in);
		if (!v && v.error().code == Errc::needs_branch_stub) {
			in.symbol = base_ + cells_.at({CellKind::stub, e.symbol, 0});
			stubs_used_.insert(e.symbol);
			v = compute_relocation(in);
		}
		if (!v)
			return make_error(
			    v.error().code,
			    fmt::format("{}: {} at {}+0x{:x} against '{}': {}", who(),
			                relocation_name(e.type), p_.sections[rs.target].name,
			                e.offset, p_.symbols[e.symbol].name, v.error().message));
		if (auto w = write_relocation(field, e.offset, *v); !w)
			return w.error();
	}
	return {};
}

void Loader::write_cells()
{
	for (const auto &[key, off] : cells_) {
		auto [kind, a, b] = key;
		uint8_t *c = rx_.data() + off;
		switch (kind) {
		case CellKind::stub: { // jmp *0(%rip); .quad target
			uint64_t dest = address_of(syms_[a]);
			const uint8_t jmp[6] = {0xff, 0x25, 0, 0, 0, 0};
			std::memcpy(c, jmp, 6);
			std::memcpy(c + 6, &dest, 8);
			c[14] = c[15] = 0xcc;
			break;
		}
		case CellKind::got: {
			uint64_t v = address_of(syms_[a]);
			std::memcpy(c, &v, 8);
			break;
		}
		case CellKind::got_tpoff:
			std::memcpy(c, &a, 8);
			break;
		case CellKind::tls_index: // struct tls_index { module, offset }
			std::memcpy(c, &a, 8);
			std::memcpy(c + 8, &b, 8);
			break;
		}
	}
}

// The redirect destinations, which must be reachable by a rel32 jump.
Expected<void> Loader::place_redirects()
{
	for (auto &r : redirects_) {
		const Symbol &s = p_.symbols[r.replacement];
		const SectionPlace &pl = places_[s.section];
		r.destination = base_ + (pl.rx ? 0 : rx_size_) + pl.offset + s.value;
		__int128 d = __int128(r.destination) - __int128(r.site + jump_size);
		if (d < INT32_MIN || d > INT32_MAX)
			return make_error(
			    Errc::out_of_range,
			    fmt::format("{}: replacement of '{}' at 0x{:x} is beyond a "
			                "rel32 jump from 0x{:x}",
			                who(), r.name, r.destination, r.site));
	}
	return {};
}

// The loaded patch as the redirect engine sees it, before anything is mapped.
std::shared_ptr<PatchImpl> Loader::make_patch() const
{
	auto impl = std::make_shared<PatchImpl>();
	impl->identity_ = p_.identity().to_string();
	impl->requires_global_ = p_.metadata.requires_global();
	impl->base_ = base_;
	impl->rx_size_ = rx_size_;
	impl->rw_size_ = rw_size_;
	impl->redirects_ = redirects_;
	impl->bases_ = bases_;
	impl->cells_.branch_stubs_used = stubs_used_.size();
	for (const auto &[key, off] : cells_) {
		CellKind kind = std::get<0>(key);
		impl->cells_.got_slots += kind == CellKind::got;
		impl->cells_.tls_slots +=
		    kind == CellKind::got_tpoff || kind == CellKind::tls_index;
	}
	for (uint32_t i = 1; i < p_.symbols.size(); i++) {
		const Symbol &s = p_.symbols[i];
		if (s.defined() && s.bind != STB_LOCAL && !s.name.empty() &&
		    (s.type == STT_FUNC || s.type == STT_OBJECT) && syms_[i].kind != Resolved::none)
			impl->exports_[s.name] = address_of(syms_[i]);
	}

	return impl;
}

// Text: written into a memfd, then mapped read+execute. It is never writable and executable
// at once, which also satisfies MemoryDenyWriteExecute (no PROT_EXEC on anonymous or writable
// memory). On failure the reservation is unmapped: nothing is left mapped.
Expected<void> Loader::map_image()
{
	auto fail = [&](const std::string &what) -> Error {
		int e = errno;
		munmap(reinterpret_cast<void *>(base_), rx_size_ + rw_size_);
		return make_error(
		    Errc::io,
		    fmt::format("{}: {}: {}; nothing was mapped", who(), what, std::strerror(e)),
		    e);
	};
	std::string memfd_name = "atlas-patch:" + p_.metadata.name;
	int fd = memfd_create(memfd_name.c_str(), MFD_CLOEXEC);
	if (fd < 0)
		return fail("memfd_create");
	size_t done = 0;
	while (done < rx_.size()) {
		ssize_t n = ::write(fd, rx_.data() + done, rx_.size() - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			Error err = fail("writing the patch text to its memfd");
			::close(fd);
			return err;
		}
		done += size_t(n);
	}
	void *t = mmap(reinterpret_cast<void *>(base_), rx_size_, PROT_READ | PROT_EXEC,
	               MAP_PRIVATE | MAP_FIXED, fd, 0);
	int map_errno = errno;
	::close(fd);
	if (t == MAP_FAILED) {
		errno = map_errno;
		return fail("mapping the patch text");
	}
	if (rw_size_) {
		void *d =
		    mmap(reinterpret_cast<void *>(base_ + rx_size_), rw_size_,
		         PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		if (d == MAP_FAILED)
			return fail("mapping the patch data");
		std::memcpy(d, rw_.data(), rw_size_);
	}
	return {};
}

Expected<std::shared_ptr<atlas::CodeChange>> Loader::publish()
{
	auto impl = make_patch();
	if (auto r = map_image(); !r)
		return r.error();
	register_unwind(*impl);
	if (needs_dso_handle_)
		impl->dso_handle_ = reinterpret_cast<void *>(base_ + rx_size_ + dso_offset_);
	// Destructors (.fini_array) mirror the constructors: nothing registered may point into
	// text that is later unmapped (unreachable() unmaps it). Each entry is registered with
	// __cxa_atexit against the patch's DSO handle, before the constructors run: __cxa_finalize
	// in unreachable() then runs, before unmapping, first what the constructors registered and
	// then the .fini_array from its last entry to its first (the order of an ELF object's
	// teardown); a patch still mapped at exit is torn down by exit() like any object.
	if (impl->dso_handle_)
		for_each_array_entry(SHT_FINI_ARRAY, [&](uint64_t fn) {
			// A void(void) entry called with one ignored argument: the x86-64 calling
			// convention makes that exact (as glibc does for atexit).
			__cxa_atexit(reinterpret_cast<void (*)(void *)>(fn), nullptr,
			             impl->dso_handle_);
		});
	// Constructors of the patch's new data run before the change can be published.
	for_each_array_entry(SHT_INIT_ARRAY,
	                     [](uint64_t fn) { reinterpret_cast<void (*)()>(fn)(); });
	if (opt_.on_mapped)
		impl->before_unmap_ = opt_.on_mapped(*impl);
	return std::shared_ptr<atlas::CodeChange>(std::move(impl));
}

void Loader::register_unwind(PatchImpl &impl) const
{
	if (eh_frame_section_) {
		impl.unwind_entries_ =
		    fde_table(std::span<const uint8_t>(rx_.data() + eh_frame_offset_,
		                                       p_.sections[eh_frame_section_].size),
		              base_ + eh_frame_offset_, base_);
		impl.eh_frame_ = reinterpret_cast<void *>(base_ + eh_frame_offset_);
		register_eh_frame(impl.eh_frame_);
	}
}

// Calls fn with every entry (a function address) of the loaded sections of type `type`, in order.
void Loader::for_each_array_entry(uint32_t type, const std::function<void(uint64_t)> &fn) const
{
	for (uint32_t i = 1; i < p_.sections.size(); i++) {
		const Section &s = p_.sections[i];
		if (s.type != type || !places_[i].loaded)
			continue;
		const SectionPlace &pl = places_[i];
		uint64_t addr = base_ + (pl.rx ? 0 : rx_size_) + pl.offset;
		for (uint64_t k = 0; k + 8 <= s.size; k += 8) {
			uint64_t entry;
			std::memcpy(&entry, reinterpret_cast<const void *>(addr + k), 8);
			if (entry != 0 && entry != UINT64_MAX)
				fn(entry);
		}
	}
}

Expected<std::shared_ptr<atlas::CodeChange>> Loader::run()
{
	if (auto r = find_target(); !r)
		return r.error();
	if (auto r = resolve_redirects(); !r)
		return r.error();
	if (auto r = resolve_symbols(); !r)
		return r.error();
	layout();
	auto base = reserve_near(target_->lo, target_->hi, rx_size_ + rw_size_);
	if (!base)
		return make_error(base.error().code, who() + ": " + base.error().message);
	base_ = *base;
	if (auto r = relocate(); !r) {
		munmap(reinterpret_cast<void *>(base_), rx_size_ + rw_size_);
		return r.error();
	}
	return publish();
}

} // namespace

Expected<std::shared_ptr<atlas::CodeChange>> load_patch(const std::string &path,
                                                        const LoadOptions &options)
{
	return detail::guard([&]() -> Expected<std::shared_ptr<atlas::CodeChange>> {
		auto bytes = read_file(path);
		if (!bytes)
			return bytes.error();
		auto patch = parse_patch(*bytes);
		if (!patch)
			return make_error(patch.error().code, path + ": " + patch.error().message);
		Loader loader(*patch, options);
		return loader.run();
	});
}

} // namespace atlas::patch
