/*
 * A C program built against an installed libatlas (tests/install/run.sh): a worker thread at
 * quiescence points, a change applied and reverted in global mode, the status, atlas_init's
 * check of struct atlas_options' size.
 */
#include <atlas/atlas.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

static atomic_int g_value = 1;
static atomic_int g_stop;
static atomic_int g_registered;

static int set_value(void *context, char *error, size_t error_size)
{
	(void)error;
	(void)error_size;
	atomic_store(&g_value, *(const int *)context);
	return 0;
}

static int set_one(void *context, char *error, size_t error_size)
{
	(void)context;
	(void)error;
	(void)error_size;
	atomic_store(&g_value, 1);
	return 0;
}

static void *worker(void *arg)
{
	(void)arg;
	if (atlas_thread_register("c-worker") != 0)
		return NULL;
	atomic_store(&g_registered, 1);
	while (!atomic_load(&g_stop))
		atlas_quiescence_point();
	atlas_thread_unregister();
	return NULL;
}

static int fail(const char *what)
{
	fprintf(stderr, "hello_c: %s: %s\n", what, atlas_last_error());
	return 1;
}

int main(void)
{
	struct atlas_options options;
	atlas_options_init(&options);
	if (options.size != sizeof(options))
		return fail("atlas_options_init did not set size");
	struct atlas_options unset;
	memset(&unset, 0, sizeof(unset));
	if (atlas_init(&unset) != -1 || !strstr(atlas_last_error(), "atlas_options_init"))
		return fail("atlas_init accepted options whose size is 0");
	if (atlas_init(&options) != 0)
		return fail("atlas_init");

	pthread_t thread;
	if (pthread_create(&thread, NULL, worker, NULL) != 0)
		return fail("pthread_create");
	while (!atomic_load(&g_registered))
		;
	int two = 2;
	struct atlas_change change = {0};
	change.identity = "hello@0/0";
	change.context = &two;
	change.apply = set_value;
	change.revert = set_one;
	change.requires_global = 1;
	struct atlas_report report;
	if (atlas_apply(&change, ATLAS_MODE_GLOBAL, 5000, &report) != 0 ||
	    atomic_load(&g_value) != 2)
		return fail("atlas_apply");
	if (atlas_revert("hello@0/0", ATLAS_MODE_GLOBAL, 5000, &report) != 0 ||
	    atomic_load(&g_value) != 1)
		return fail("atlas_revert");
	char *status = atlas_status_json();
	if (!status || !strstr(status, "\"threads\""))
		return fail("atlas_status_json");
	atlas_free(status);
	atomic_store(&g_stop, 1);
	pthread_join(thread, NULL);
	if (atlas_shutdown() != 0)
		return fail("atlas_shutdown");
	printf("hello_c: applied and reverted in global mode\n");
	return 0;
}
