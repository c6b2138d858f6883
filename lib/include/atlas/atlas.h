/* SPDX-License-Identifier: MIT */
/*
 * atlas/atlas.h - C API of the live-patching runtime (docs/live-patching.md).
 *
 * One runtime per process, created by atlas_init(). Functions returning int return 0 on
 * success and -1 on failure (those returning a pointer: NULL); atlas_last_error_code() then
 * says what kind of failure it was (enum atlas_error), atlas_last_error() what failed and what
 * to do (a per-thread string, valid until the thread's next atlas call) and
 * atlas_last_error_errno() which errno a failed system call gave. Nothing here exits, aborts or
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

/*
 * What kind of failure the calling thread's last failed call met (atlas_last_error_code()).
 * The values are stable: none is ever renumbered or reused, new ones are appended. They are
 * the C++ API's atlas::Errc (atlas/error.hpp); some arise only there (the patch loader's).
 */
enum atlas_error {
	ATLAS_OK = 0,                   /* no call of this thread has failed yet */
	ATLAS_ERR_INTERNAL = 1,         /* a bug, or a library call failed unexpectedly */
	ATLAS_ERR_NO_MEMORY = 2,        /* an allocation failed */
	ATLAS_ERR_INVALID_ARGUMENT = 3, /* e.g. a NULL identity, a bad options->size */
	ATLAS_ERR_BAD_STATE = 4,        /* not now: not initialised, already registered, ... */
	ATLAS_ERR_SYSTEM = 5,           /* a system call failed: atlas_last_error_errno() */
	ATLAS_ERR_IO = 6,               /* reading or writing a file failed */
	ATLAS_ERR_UNSUPPORTED = 7,      /* outside what atlas supports */
	ATLAS_ERR_REFUSED = 8,          /* a transition was refused (ATLAS_REFUSED); unchanged */
	ATLAS_ERR_CHANGE_FAILED = 9,    /* the change failed (ATLAS_FAILED); nothing changed */
	ATLAS_ERR_IN_PROGRESS = 10,     /* ATLAS_PENDING or ATLAS_REVERTING: atlas_wait() */
	ATLAS_ERR_BUSY = 11,            /* retry later */
	ATLAS_ERR_TIMEOUT = 12,
	ATLAS_ERR_NOT_PERMITTED = 13, /* an untrusted peer or patch signature */
	/* The patch format and loader (atlas/patch/). */
	ATLAS_ERR_INVALID_FORMAT = 14,
	ATLAS_ERR_VERSION_MISMATCH = 15,
	ATLAS_ERR_HASH_MISMATCH = 16,
	ATLAS_ERR_NOT_FOUND = 17,
	ATLAS_ERR_AMBIGUOUS = 18,
	ATLAS_ERR_OUT_OF_RANGE = 19,
	ATLAS_ERR_NEEDS_BRANCH_STUB = 20,
	ATLAS_ERR_NEEDS_GOT_SLOT = 21,
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
 * already applied or reverted, -1 otherwise; @report (may be NULL) says which, and so does
 * atlas_last_error_code(): ATLAS_ERR_REFUSED, ATLAS_ERR_CHANGE_FAILED or ATLAS_ERR_IN_PROGRESS.
 */
int atlas_apply(const struct atlas_change *change, int mode, unsigned deadline_ms,
                struct atlas_report *report);
int atlas_revert(const char *identity, int mode, unsigned deadline_ms, struct atlas_report *report);
int atlas_wait(unsigned deadline_ms, struct atlas_report *report);
int atlas_revert_pending(unsigned deadline_ms, struct atlas_report *report);

/* Status as a JSON object; free with atlas_free(). NULL on failure. */
char *atlas_status_json(void);
void atlas_free(void *pointer);

/* The calling thread's last failure: its message ("" before any), its code (enum
 * atlas_error; ATLAS_OK before any) and the errno of the system call that failed (0: none
 * did). A successful call leaves them as they were. */
const char *atlas_last_error(void);
int atlas_last_error_code(void);
int atlas_last_error_errno(void);
/* A few words on @code (enum atlas_error), a static string: "unknown error" for values this
 * library does not know. */
const char *atlas_error_string(int code);

#ifdef __cplusplus
}
#endif

#pragma GCC visibility pop

#endif /* ATLAS_ATLAS_H */
