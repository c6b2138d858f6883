/* Connects to a control socket as another user (argv[1]: socket path, argv[2]: uid) and exits 0
 * if the server refused it as it must, or, with argv[3], if the reply contains argv[3]: started
 * by control_test through posix_spawn, because fork() in a threaded, sanitized process is not
 * safe. */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 3 && argc != 4)
		return 2;
	unsigned uid = 0;
	if (sscanf(argv[2], "%u", &uid) != 1 || setgid(uid) != 0 || setuid(uid) != 0)
		return 10;
	struct sockaddr_un a;
	memset(&a, 0, sizeof(a));
	a.sun_family = AF_UNIX;
	strncpy(a.sun_path, argv[1], sizeof(a.sun_path) - 1);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
		return 11;
	const char req[] = "{\"verb\":\"ping\"}\n";
	/* The server may refuse and close before reading: no SIGPIPE, the reply is still there. */
	(void)send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL);
	(void)shutdown(fd, SHUT_WR); /* the only request: a served peer is answered and closed */
	static char reply[4096];
	size_t got = 0;
	ssize_t n;
	while (got < sizeof(reply) - 1 && (n = read(fd, reply + got, sizeof(reply) - 1 - got)) > 0)
		got += (size_t)n;
	reply[got] = 0;
	if (argc == 4) {
		if (strstr(reply, argv[3]))
			return 0;
		fprintf(stderr, "reply without \"%s\": %s\n", argv[3], reply);
		return 13;
	}
	char expect[64];
	snprintf(expect, sizeof(expect), "uid %u", uid);
	if (strstr(reply, "\"ok\":false") && strstr(reply, expect) && strstr(reply, "root"))
		return 0;
	fprintf(stderr, "unexpected reply: %s\n", reply);
	return 13;
}
