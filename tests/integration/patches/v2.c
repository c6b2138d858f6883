/* Patch A of the integration test: compute_reply version 2. FNV-1a with another basis, then
 * the target's static mix64 (bound by the manifest's reference record), then a constant.
 * integ_v2_core is global: patch B (stacked on this one) calls it. */
#include <stddef.h>
#include <stdint.h>

uint64_t target_mix64(uint64_t x); /* the server's static mix64 */

uint64_t integ_v2_core(const unsigned char *data, size_t len)
{
	uint64_t h = 0x9e3779b97f4a7c15ULL;
	for (size_t i = 0; i < len; i++) {
		h ^= data[i];
		h *= 0x100000001b3ULL;
	}
	return target_mix64(h);
}

uint64_t compute_reply(const unsigned char *data, size_t len)
{
	return integ_v2_core(data, len) ^ 0x2222222222222222ULL;
}
