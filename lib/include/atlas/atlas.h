/* SPDX-License-Identifier: MIT */
/*
 * atlas/atlas.h - C API of the live-patching runtime (docs/live-patching.md).
 *
 * One runtime per process, created by atlas_init(). Functions returning int return 0 on
 * success and -1 on failure; atlas_last_error() then describes what failed and what to do (a
 * per-thread string, valid until the thread's next atlas call). Nothing here exits, aborts or
 * lets a C++ exception escape. Valid C11 and C++.
 */
#ifndef ATLAS_ATLAS_H
#define ATLAS_ATLAS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

/* The public API: visible outside libatlas.so, whose other symbols are hidden. */
#pragma GCC visibility push(default)

#ifdef __cplusplus
extern "C" {
#endif

enum atlas_mode {
	ATLAS_MODE_AUTOMATIC = 0, /* wait-free when views exist and the change allows it */
	ATLAS_MODE_GLOBAL = 1,
	ATLAS_MODE_WAIT_FREE = 2,
};

enum atlas_outcome {
	ATLAS_FINISHED = 0,
	ATLAS_ALREADY_APPLIED = 1,
	ATLAS_REFUSED = 2, /* nothing changed; see message */
	ATLAS_FAILED = 3,  /* the change failed; nothing changed */
	ATLAS_PENDING =
	    4, /* wait-free: threads still migrating; atlas_wait or atlas_revert_pending */
	ATLAS_REVERTING = 5, /* wait-free: threads still moving back; atlas_wait */
	ATLAS_REVERTED = 6,  /* wait-free: a pending transition was undone; nothing changed */
};

/* Event-log line callback: @line is one JSON object without newline, valid during the call. */
typedef void (*atlas_event_fn)(void *context, const char *line, size_t length);

/*
 * Options of atlas_init(). The struct may grow at its end in later versions; @size tells the
 * library which version the caller was compiled against (docs/live-patching.md, "C API"):
 * fields past @size take their defaults, and a caller built against a newer header runs on an
 * older library as long as the fields this library does not know are left zero. Always start
 * from atlas_options_init(), which sets @size.
 */
struct atlas_options {
	size_t size;             /* sizeof(struct atlas_options) where the caller was compiled */
	int event_fd;            /* JSON lines written here; -1: none */
	atlas_event_fn event_fn; /* or/and to this callback; NULL: none */
	void *event_context;
	unsigned default_deadline_ms; /* 0: 5000 */
	int allow_unknown_threads;    /* nonzero: do not refuse on unregistered threads */
};

/* The size of the first version of struct atlas_options: atlas_init() refuses less. */
#define ATLAS_OPTIONS_SIZE_VER0 40

/*
 * Set every field to its default (no log, 5 s deadline, unknown threads refused) and @size to
 * the size this caller sees. Inline, so that it never writes past a caller's smaller struct.
 */
static inline void atlas_options_init(struct atlas_options *options)
{
	if (!options)
		return;
	memset(options, 0, sizeof(*options));
	options->size = sizeof(*options);
	options->event_fd = -1;
}

struct atlas_address_range {
	uintptr_t start;
	uintptr_t end; /* exclusive */
};

/*
 * A code change (the patch loader provides these). The callbacks return 0 on success, or
 * nonzero after writing a message to @error (at most @error_size bytes, NUL-terminated); they
 * must leave nothing changed on failure. @context must stay valid until the change is reverted
 * or the runtime shut down. The runtime copies @identity and @replaced.
 */
struct atlas_change {
	const char *identity; /* name + content hash + target build-id */
	void *context;
	int (*apply)(void *context, char *error, size_t error_size);
	int (*revert)(void *context, char *error, size_t error_size);
	int requires_global;
	const struct atlas_address_range *replaced;
	size_t replaced_count;
	void (*unreachable)(void *context); /* optional: no view can run this change's code */
};

struct atlas_report {
	uint64_t transition;
	int outcome; /* enum atlas_outcome */
	int mode;    /* enum atlas_mode used */
	uint64_t duration_ns;
	char message[1024]; /* truncated when longer; names lagging threads */
};

/* Create the process's runtime. Never fails because views or membarrier are missing. */
int atlas_init(const struct atlas_options *options);
/* Drop the runtime; registered threads keep its state alive until they exit. */
int atlas_shutdown(void);

int atlas_thread_register(const char *name); /* NULL: the thread's comm */
int atlas_thread_unregister(void);
int atlas_thread_exempt(pid_t tid);
/*
 * On an exempt (unregistered) thread, with views: move into the base view. A wait-free
 * transition migrates registered threads only; an exempt thread stays in the view it retired
 * (and keeps it live) until it calls this, e.g. whenever it wakes. 0, or -1 (registered
 * caller, failed migration).
 */
int atlas_follow_base(void);

/* Fast path: one relaxed load and compare, no syscall, lock or allocation. */
void atlas_quiescence_point(void);
void atlas_blocking_enter(void);
void atlas_blocking_exit(void);

/*
 * Transitions; call from an unregistered thread. Return 0 when the outcome is finished,
 * already applied or reverted, -1 otherwise; @report (may be NULL) says which.
 */
int atlas_apply(const struct atlas_change *change, int mode, unsigned deadline_ms,
                struct atlas_report *report);
int atlas_revert(const char *identity, int mode, unsigned deadline_ms, struct atlas_report *report);
int atlas_wait(unsigned deadline_ms, struct atlas_report *report);
int atlas_revert_pending(unsigned deadline_ms, struct atlas_report *report);

/* Status as a JSON object; free with atlas_free(). NULL on failure. */
char *atlas_status_json(void);
void atlas_free(void *pointer);

const char *atlas_last_error(void);

#ifdef __cplusplus
}
#endif

#pragma GCC visibility pop

#endif /* ATLAS_ATLAS_H */
