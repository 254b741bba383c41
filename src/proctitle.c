/* proctitle: process titles.
 *
 * Linux shows /proc/PID/cmdline, which ps prints, straight from the memory
 * where the kernel placed argv's strings, followed by the environment's. To
 * give each process its own title, forkd copies the environment's strings to
 * the heap (environ then points there), and writes titles over the whole
 * contiguous stretch, argv and environment, padded with NULs, so the title
 * may be longer than the original command line. argv's strings are copied
 * to the heap as well and argv[i] pointed at the copies, so everything main
 * parses out of argv (getopt's optarg included) outlives the titles. */
#include "proctitle.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

extern char **environ;

static char *area;   /* start of the writable stretch (argv[0]) */
static size_t size;  /* its length */

void proctitle_init(int argc, char **argv)
{
	char *end;
	int n = 0;

	if (argc < 1 || !argv[0])
		return;
	end = argv[0] + strlen(argv[0]) + 1;
	for (int i = 1; i < argc; i++)
		if (argv[i] == end)
			end = argv[i] + strlen(argv[i]) + 1;
	char *args[argc];
	for (int i = 0; i < argc; i++)
		if (!(args[i] = strdup(argv[i]))) {
			while (i--)
				free(args[i]);
			return;
		}
	for (; environ[n]; n++)
		;
	char **copy = calloc((size_t)n + 1, sizeof *copy);
	if (!copy) {
		for (int i = 0; i < argc; i++)
			free(args[i]);
		return;
	}
	for (int i = 0; i < n; i++) {
		if (environ[i] == end)
			end = environ[i] + strlen(environ[i]) + 1;
		if (!(copy[i] = strdup(environ[i]))) {
			for (int k = 0; k < i; k++)
				free(copy[k]);
			free(copy);
			for (int k = 0; k < argc; k++)
				free(args[k]);
			return;
		}
	}
	/* Kept for the life of the process, as the originals were. */
	environ = copy;
	area = argv[0];
	size = (size_t)(end - argv[0]);
	for (int i = 0; i < argc; i++)
		argv[i] = args[i];
}

void proctitle_set(const char *fmt, ...)
{
	char title[256], comm[16];
	va_list ap;
	size_t j = 0;

	va_start(ap, fmt);
	vsnprintf(title, sizeof title, fmt, ap);
	va_end(ap);
	/* comm: "forkd worker 2" fits its 15 bytes better than with the colon */
	for (size_t i = 0; title[i] && j < sizeof comm - 1; i++)
		if (title[i] != ':' && title[i] != '(' && title[i] != ')')
			comm[j++] = title[i];
	comm[j] = '\0';
	prctl(PR_SET_NAME, comm, 0, 0, 0);
	if (!area || size < 2)
		return;
	size_t n = strlen(title);
	if (n > size - 1)
		n = size - 1;
	memcpy(area, title, n);
	memset(area + n, 0, size - n);
}
