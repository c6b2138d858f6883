// SPDX-License-Identifier: MIT
// The part of an object's .eh_frame that a patch needs: the FDEs of the functions it carries
// and the CIEs those use, with their relocations. Without them nothing could unwind through
// a patched function (C++ exceptions, the preload's stack check).
#pragma once

#include "elf_object.hpp"

#include <functional>
#include <vector>

namespace atlas::build_patch
{

struct EhFrameSlice {
	std::vector<uint8_t> bytes;
	// Offsets within `bytes`; symbols are the object's.
	std::vector<ObjRelocation> relocations;
	size_t fdes = 0;
};

// The FDEs of `section` (an .eh_frame of `obj`) whose initial location points into a section
// `keep` accepts, each preceded by the CIE it uses (once). CIE pointers are rewritten for
// the new layout. An FDE without a relocation for its initial location is an error.
patch::Result<EhFrameSlice> filter_eh_frame(const ObjectFile &obj, uint32_t section,
                                            const std::function<bool(uint32_t)> &keep);

} // namespace atlas::build_patch
