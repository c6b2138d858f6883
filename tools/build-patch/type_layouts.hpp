// SPDX-License-Identifier: MIT
// Layouts of the struct, union and class types an object's DWARF describes. A diff that
// changes a type's layout (a member added, removed, moved or retyped) changes how patched
// code reads data the running program already holds in the old layout; the bytes of an
// object do not show it when the variables themselves keep their size and initial value (a
// zero-initialised global of a struct whose members moved), so the builder compares the
// types of the two builds of each changed unit and refuses the change, naming the type.
#pragma once

#include "atlas/patch/result.hpp"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace atlas::build_patch
{

struct TypeLayout {
	uint64_t size = 0;
	// "name@offset:type" (bit fields "name@offset.bit/bits:type"), in declaration order.
	std::vector<std::string> members;

	bool operator==(const TypeLayout &) const = default;
};

struct TypeInfo {
	// Complete struct/union/class types by name ("struct item", "union u", or the typedef
	// name of an anonymous one: "crawler_client_t").
	std::map<std::string, TypeLayout> types;
	// Typedefs of named aggregates: "conn" -> "struct conn".
	std::map<std::string, std::string> typedefs;
	// Variables with static storage (globals, file and function statics): name -> type.
	std::map<std::string, std::string> variables;
};

// Empty when the object has no DWARF.
patch::Result<TypeInfo> read_type_layouts(const std::string &object);

struct LayoutChange {
	std::string type;
	std::string detail;                 // "size 416 -> 408 bytes; member oldest_cas removed"
	std::vector<std::string> variables; // of the unit, holding the type (directly or inside)
};

// Types present in both with different layouts.
std::vector<LayoutChange> changed_layouts(const TypeInfo &original, const TypeInfo &patched);

} // namespace atlas::build_patch
