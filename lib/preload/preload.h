/* libatlas-preload.so's own entry points (C ABI; look them up with dlsym(RTLD_DEFAULT, ...)
 * so that a program does not depend on the preload library being present). */
#ifndef ATLAS_PRELOAD_H
#define ATLAS_PRELOAD_H

#ifdef __cplusplus
extern "C" {
#endif

/* For tests and embedders: `loader` points to an atlas::control::Loader that the control
 * socket's apply uses instead of atlas::patch::load_patch (NULL: back to the built-in one).
 * The object must outlive the process. Returns 0 if the preload runtime is active, else -1. */
int atlas_preload_set_test_loader(void *loader);

/* The control socket's path, or NULL if it did not start. */
const char *atlas_preload_socket_path(void);

#ifdef __cplusplus
}
#endif

#endif
