/*
 * Force-included (-include) into the libraries that run inside the patched process: the
 * runtime never aborts its host (docs/live-patching.md; unit.safety.NoExitOrAbortInTheTarget),
 * so nlohmann's internal assertions, assert() in builds without NDEBUG (the sanitizer builds),
 * are compiled out as in release builds.
 */
#ifndef ATLAS_JSON_ASSERT_H
#define ATLAS_JSON_ASSERT_H
#define JSON_ASSERT(x) static_cast<void>(0)
#endif
