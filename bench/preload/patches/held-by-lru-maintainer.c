/*
 * A patch that can never be applied, for bench/preload/park_bound.sh: it replaces memcached's
 * lru_maintainer_thread(), the body of the mc-lrumaint thread, which that thread never leaves.
 * The stack check refuses every global attempt (the function is on mc-lrumaint's stack) while
 * the workers park at their wrapped calls: the benchmark measures what a refused apply costs
 * the service. The body is never run; it only has to be a function.
 */
void *lru_maintainer_thread(void *arg)
{
	return arg;
}
