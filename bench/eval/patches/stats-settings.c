/*
 * A patch for the evaluation harness, written here (not an upstream fix): memcached's
 * process_stat_settings() replaced by one that reports a single line, so that a client sees
 * which version answers (`stats settings` -> "STAT atlas_patched yes"). The real fixes come
 * from `atlas build-patch` (bench/servers/memcached-fixes.tsv).
 */
typedef void (*add_stat_fn)(const char *key, unsigned short klen, const char *val,
                            unsigned int vlen, const void *cookie);

void process_stat_settings(add_stat_fn add_stats, void *c)
{
	add_stats("atlas_patched", 13, "yes", 3, c);
}
