// SPDX-License-Identifier: MIT
// The patch loader (design sec. 4; docs/patch-format.md, "Loader").
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

#include <Zydis/Zydis.h>
#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <link.h>
#include <map>
#include <mutex>
#include <set>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <tuple>
#include <unistd.h>

// libgcc's unwinder registry: the patch's .eh_frame must be known to it for exceptions to
// propagate through patched functions (the patch is not a dlopen'ed object that
// dl_iterate_phdr would report to the unwinder).
extern "C" void __register_frame(void *begin);
extern "C" void __deregister_frame(void *begin);
// Runs and forgets the destructors registered with __cxa_atexit for one DSO handle: the
// patch's static objects must not be destroyed at exit from unmapped text.
extern "C" void __cxa_finalize(void *dso);
// .fini_array entries are registered like destructors, against the patch's handle: run by
// __cxa_finalize in unreachable() before the text is unmapped, or at exit if still mapped.
extern "C" int __cxa_atexit(void (*fn)(void *), void *arg, void *dso);

namespace atlas::patch
{

namespace
{

constexpr uint64_t page_size = 4096;
// A patch and everything it reaches with a 32-bit displacement must fit in this span; the
// margin leaves room for addends.
constexpr uint64_t near_span = (uint64_t(2) << 30) - (uint64_t(16) << 20);
constexpr size_t jump_size = 5;
constexpr std::array<uint8_t, 4> endbr64 = {0xf3, 0x0f, 0x1e, 0xfa};
constexpr size_t stub_size = 16; // jmp *0(%rip); .quad target; padding

uint64_t align_up(uint64_t v, uint64_t a)
{
	return a <= 1 ? v : (v + a - 1) & ~(a - 1);
}

// One object of this process as dl_iterate_phdr reports it.
struct LoadedObject {
	std::string name; // dlpi_name; empty for the main program
	uint64_t bias = 0;
	uint64_t lo = 0, hi = 0; // extent of its PT_LOAD segments
	std::vector<uint8_t> build_id;
	size_t tls_modid = 0;
	void *tls_data = nullptr;

	std::string path() const
	{
		return name.empty() ? std::string("/proc/self/exe") : name;
	}
	std::string display() const
	{
		return name.empty() ? std::string("the main program") : name;
	}
};

void read_note_build_id(const uint8_t *p, size_t size, std::vector<uint8_t> &out)
{
	size_t off = 0;
	while (off + sizeof(Elf64_Nhdr) <= size) {
		Elf64_Nhdr nh;
		std::memcpy(&nh, p + off, sizeof nh);
		size_t name_off = off + sizeof nh;
		size_t desc_off = name_off + align_up(nh.n_namesz, 4);
		size_t next = desc_off + align_up(nh.n_descsz, 4);
		if (next > size || next <= off)
			return;
		if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
		    std::memcmp(p + name_off, "GNU", 4) == 0 && nh.n_descsz > 0) {
			out.assign(p + desc_off, p + desc_off + nh.n_descsz);
			return;
		}
		off = next;
	}
}

int collect_object(struct dl_phdr_info *info, size_t, void *data)
{
	auto *out = static_cast<std::vector<LoadedObject> *>(data);
	LoadedObject o;
	o.name = info->dlpi_name ? info->dlpi_name : "";
	o.bias = info->dlpi_addr;
	o.tls_modid = info->dlpi_tls_modid;
	o.tls_data = info->dlpi_tls_data;
	uint64_t lo = UINT64_MAX, hi = 0;
	for (unsigned i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) &ph = info->dlpi_phdr[i];
		if (ph.p_type == PT_LOAD) {
			lo = std::min<uint64_t>(lo, ph.p_vaddr);
			hi = std::max<uint64_t>(hi, ph.p_vaddr + ph.p_memsz);
		} else if (ph.p_type == PT_NOTE && o.build_id.empty()) {
			read_note_build_id(reinterpret_cast<const uint8_t *>(o.bias + ph.p_vaddr),
			                   ph.p_memsz, o.build_id);
		}
	}
	if (hi == 0)
		return 0; // the vDSO without loads, or nothing to patch
	o.lo = o.bias + lo;
	o.hi = o.bias + hi;
	out->push_back(std::move(o));
	return 0;
}

std::vector<LoadedObject> loaded_objects()
{
	std::vector<LoadedObject> out;
	dl_iterate_phdr(collect_object, &out);
	return out;
}

std::string base_name(const std::string &p)
{
	size_t s = p.rfind('/');
	return s == std::string::npos ? p : p.substr(s + 1);
}

uint64_t thread_pointer()
{
	uint64_t tp;
	// x86-64 TLS variant II: %fs:0 holds the thread pointer itself (the TCB's self pointer).
	asm volatile("mov %%fs:0, %0" : "=r"(tp));
	return tp;
}

// The offset of a module's TLS block from the thread pointer, when the block is in the static
// TLS area (at a fixed offset in every thread), which initial-exec and local-exec code needs.
std::optional<int64_t> static_tls_offset(const LoadedObject &o)
{
	if (!o.tls_data)
		return std::nullopt;
	uint64_t tp = thread_pointer();
	uint64_t block = reinterpret_cast<uint64_t>(o.tls_data);
	// glibc exports the static TLS area's size (GLIBC_PRIVATE; the sanitizers use it too).
	// The area lies right below the thread pointer; a dynamically allocated block of a
	// dlopen'ed module lies elsewhere and has no fixed offset.
	using info_fn = void (*)(size_t *, size_t *);
	static info_fn info =
	    reinterpret_cast<info_fn>(dlsym(RTLD_DEFAULT, "_dl_get_tls_static_info"));
	if (info) {
		size_t size = 0, align = 0;
		info(&size, &align);
		if (block < tp && tp - block <= size)
			return int64_t(block - tp);
		return std::nullopt;
	}
	if (o.tls_modid == 1) // the main program's block is always static
		return int64_t(block - tp);
	return std::nullopt;
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

struct RedirectSite {
	std::string name;
	uint64_t entry = 0; // the symbol's address
	uint64_t site = 0;  // where the jump goes (after endbr64)
	uint64_t size = 0;
	uint32_t replacement = 0; // patch symbol
	uint64_t destination = 0; // filled after placement
};

// Decodes the target function and refuses it when the jump would not fit or a branch in it
// lands inside the bytes the jump overwrites (it would execute half an instruction).
// `code` holds the function's bytes as the file has them: the entry in memory may already hold
// an earlier patch's jump, after which the rest of the first instruction would decode as
// garbage.
Result<void> check_redirect_site(const RedirectSite &r, const uint8_t *code)
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
Result<uint64_t> reserve_near(uint64_t lo, uint64_t hi, uint64_t size)
{
	for (int attempt = 0; attempt < 8; attempt++) {
		FILE *f = std::fopen("/proc/self/maps", "re");
		if (!f)
			return make_error(Errc::io, fmt::format("cannot read /proc/self/maps: {}",
			                                        std::strerror(errno)));
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
		else if (errno != EEXIST)
			return make_error(Errc::io,
			                  fmt::format("cannot reserve {} bytes at 0x{:x}: {}", size,
			                              best, std::strerror(errno)));
	}
	return make_error(Errc::io, "the address space kept changing while placing the patch");
}

// The FDEs of a relocated .eh_frame (bytes `eh`, mapped at `addr`) as {start_ip - segbase,
// FDE address - segbase}, sorted: the search table of an .eh_frame_hdr, which libunwind's
// dynamic registry takes. Records it cannot decode are skipped (they stay unknown to libunwind
// only; libgcc reads the section itself).
std::vector<std::array<int32_t, 2>> fde_table(std::span<const uint8_t> eh, uint64_t addr,
                                              uint64_t segbase)
{
	std::vector<std::array<int32_t, 2>> out;
	std::map<uint64_t, uint8_t> cie_encoding; // CIE offset -> FDE pointer encoding
	auto u32 = [&](uint64_t at) {
		uint32_t v;
		std::memcpy(&v, eh.data() + at, 4);
		return v;
	};
	auto uleb = [&](uint64_t &at, uint64_t end) {
		uint64_t v = 0;
		unsigned shift = 0;
		while (at < end) {
			uint8_t b = eh[at++];
			if (shift < 64)
				v |= uint64_t(b & 0x7f) << shift;
			shift += 7;
			if (!(b & 0x80))
				break;
		}
		return v;
	};
	auto enc_size = [](uint8_t enc) -> unsigned {
		switch (enc & 0x0f) {
		case 0x00: // DW_EH_PE_absptr
		case 0x04: // udata8
		case 0x0c: // sdata8
			return 8;
		case 0x03: // udata4
		case 0x0b: // sdata4
			return 4;
		case 0x02: // udata2
		case 0x0a: // sdata2
			return 2;
		default:
			return 0;
		}
	};
	uint64_t off = 0;
	while (off + 8 <= eh.size()) {
		uint32_t len = u32(off);
		if (len == 0 || len == 0xffffffff || len > eh.size() - off - 4)
			break; // terminator, 64-bit DWARF (not emitted by gcc) or garbage
		uint64_t rec = off + 4, end = rec + len;
		uint32_t id = u32(rec);
		if (id == 0) {                     // CIE
			uint64_t at = rec + 4 + 1; // version
			std::string aug;
			while (at < end && eh[at])
				aug += char(eh[at++]);
			at++;
			(void)uleb(at, end); // code alignment
			(void)uleb(at, end); // data alignment (sleb: only skipped)
			(void)uleb(at, end); // return address register (version 3; 1 byte in v1)
			uint8_t fde_enc = 0;
			if (!aug.empty() && aug[0] == 'z') {
				(void)uleb(at, end);
				for (size_t i = 1; i < aug.size() && at < end; i++) {
					if (aug[i] == 'R') {
						fde_enc = eh[at++];
					} else if (aug[i] == 'P') {
						uint8_t penc = eh[at++];
						at += enc_size(penc);
					} else if (aug[i] == 'L') {
						at++;
					}
				}
			}
			cie_encoding[off] = fde_enc;
		} else if (id <= rec) { // FDE; id: distance back to its CIE
			auto cie = cie_encoding.find(rec - id);
			uint8_t enc = cie == cie_encoding.end() ? 0 : cie->second;
			uint64_t at = rec + 4;
			unsigned size = enc_size(enc);
			if (size && at + size <= end && (enc & 0x70) <= 0x10) {
				int64_t v = 0;
				if (size == 8) {
					std::memcpy(&v, eh.data() + at, 8);
				} else if (size == 4) {
					uint32_t w = u32(at);
					v = (enc & 0x08) ? int64_t(int32_t(w)) : int64_t(w);
				} else {
					uint16_t h;
					std::memcpy(&h, eh.data() + at, 2);
					v = (enc & 0x08) ? int64_t(int16_t(h)) : int64_t(h);
				}
				uint64_t start =
				    uint64_t(v) + ((enc & 0x70) == 0x10 ? addr + at : 0);
				out.push_back({int32_t(int64_t(start - segbase)),
				               int32_t(int64_t(addr + off - segbase))});
			}
		}
		off = end;
	}
	std::sort(out.begin(), out.end());
	return out;
}

class Mem
{
public:
	// /proc/thread-self/mem of the calling thread's view (wait-free mode: the new one the
	// patcher migrated into; /proc/self/mem would be the leader's). Writes through it reach
	// read-only text without making it writable (the kernel copies the page on write).
	Mem() : fd_(open_own_mem()) {}
	~Mem()
	{
		if (fd_ >= 0)
			::close(fd_);
	}
	Mem(const Mem &) = delete;
	Mem &operator=(const Mem &) = delete;
	int error() const
	{
		return fd_ < 0 ? errno_ : 0;
	}
	bool read(uint64_t addr, uint8_t *buf, size_t n)
	{
		return ::pread(fd_, buf, n, off_t(addr)) == ssize_t(n);
	}
	bool write(uint64_t addr, const uint8_t *buf, size_t n)
	{
		return ::pwrite(fd_, buf, n, off_t(addr)) == ssize_t(n);
	}

private:
	// A process that changed its credentials (a server started as root that dropped to its
	// own user) is not dumpable, and then /proc/self belongs to root and refuses the open,
	// although the kernel lets a process access its own memory. Dumpable for the open only:
	// the descriptor stays usable, and for those microseconds another process of the same
	// user could attach with ptrace, as it could to any dumpable process of that user.
	static int open_own_mem()
	{
		int fd = ::open("/proc/thread-self/mem", O_RDWR | O_CLOEXEC);
		if (fd >= 0 || errno != EACCES || prctl(PR_GET_DUMPABLE) != 0)
			return fd;
		if (prctl(PR_SET_DUMPABLE, 1) != 0) {
			errno = EACCES;
			return -1;
		}
		fd = ::open("/proc/thread-self/mem", O_RDWR | O_CLOEXEC);
		const int saved = errno;
		prctl(PR_SET_DUMPABLE, 0);
		errno = saved;
		return fd;
	}

	int fd_;
	int errno_ = errno;
};

using Jump = std::array<uint8_t, jump_size>;

Jump make_jump(uint64_t site, uint64_t dest)
{
	int32_t rel = int32_t(int64_t(dest - (site + jump_size)));
	Jump j{0xe9};
	std::memcpy(j.data() + 1, &rel, 4);
	return j;
}

// What each applied redirect wrote over, process-wide: for a jump found at a redirect site,
// the bytes that were there before it (the original, or the jump of the patch below it). The
// jump's destination lies in the text of the patch that wrote it, so the jump identifies that
// patch; recorded by apply(), dropped when the patch is unmapped. in_effect() follows it from
// the bytes it reads at a site down to its own jump (in effect, a later patch on top) or to
// something else (reverted, and the function patched again by another patch). A leaf lock:
// nothing else is locked while it is held.
class Layers
{
public:
	void record(uint64_t site, const Jump &written, const Jump &found)
	{
		std::lock_guard lock(mu_);
		try {
			below_[{site, written}] = found;
		} catch (...) {
			// Unrecorded: in_effect() then treats the site as not this patch's.
		}
	}
	void forget(uint64_t site, const Jump &written)
	{
		std::lock_guard lock(mu_);
		below_.erase({site, written});
	}
	// Whether `mine` is in the stack of jumps whose top is `now` at `site`.
	bool under(uint64_t site, Jump now, const Jump &mine) const
	{
		std::lock_guard lock(mu_);
		for (size_t depth = 0; depth <= below_.size(); depth++) {
			if (now == mine)
				return true;
			auto it = below_.find({site, now});
			if (it == below_.end())
				return false;
			now = it->second;
		}
		return false;
	}

private:
	mutable std::mutex mu_;
	std::map<std::pair<uint64_t, Jump>, Jump> below_;
};

Layers &layers()
{
	static Layers *l = new Layers; // never destroyed: patches may be released at exit
	return *l;
}

class PatchImpl final : public LoadedPatch
{
public:
	std::string identity_;
	bool requires_global_ = false;
	std::vector<RedirectSite> redirects_;
	std::map<std::string, uint64_t, std::less<>> exports_;
	uint64_t base_ = 0, rx_size_ = 0, rw_size_ = 0;
	void *eh_frame_ = nullptr;
	void *dso_handle_ = nullptr;

	~PatchImpl() override
	{
		// Only unreachable() frees: the code may still run in some view when the last
		// reference to the change goes away without it.
	}

	std::string identity() const override
	{
		return identity_;
	}
	bool requires_global() const override
	{
		return requires_global_;
	}
	std::vector<atlas::AddressRange> replaced_functions() const override
	{
		std::vector<atlas::AddressRange> out;
		for (const auto &r : redirects_)
			out.push_back({uintptr_t(r.entry), uintptr_t(r.entry + r.size), r.name});
		return out;
	}
	std::optional<uint64_t> lookup(std::string_view name) const override
	{
		auto it = exports_.find(name);
		if (it == exports_.end())
			return std::nullopt;
		return it->second;
	}
	atlas::AddressRange text_range() const override
	{
		return {uintptr_t(base_), uintptr_t(base_ + rx_size_), {}};
	}
	atlas::AddressRange data_range() const override
	{
		return {uintptr_t(base_ + rx_size_), uintptr_t(base_ + rx_size_ + rw_size_), {}};
	}
	Cells cells_{};
	std::vector<std::array<int32_t, 2>> unwind_entries_;
	UnwindTable unwind_table() const override
	{
		UnwindTable t;
		t.start_ip = base_;
		t.end_ip = base_ + rx_size_;
		t.segbase = base_;
		if (!unwind_entries_.empty()) {
			t.table_data = reinterpret_cast<uint64_t>(unwind_entries_.data());
			t.table_len = unwind_entries_.size(); // 8 bytes per entry: one word
		}
		return t;
	}
	Cells cells() const override
	{
		return cells_;
	}
	std::vector<uint64_t> redirect_sites() const override
	{
		std::vector<uint64_t> out;
		for (const auto &r : redirects_)
			out.push_back(r.site);
		return out;
	}
	// The earlier patches whose own text or data this one's relocations bound to.
	std::vector<std::shared_ptr<const LoadedPatch>> bases_;
	std::vector<std::shared_ptr<const atlas::CodeChange>> stacked_on() const override
	{
		return {bases_.begin(), bases_.end()};
	}

	atlas::Result apply() override
	{
		std::lock_guard lock(mu_);
		if (unmapped_)
			return atlas::Result::failure(identity_ + ": the patch was unmapped");
		Mem mem;
		if (mem.error())
			return atlas::Result::failure(
			    fmt::format("{}: cannot open /proc/thread-self/mem: {}", identity_,
			                std::strerror(mem.error())));
		std::vector<Jump> saved(redirects_.size());
		for (size_t i = 0; i < redirects_.size(); i++)
			if (!mem.read(redirects_[i].site, saved[i].data(), jump_size))
				return atlas::Result::failure(fmt::format(
				    "{}: cannot read the entry of '{}' at 0x{:x}: {}", identity_,
				    redirects_[i].name, redirects_[i].site, std::strerror(errno)));
		// Applied or not is a property of the caller's view: the entries tell (see mu_).
		if (redirects_.empty() ? applied_ : all_jump_here(saved))
			return atlas::Result::failure(identity_ + ": already applied");
		// Stacking (also when called directly, not through the runtime): every patch whose
		// code or data this one uses must be in effect here, or the redirects would lead
		// into code calling a reverted or unmapped base. Bases are older: no lock cycle.
		for (const auto &base : bases_) {
			atlas::Result there = base->in_effect();
			if (!there)
				return atlas::Result::failure(fmt::format(
				    "{}: stacked on {} (it uses its code or data), which is not in "
				    "effect: {}; nothing changed. Apply {} again, then load {} "
				    "anew "
				    "on top of it",
				    identity_, base->identity(), there.message(), base->identity(),
				    identity_));
		}
		for (size_t i = 0; i < redirects_.size(); i++) {
			const RedirectSite &r = redirects_[i];
			Jump j = make_jump(r.site, r.destination);
			if (!mem.write(r.site, j.data(), jump_size)) {
				int e = errno;
				// Undo the redirects already written: all or nothing.
				for (size_t k = i; k-- > 0;)
					(void)mem.write(redirects_[k].site, saved[k].data(),
					                jump_size);
				return atlas::Result::failure(fmt::format(
				    "{}: cannot write the redirect of '{}' at 0x{:x} through "
				    "/proc/thread-self/mem: {}; nothing was changed",
				    identity_, r.name, r.site, std::strerror(e)));
			}
		}
		for (size_t i = 0; i < redirects_.size(); i++)
			layers().record(redirects_[i].site,
			                make_jump(redirects_[i].site, redirects_[i].destination),
			                saved[i]);
		saved_ = std::move(saved);
		applied_ = true;
		written_ = true;
		return atlas::Result::success();
	}

	atlas::Result revert() override
	{
		std::lock_guard lock(mu_);
		if (!written_)
			return atlas::Result::failure(identity_ + ": not applied");
		Mem mem;
		if (mem.error())
			return atlas::Result::failure(
			    fmt::format("{}: cannot open /proc/thread-self/mem: {}", identity_,
			                std::strerror(mem.error())));
		std::vector<Jump> now(redirects_.size());
		for (size_t i = 0; i < redirects_.size(); i++)
			if (!mem.read(redirects_[i].site, now[i].data(), jump_size))
				return atlas::Result::failure(fmt::format(
				    "{}: cannot read the entry of '{}' at 0x{:x}: {}", identity_,
				    redirects_[i].name, redirects_[i].site, std::strerror(errno)));
		// Not applied in this view: every entry holds what apply() found there. The
		// flag alone would be wrong in wait-free mode: a revert() done in a view that the
		// runtime then deleted (revert_pending) cleared it while the base still jumps here.
		if (redirects_.empty() ? !applied_ : now == saved_)
			return atlas::Result::failure(identity_ + ": not applied");
		// Last in, first out per function: each entry must still hold this patch's jump,
		// else a later patch of that function is applied on top and must be reverted first.
		for (size_t i = 0; i < redirects_.size(); i++) {
			const RedirectSite &r = redirects_[i];
			if (now[i] != make_jump(r.site, r.destination))
				return atlas::Result::failure(fmt::format(
				    "{}: '{}' at 0x{:x} no longer jumps to this patch: a later "
				    "patch of "
				    "it is applied; revert that one first (last in, first out)",
				    identity_, r.name, r.site));
		}
		for (size_t i = redirects_.size(); i-- > 0;) {
			if (!mem.write(redirects_[i].site, saved_[i].data(), jump_size)) {
				int e = errno;
				for (size_t k = i + 1; k < redirects_.size(); k++) {
					Jump j = make_jump(redirects_[k].site,
					                   redirects_[k].destination);
					(void)mem.write(redirects_[k].site, j.data(), jump_size);
				}
				return atlas::Result::failure(fmt::format(
				    "{}: cannot restore the entry of '{}' at 0x{:x}: {}; "
				    "the patch stays applied",
				    identity_, redirects_[i].name, redirects_[i].site,
				    std::strerror(e)));
			}
		}
		applied_ = false;
		return atlas::Result::success();
	}

	atlas::Result in_effect() const override
	{
		std::lock_guard lock(mu_);
		if (unmapped_)
			return atlas::Result::failure(identity_ +
			                              " was released (reverted and unmapped)");
		if (!written_)
			return atlas::Result::failure(identity_ + " was never applied");
		if (redirects_.empty())
			return applied_ ? atlas::Result::success()
			                : atlas::Result::failure(identity_ + " was reverted");
		Mem mem;
		if (mem.error())
			return atlas::Result::failure(fmt::format(
			    "cannot open /proc/thread-self/mem to read the entries of {}: {}",
			    identity_, std::strerror(mem.error())));
		std::vector<Jump> now(redirects_.size());
		for (size_t i = 0; i < redirects_.size(); i++)
			if (!mem.read(redirects_[i].site, now[i].data(), jump_size))
				return atlas::Result::failure(fmt::format(
				    "cannot read the entry of '{}' at 0x{:x}: {}",
				    redirects_[i].name, redirects_[i].site, std::strerror(errno)));
		// In effect: every entry holds this patch's jump, or a later patch's whose jumps
		// lead down to it (stacked on top). Every entry as apply() found it: reverted here.
		// Another jump that does not lead here: reverted, and patched again by another
		// patch (say another copy of this one).
		if (now == saved_)
			return atlas::Result::failure(identity_ + " is reverted in this view");
		for (size_t i = 0; i < redirects_.size(); i++) {
			const RedirectSite &r = redirects_[i];
			if (!layers().under(r.site, now[i], make_jump(r.site, r.destination)))
				return atlas::Result::failure(fmt::format(
				    "{} is reverted in this view: '{}' at 0x{:x} leads to another "
				    "patch that was not applied on top of it",
				    identity_, r.name, r.site));
		}
		return atlas::Result::success();
	}

	void unreachable() noexcept override
	{
		std::lock_guard lock(mu_);
		// The flags only say what the last apply()/revert() did, in whichever view it ran:
		// in wait-free mode that view is deleted when its transition is undone
		// (revert_pending). What counts is whether a redirect is visible here (the runtime
		// calls this when one view is left): if so the code is reachable, keep it.
		if (unmapped_ || (written_ && redirect_visible()))
			return;
		unmapped_ = true;
		for (const RedirectSite &r : redirects_)
			layers().forget(r.site, make_jump(r.site, r.destination));
		if (dso_handle_)
			__cxa_finalize(dso_handle_);
		if (eh_frame_)
			__deregister_frame(eh_frame_);
		munmap(reinterpret_cast<void *>(base_), rx_size_ + rw_size_);
	}

private:
	// Whether an entry still holds this patch's jump in the calling thread's view; true also
	// when that cannot be read (keep the code rather than unmap it under a thread).
	bool redirect_visible()
	{
		Mem mem;
		if (mem.error())
			return true;
		for (const RedirectSite &r : redirects_) {
			Jump now{};
			if (!mem.read(r.site, now.data(), jump_size) ||
			    now == make_jump(r.site, r.destination))
				return true;
		}
		return false;
	}

	// Whether every entry holds this patch's jump (`entries` read in the caller's view).
	bool all_jump_here(const std::vector<Jump> &entries) const
	{
		for (size_t i = 0; i < redirects_.size(); i++)
			if (entries[i] != make_jump(redirects_[i].site, redirects_[i].destination))
				return false;
		return true;
	}

	mutable std::mutex mu_;
	// Applied or not is decided in the caller's view from the entries themselves (all hold
	// this patch's jump / all hold what apply() found); applied_ is what the last call did,
	// only consulted for a patch without redirects.
	bool applied_ = false;
	bool written_ = false; // apply() succeeded once: saved_ holds the original entries
	bool unmapped_ = false;
	std::vector<Jump> saved_;
};

// Everything load_patch works out before it maps anything.
class Loader
{
public:
	Loader(const Patch &patch, const LoadOptions &options) : p_(patch), opt_(options) {}

	Result<std::shared_ptr<atlas::CodeChange>> run();

private:
	Result<void> find_target();
	Result<void> resolve_redirects();
	Result<const uint8_t *> file_bytes(uint64_t vaddr, uint64_t size) const;
	Result<void> resolve_symbols();
	Result<Resolved> resolve_in_object(const LoadedObject &o, const TargetSymbols &syms,
	                                   const TargetSymbol &s);
	void layout();
	uint64_t cell(CellKind kind, uint64_t a, uint64_t b);
	uint64_t address_of(const Resolved &r) const;
	Result<void> relocate();
	Result<std::shared_ptr<atlas::CodeChange>> publish();

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

Result<void> Loader::find_target()
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
Result<const uint8_t *> Loader::file_bytes(uint64_t vaddr, uint64_t size) const
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

Result<void> Loader::resolve_redirects()
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

Result<Resolved> Loader::resolve_in_object(const LoadedObject &o, const TargetSymbols &,
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

Result<void> Loader::resolve_symbols()
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
	std::map<std::string, const TargetSymbol *> target_globals;
	for (const auto &s : target_syms_.symbols)
		if (s.defined() && s.bind != STB_LOCAL && !s.name.empty())
			target_globals.emplace(s.name, &s);

	std::map<uint32_t, uint64_t> replaced; // patch symbol -> original entry
	for (const auto &r : redirects_)
		replaced[r.replacement] = r.entry;

	std::string unresolved;
	for (uint32_t i = 1; i < p_.symbols.size(); i++) {
		const Symbol &sym = p_.symbols[i];
		Resolved &out = syms_[i];
		if (sym.defined()) {
			if (auto it = replaced.find(i);
			    it != replaced.end() && sym.bind != STB_LOCAL) {
				// &replacement is the original's address: function pointers keep
				// comparing equal, and calls take the newest redirect.
				out.kind = Resolved::absolute;
				out.value = it->second;
				continue;
			}
			if (sym.section == section_abs) {
				out.kind = Resolved::absolute;
				out.value = sym.value;
				continue;
			}
			if (sym.type == STT_OBJECT && sym.bind != STB_LOCAL) {
				auto it = target_globals.find(sym.name);
				if (it != target_globals.end() && it->second->type == STT_OBJECT) {
					// Data are never duplicated: bind to the program's instance
					// (COMDAT statics of inline functions, guard variables).
					out.kind = Resolved::absolute;
					out.value = target_->bias + it->second->value;
					continue;
				}
			}
			out.kind = Resolved::internal;
			out.section = sym.section;
			out.value = sym.value;
			continue;
		}
		if (!referenced[i])
			continue;
		if (auto it = by_reference.find(i); it != by_reference.end()) {
			const Reference &ref = p_.metadata.references[it->second];
			const LoadedObject *obj = target_;
			const TargetSymbols *table = &target_syms_;
			if (!ref.object.empty()) {
				obj = nullptr;
				for (const auto &o : objects_)
					if (o.name == ref.object)
						obj = &o;
				if (!obj)
					return make_error(
					    Errc::not_found,
					    fmt::format("{}: reference '{}': object {} is not "
					                "loaded",
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
				return make_error(s.error().code,
				                  fmt::format("{}: reference '{}': {}", who(),
				                              sym.name, s.error().message));
			auto r = resolve_in_object(*obj, *table, **s);
			if (!r)
				return make_error(r.error().code, who() + ": " + r.error().message);
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
		bool found = false;
		for (auto e = opt_.earlier.rbegin(); e != opt_.earlier.rend() && !found; ++e)
			if (*e)
				if (auto a = (*e)->lookup(sym.name)) {
					out.kind = Resolved::absolute;
					out.value = *a;
					found = true;
					// Bound into that patch's own text or data (not an
					// original entry it redirects): this patch stacks on it.
					if (within((*e)->text_range(), *a) ||
					    within((*e)->data_range(), *a))
						note_base(*e);
				}
		if (found)
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
		dlerror();
		void *a = dlsym(RTLD_DEFAULT, sym.name.c_str());
		if (a || !dlerror()) {
			out.kind = Resolved::absolute;
			out.value = reinterpret_cast<uint64_t>(a);
			continue;
		}
		if (sym.bind == STB_WEAK) {
			out.kind = Resolved::absolute; // an undefined weak symbol is 0
			out.value = 0;
			continue;
		}
		unresolved += "\n  " + sym.name;
	}
	if (!unresolved.empty())
		return make_error(Errc::not_found,
		                  fmt::format("{}: unresolved symbols (not in the patch, earlier "
		                              "patches, the target {} or the global scope):{}\nadd "
		                              "a reference in the manifest or load the object that "
		                              "defines them; nothing was mapped",
		                              who(), target_->display(), unresolved));
	// TLS references: initial- and local-exec need the block in static TLS.
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

Result<void> Loader::relocate()
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
	for (const auto &rs : p_.relocations) {
		const SectionPlace &tp = places_[rs.target];
		if (!tp.loaded)
			continue;
		auto &buf = tp.rx ? rx_ : rw_;
		std::span<uint8_t> field(buf.data() + tp.offset, tp.size);
		uint64_t sec_addr = base_ + (tp.rx ? 0 : rx_size_) + tp.offset;
		for (const auto &e : rs.entries) {
			const Resolved &r = syms_[e.symbol];
			if (r.kind == Resolved::internal && r.section != UINT32_MAX &&
			    !places_[r.section].loaded)
				return make_error(
				    Errc::unsupported,
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
			switch (relocation_slot(e.type)) {
			case Slot::got:
				in.slot = base_ + cells_.at({CellKind::got, e.symbol, 0});
				break;
			case Slot::got_tpoff:
				in.slot =
				    base_ + cells_.at({CellKind::got_tpoff, uint64_t(*r.tpoff), 0});
				break;
			case Slot::tls_index:
				in.slot = base_ + cells_.at({CellKind::tls_index, r.modid,
				                             uint64_t(r.dtpoff)});
				break;
			case Slot::tls_module:
				in.slot = base_ + cells_.at({CellKind::tls_index, r.modid, 0});
				break;
			case Slot::none:
				break;
			}
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
				                relocation_name(e.type),
				                p_.sections[rs.target].name, e.offset,
				                p_.symbols[e.symbol].name, v.error().message));
			if (auto w = write_relocation(field, e.offset, *v); !w)
				return w.error();
		}
	}
	// The cells.
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
	if (needs_dso_handle_) {
		uint64_t self = base_ + rx_size_ + dso_offset_;
		std::memcpy(rw_.data() + dso_offset_, &self, 8);
	}
	// The redirect destinations, which must be reachable by a rel32 jump.
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

Result<std::shared_ptr<atlas::CodeChange>> Loader::publish()
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

	auto fail = [&](const std::string &what) -> Error {
		int e = errno;
		munmap(reinterpret_cast<void *>(base_), rx_size_ + rw_size_);
		return make_error(Errc::io, fmt::format("{}: {}: {}; nothing was mapped", who(),
		                                        what, std::strerror(e)));
	};
	// Text: written into a memfd, then mapped read+execute. It is never writable and
	// executable at once, which also satisfies MemoryDenyWriteExecute (no PROT_EXEC on
	// anonymous or writable memory).
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
	if (eh_frame_section_) {
		impl->unwind_entries_ =
		    fde_table(std::span<const uint8_t>(rx_.data() + eh_frame_offset_,
		                                       p_.sections[eh_frame_section_].size),
		              base_ + eh_frame_offset_, base_);
		impl->eh_frame_ = reinterpret_cast<void *>(base_ + eh_frame_offset_);
		__register_frame(impl->eh_frame_);
	}
	if (needs_dso_handle_)
		impl->dso_handle_ = reinterpret_cast<void *>(base_ + rx_size_ + dso_offset_);
	// Destructors (.fini_array) mirror the constructors: nothing registered may point into
	// text that is later unmapped (design sec. 4). Each entry is registered with __cxa_atexit
	// against the patch's DSO handle, before the constructors run: __cxa_finalize in
	// unreachable() then runs, before unmapping, first what the constructors registered and
	// then the .fini_array from its last entry to its first (the order of an ELF object's
	// teardown); a patch still mapped at exit is torn down by exit() like any object.
	for (uint32_t i = 1; i < p_.sections.size(); i++) {
		const Section &s = p_.sections[i];
		if (s.type != SHT_FINI_ARRAY || !places_[i].loaded || !impl->dso_handle_)
			continue;
		const SectionPlace &pl = places_[i];
		uint64_t addr = base_ + (pl.rx ? 0 : rx_size_) + pl.offset;
		for (uint64_t k = 0; k + 8 <= s.size; k += 8) {
			uint64_t fn;
			std::memcpy(&fn, reinterpret_cast<const void *>(addr + k), 8);
			if (fn != 0 && fn != UINT64_MAX)
				// A void(void) entry called with one ignored argument: the x86-64
				// calling convention makes that exact (as glibc does for atexit).
				__cxa_atexit(reinterpret_cast<void (*)(void *)>(fn), nullptr,
				             impl->dso_handle_);
		}
	}
	// Constructors of the patch's new data run before the change can be published.
	for (uint32_t i = 1; i < p_.sections.size(); i++) {
		const Section &s = p_.sections[i];
		if (s.type != SHT_INIT_ARRAY || !places_[i].loaded)
			continue;
		const SectionPlace &pl = places_[i];
		uint64_t addr = base_ + (pl.rx ? 0 : rx_size_) + pl.offset;
		for (uint64_t k = 0; k + 8 <= s.size; k += 8) {
			uint64_t fn;
			std::memcpy(&fn, reinterpret_cast<const void *>(addr + k), 8);
			if (fn != 0 && fn != UINT64_MAX)
				reinterpret_cast<void (*)()>(fn)();
		}
	}
	return std::shared_ptr<atlas::CodeChange>(std::move(impl));
}

Result<std::shared_ptr<atlas::CodeChange>> Loader::run()
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

Result<std::shared_ptr<atlas::CodeChange>> load_patch(const std::string &path,
                                                      const LoadOptions &options)
{
	return detail::guard([&]() -> Result<std::shared_ptr<atlas::CodeChange>> {
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
