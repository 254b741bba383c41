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

static char *area;      /* start of the writable stretch (argv[0]) */
static size_t size;     /* its length */
static char **kept;     /* every copy of argv's and environ's strings, for good */
static char **env_copy; /* the array environ was set to (setenv may replace it) */

void proctitle_init(int argc, char **argv)
{
	char **copy = NULL;
	int n = 0, total;

	if (argc < 1 || !argv[0])
		return;
	for (; environ[n]; n++)
		;
	total = argc + n;
	/* kept[] holds every copy for good: setenv and unsetenv rearrange the
	 * array environ points to, and a copy they drop must stay reachable. */
	if (!(kept = calloc((size_t)total + 1, sizeof *kept)) ||
	    !(copy = calloc((size_t)n + 1, sizeof *copy)))
		goto fail;
	char *start = argv[0], *end = start;
	for (int i = 0; i < total; i++) {
		char *s = i < argc ? argv[i] : environ[i - argc];
		if (s == end || i == 0)
			end = s + strlen(s) + 1; /* the stretch goes on while contiguous */
		if (!(kept[i] = strdup(s)))
			goto fail;
	}
	for (int i = 0; i < n; i++)
		copy[i] = kept[argc + i];
	environ = env_copy = copy;
	for (int i = 0; i < argc; i++)
		argv[i] = kept[i];
	area = start;
	size = (size_t)(end - start);
	return;
fail:
	for (int i = 0; kept && i < total; i++)
		free(kept[i]);
	free(kept);
	free(copy);
	kept = NULL;
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
