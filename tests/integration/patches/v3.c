/* Patch B of the integration test, stacked on patch A: compute_reply version 3, built on
 * patch A's integ_v2_core (resolved by the loader through the earlier patch, so B cannot be
 * loaded without A). */
#include <stddef.h>
#include <stdint.h>

uint64_t integ_v2_core(const unsigned char *data, size_t len); /* defined by patch A */

uint64_t compute_reply(const unsigned char *data, size_t len)
{
	uint64_t h = integ_v2_core(data, len);
	return (h * 3 + 0x33) ^ (h >> 29);
}
