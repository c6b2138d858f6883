// A server written the way GLib programs write one (no atlas in it but the "ready" line the
// tests read): a GThreadedSocketService (GIO's thread pool: each connection is served by one
// of its threads, reading lines with a GDataInputStream and writing replies to the
// GOutputStream), the main thread in a GMainLoop with a periodic timeout source and a Unix
// signal source for SIGTERM. A request is a line "<n>"; the reply is the line "<reply_for(n)>".
//
// Prints "ready <control socket> <port>" once listening; on SIGTERM prints "served N" and exits.
#include <dlfcn.h>
#include <gio/gio.h>
#include <glib-unix.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static gint served;

// What the patch replaces (corpus_fix.c): the reply to request n.
__attribute__((noinline)) long reply_for(long n)
{
	return 2 * n;
}

static gboolean serve(GThreadedSocketService *service, GSocketConnection *connection,
                      GObject *source, gpointer data)
{
	(void)service;
	(void)source;
	(void)data;
	GDataInputStream *in =
	    g_data_input_stream_new(g_io_stream_get_input_stream(G_IO_STREAM(connection)));
	GOutputStream *out = g_io_stream_get_output_stream(G_IO_STREAM(connection));
	gchar *line;
	while ((line = g_data_input_stream_read_line(in, NULL, NULL, NULL))) {
		gchar *reply = g_strdup_printf("%ld\n", reply_for(g_ascii_strtoll(line, NULL, 10)));
		gboolean ok =
		    g_output_stream_write_all(out, reply, strlen(reply), NULL, NULL, NULL);
		g_free(reply);
		g_free(line);
		if (!ok)
			break;
		g_atomic_int_inc(&served);
	}
	g_object_unref(in);
	return TRUE;
}

static gboolean tick(gpointer data)
{
	(void)data;
	return G_SOURCE_CONTINUE;
}

static gboolean on_term(gpointer loop)
{
	printf("served %d\n", g_atomic_int_get(&served));
	fflush(stdout);
	g_main_loop_quit(loop);
	return G_SOURCE_REMOVE;
}

int main(void)
{
	GMainLoop *loop = g_main_loop_new(NULL, FALSE);
	GSocketService *service = g_threaded_socket_service_new(8);
	GInetAddress *lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
	GSocketAddress *any_port = g_inet_socket_address_new(lo, 0);
	GSocketAddress *bound = NULL;
	GError *error = NULL;
	if (!g_socket_listener_add_address(G_SOCKET_LISTENER(service), any_port,
	                                   G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL,
	                                   &bound, &error)) {
		fprintf(stderr, "glib_server: listen: %s\n", error->message);
		return 1;
	}
	g_signal_connect(service, "run", G_CALLBACK(serve), NULL);
	g_socket_service_start(service);
	g_timeout_add(100, tick, NULL);
	g_unix_signal_add(SIGTERM, on_term, loop);
	const char *(*socket_path)(void) =
	    (const char *(*)(void))dlsym(RTLD_DEFAULT, "atlas_preload_socket_path");
	printf("ready %s %u\n", socket_path ? socket_path() : "(not preloaded)",
	       g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound)));
	fflush(stdout);
	g_main_loop_run(loop);
	_exit(0);
}
