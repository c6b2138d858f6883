// SPDX-License-Identifier: MIT
// Internals of the patch loader shared by its translation units; not installed:
//   loader.cpp          the loading passes (find_target -> resolve -> layout -> relocate ->
//                       publish) and load_patch()
//   redirect.cpp        the redirect engine: what a loaded patch's apply(), revert(),
//                       in_effect() and unreachable() do later, on the patcher thread
//   unwind.cpp          the patch's call frame information: libgcc registration, the
//                       search table for libunwind
//   loaded_objects.cpp  the scan of the objects loaded in this process (dl_iterate_phdr)
#pragma once

#include "atlas/patch/loader.hpp"

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace atlas::patch::detail
{

constexpr uint64_t page_size = 4096;
// A patch and everything it reaches with a 32-bit displacement must fit in this span; the
// margin leaves room for addends.
constexpr uint64_t near_span = (uint64_t(2) << 30) - (uint64_t(16) << 20);
constexpr size_t jump_size = 5;
constexpr std::array<uint8_t, 4> endbr64 = {0xf3, 0x0f, 0x1e, 0xfa};
constexpr size_t stub_size = 16; // jmp *0(%rip); .quad target; padding

inline uint64_t align_up(uint64_t v, uint64_t a)
{
	return a <= 1 ? v : (v + a - 1) & ~(a - 1);
}

// Objects of this process (loaded_objects.cpp).
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

std::vector<LoadedObject> loaded_objects();
// The offset of a module's TLS block from the thread pointer, when the block is in the static
// TLS area (at a fixed offset in every thread), which initial-exec and local-exec code needs.
std::optional<int64_t> static_tls_offset(const LoadedObject &o);

// Call frame information (unwind.cpp).
// The FDEs of a relocated .eh_frame (bytes `eh`, mapped at `addr`) as {start_ip - segbase,
// FDE address - segbase}, sorted: the search table of an .eh_frame_hdr, which libunwind's
// dynamic registry takes. Records it cannot decode are skipped (they stay unknown to libunwind
// only; libgcc reads the section itself).
std::vector<std::array<int32_t, 2>> fde_table(std::span<const uint8_t> eh, uint64_t addr,
                                              uint64_t segbase);
// libgcc's unwinder registry: the patch's .eh_frame must be known to it for exceptions to
// propagate through patched functions (the patch is not a dlopen'ed object that
// dl_iterate_phdr would report to the unwinder).
void register_eh_frame(void *eh_frame) noexcept;
void deregister_eh_frame(void *eh_frame) noexcept;

// The redirect engine (redirect.cpp).
struct RedirectSite {
	std::string name;
	uint64_t entry = 0; // the symbol's address
	uint64_t site = 0;  // where the jump goes (after endbr64)
	uint64_t size = 0;
	uint32_t replacement = 0; // patch symbol
	uint64_t destination = 0; // filled after placement
};

using Jump = std::array<uint8_t, jump_size>;

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
	// What LoadOptions::on_mapped returned: called once, before the text is unmapped.
	std::function<void()> before_unmap_;

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

	// The redirect engine (redirect.cpp).
	Expected<void> apply() override;
	Expected<void> revert() override;
	Expected<void> in_effect() const override;
	void unreachable() noexcept override;

private:
	// Whether an entry still holds this patch's jump in the calling thread's view; true also
	// when that cannot be read (keep the code rather than unmap it under a thread).
	bool redirect_visible();

	// Whether every entry holds this patch's jump (`entries` read in the caller's view).
	bool all_jump_here(const std::vector<Jump> &entries) const;

	mutable std::mutex mu_;
	// Applied or not is decided in the caller's view from the entries themselves (all hold
	// this patch's jump / all hold what apply() found); applied_ is what the last call did,
	// only consulted for a patch without redirects.
	bool applied_ = false;
	bool written_ = false; // apply() succeeded once: saved_ holds the original entries
	bool unmapped_ = false;
	std::vector<Jump> saved_;
};

} // namespace atlas::patch::detail
