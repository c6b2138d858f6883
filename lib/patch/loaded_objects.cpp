// SPDX-License-Identifier: MIT
// The objects loaded in this process, as dl_iterate_phdr reports them: where each lies, its
// build-id (which a patch names its target by) and its TLS module.
#include "loader_internal.hpp"

#include <algorithm>
#include <cstring>
#include <dlfcn.h>
#include <elf.h>
#include <link.h>

namespace atlas::patch::detail
{

namespace
{

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

} // namespace

std::vector<LoadedObject> loaded_objects()
{
	std::vector<LoadedObject> out;
	dl_iterate_phdr(collect_object, &out);
	return out;
}

namespace
{

uint64_t thread_pointer()
{
	uint64_t tp;
	// x86-64 TLS variant II: %fs:0 holds the thread pointer itself (the TCB's self pointer).
	asm volatile("mov %%fs:0, %0" : "=r"(tp));
	return tp;
}

} // namespace

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

} // namespace atlas::patch::detail
