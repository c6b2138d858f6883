// SPDX-License-Identifier: MIT
// The patch loader (docs/patch-format.md, "Loader"): maps a validated patch into
// the calling process next to its target object, resolves and applies its relocations, and
// returns an atlas::CodeChange whose apply() writes the redirects and whose revert() restores
// the original bytes. Nothing here throws, exits or aborts: it runs inside the patched process.
#pragma once

#include "atlas/patch/patch.hpp"
#include "atlas/patch/result.hpp"
#include "atlas/runtime.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// The public API: visible outside libatlas.so, whose other symbols are hidden (lib/libatlas.cmake).
#pragma GCC visibility push(default)

namespace atlas::patch
{

// A patch mapped into this process. load_patch() returns it as a CodeChange; callers that
// stack patches keep it (std::dynamic_pointer_cast<const LoadedPatch>) to pass as `earlier`.
class LoadedPatch : public atlas::CodeChange
{
public:
	// The address a later patch binds `name` to: a global function or datum this patch
	// defines. A replacement function yields the original entry it redirects (function
	// pointers keep comparing equal; calls go through the original entry, so the newest patch
	// of that function runs).
	virtual std::optional<uint64_t> lookup(std::string_view name) const = 0;
	// Where the patch's code and read-only data, and its writable data, are mapped.
	virtual atlas::AddressRange text_range() const = 0;
	virtual atlas::AddressRange data_range() const = 0;
	// The original entry of each redirected function (after endbr64 when present), in the
	// order of the patch's redirect records.
	virtual std::vector<uint64_t> redirect_sites() const = 0;
	// What the loader generated to bridge distances (docs/patch-format.md, "Loader").
	struct Cells {
		size_t branch_stubs_used = 0; // calls beyond +-2 GiB routed through a stub
		size_t got_slots = 0;
		size_t tls_slots = 0; // TP-offset slots and tls_index pairs
	};
	virtual Cells cells() const = 0;
	// The patch's call frame information as a binary-search table for libunwind's dynamic
	// registry (libgcc's is filled by the loader itself): a unw_dyn_info_t with format
	// UNW_INFO_FORMAT_REMOTE_TABLE, start_ip/end_ip, u.rti.segbase, u.rti.table_data and
	// u.rti.table_len (in unw_word_t units) from these fields, registered with
	// _U_dyn_register and cancelled (_U_dyn_cancel) before unreachable(). Entries are
	// {int32 start_ip - segbase, int32 FDE address - segbase}, sorted. Empty (table_len 0) when
	// the patch has no .eh_frame. Valid as long as this object exists and is not unreachable.
	struct UnwindTable {
		uint64_t start_ip = 0, end_ip = 0;
		uint64_t segbase = 0;
		uint64_t table_data = 0;
		uint64_t table_len = 0; // in 8-byte words
	};
	virtual UnwindTable unwind_table() const = 0;
	// Whether this patch is in effect in the calling thread's view: still mapped (not
	// released by unreachable()) and applied (its redirect entries hold its jump, or a later
	// patch's on top of it). Success, or a failure saying why not. apply() checks it for
	// every patch it stacks on (stacked_on()) before writing anything, so that a patch applied
	// directly, without the runtime, never jumps into a base that was reverted or unmapped.
	virtual Expected<void> in_effect() const = 0;
};

struct LoadOptions {
	// Patches loaded before, for symbol resolution patch -> earlier patches (last first) ->
	// target -> global scope.
	std::vector<std::shared_ptr<const LoadedPatch>> earlier;
	// Lifecycle hook, for code that must follow the patch's mappings: called once the patch
	// is mapped (relocated, its frames registered with libgcc, its constructors run), before
	// load_patch() returns it. The function it returns, if any, is called once in
	// unreachable(), before the patch's text is unmapped. The preload library registers the
	// patch's unwind_table() with its libunwind here and cancels that registration.
	std::function<std::function<void()>(const LoadedPatch &patch)> on_mapped;
};

// Reads, validates and maps the patch file into this process (text from a memfd as R+X, data
// RW, within +-2 GiB of the target object), resolves and applies its relocations, registers its
// .eh_frame, runs its .init_array; writes no redirect. Every check (build-id, symbols, redirect
// sites) happens before anything is mapped. The change's apply() writes the redirects through
// /proc/thread-self/mem, revert() restores the bytes it overwrote, unreachable() unmaps.
Expected<std::shared_ptr<atlas::CodeChange>> load_patch(const std::string &path,
                                                        const LoadOptions &options = {});

} // namespace atlas::patch

#pragma GCC visibility pop
