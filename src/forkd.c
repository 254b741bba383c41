/* The forkd binary: the command line, with the app taken from [app] module.
 * An app linked into its own binary calls forkd_main with its init instead. */
#include "forkd.h"

int main(int argc, char **argv)
{
	return forkd_main(argc, argv, NULL);
}
