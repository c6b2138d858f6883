/* A C11 user of atlas/atlas.h, compiled strictly: the C API must stay valid C. */
#include "c_api_user.h"

#include <atlas/atlas.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

static int g_value = 1; /* what the "patched code" returns; written only while parked */
static atomic_int g_stop;
static atomic_int g_registered;

static int set_two(void *context, char *error, size_t error_size)
{
	(void)context;
	(void)error;
	(void)error_size;
	g_value = 2;
	return 0;
}

static int set_one(void *context, char *error, size_t error_size)
{
	(void)context;
	(void)error;
	(void)error_size;
	g_value = 1;
	return 0;
}

static int always_fails(void *context, char *error, size_t error_size)
{
	(void)context;
	strncpy(error, "symbol frobnicate not found", error_size - 1);
	return -1;
}

static void *worker(void *arg)
{
	(void)arg;
	if (atlas_thread_register("c-worker") != 0)
		return NULL;
	atomic_fetch_add(&g_registered, 1);
	while (!atomic_load(&g_stop)) {
		atlas_quiescence_point();
		atlas_blocking_enter();
		atlas_blocking_exit();
		(void)g_value;
	}
	return NULL;
}

int c_api_scenario(char *failure, size_t failure_size)
{
	pthread_t threads[2];
	struct atlas_report report;
	struct atlas_change change = {0};
	int result = -1;

	atomic_store(&g_stop, 0);
	atomic_store(&g_registered, 0);
	for (int i = 0; i < 2; i++)
		if (pthread_create(&threads[i], NULL, worker, NULL) != 0)
			return -1;
	while (atomic_load(&g_registered) < 2)
		sched_yield();

	change.identity = "c-change";
	change.apply = set_two;
	change.revert = set_one;
	if (atlas_apply(&change, ATLAS_MODE_GLOBAL, 5000, &report) != 0) {
		strncpy(failure, atlas_last_error(), failure_size - 1);
		goto out;
	}
	if (report.outcome != ATLAS_FINISHED || g_value != 2) {
		strncpy(failure, "apply did not finish", failure_size - 1);
		goto out;
	}
	if (atlas_apply(&change, ATLAS_MODE_GLOBAL, 5000, &report) != 0 ||
	    report.outcome != ATLAS_ALREADY_APPLIED) {
		strncpy(failure, "re-apply not reported as already applied", failure_size - 1);
		goto out;
	}
	if (atlas_revert("c-change", ATLAS_MODE_GLOBAL, 5000, &report) != 0 || g_value != 1) {
		strncpy(failure, "revert failed", failure_size - 1);
		goto out;
	}
	change.identity = "c-broken";
	change.apply = always_fails;
	if (atlas_apply(&change, ATLAS_MODE_GLOBAL, 5000, &report) != -1 ||
	    report.outcome != ATLAS_FAILED || !strstr(atlas_last_error(), "frobnicate")) {
		strncpy(failure, "failing change not reported", failure_size - 1);
		goto out;
	}
	/* An unregistered thread following the base: nothing to do on a kernel without views. */
	if (atlas_follow_base() != 0) {
		strncpy(failure, atlas_last_error(), failure_size - 1);
		goto out;
	}
	result = 0;
out:
	atomic_store(&g_stop, 1);
	for (int i = 0; i < 2; i++)
		pthread_join(threads[i], NULL);
	return result;
}
