// SPDX-License-Identifier: MIT
// The manifest of atlas-mkpatch (docs/patch-format.md, "Manifest").
#pragma once

#include "atlas/patch/format.hpp"
#include "atlas/patch/result.hpp"

#include <string>
#include <vector>

namespace atlas::mkpatch
{

struct ManifestRedirect {
	patch::SymbolRef target;
	std::string replacement; // defaults to target.name
};

struct ManifestReference {
	std::string symbol; // the patch's undefined symbol
	std::string object; // empty: the target
	patch::SymbolRef target;
};

struct Manifest {
	std::string dir; // the manifest's directory: relative paths are relative to it
	std::string name;
	std::string target;
	std::string symbols; // a separate debug file of the target; empty: the target itself
	std::string source;
	std::string compiler; // empty: gcc or g++ by the source's extension
	std::vector<std::string> flags;
	bool requires_global = false;
	std::vector<ManifestRedirect> redirects;
	std::vector<ManifestReference> references;
};

// Parses and strictly validates (unknown keys, wrong types) the manifest at `path`.
patch::Result<Manifest> load_manifest(const std::string &path);

} // namespace atlas::mkpatch
