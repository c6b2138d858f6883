// SPDX-License-Identifier: MIT
// The cache of original builds (docs/patch-builder.md, "Speed"): the original build of a source
// tree (the built copy and the compiler wrapper's records) kept between runs, keyed by what
// decides its objects: the tree's path and content, the build command, the compilers the build
// finds in PATH, the environment variables that pass flags, and this program. A run whose key
// is in the cache copies the built tree instead of building it, so that a one-function fix
// costs the recompiles of the changed objects and a link.
#pragma once

#include "build_records.hpp"

#include <nlohmann/json.hpp>
#include <string>

namespace atlas::build_patch
{

// Environment variable naming the cache directory (below it: one directory per key).
inline constexpr const char *env_cache_dir = "ATLAS_BUILD_PATCH_CACHE";
// Entries kept; the least recently used beyond it are removed when one is added.
inline constexpr size_t cache_entries_kept = 4;

// $ATLAS_BUILD_PATCH_CACHE, else $XDG_CACHE_HOME/atlas/build-patch, else
// $HOME/.cache/atlas/build-patch; empty when none of them is set.
std::string default_cache_dir();

struct CacheKey {
	std::string digest;    // SHA-256 (hex) of `inputs`
	nlohmann::json inputs; // what it was computed from (kept in the entry, for debugging)
	size_t files = 0;      // files of the source tree hashed
};

// The key of the original build of `source` by `command`; `self_exe` is this program.
patch::Result<CacheKey> original_build_key(const std::string &source, const std::string &command,
                                           const std::string &self_exe);

struct CacheEntry {
	std::string dir;    // <cache>/<digest>: tree/, records/, entry.json
	std::string work;   // the work directory it was built in (its records name it)
	double seconds = 0; // how long the original build took
	size_t objects = 0;
};

// The entry of `key`, if the cache holds a complete one (marking it used).
std::optional<CacheEntry> cache_lookup(const std::string &cache, const CacheKey &key);

// Stores the original build of work directory `work` (<work>/tree, <work>/records/original)
// under `key`; concurrent runs storing one key are harmless (the first wins). Removes the
// least recently used entries beyond cache_entries_kept.
patch::Result<CacheEntry> cache_store(const std::string &cache, const CacheKey &key,
                                      const std::string &work, double seconds, size_t objects);

// Copies the entry's records to <work>/records/original and reads them with every path of the
// entry's work directory moved to `work`.
patch::Result<BuildRecords> cache_restore_records(const CacheEntry &entry, const std::string &work);

} // namespace atlas::build_patch
