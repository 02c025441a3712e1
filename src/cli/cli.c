/* cli.c - argument dispatch for the facteur program. */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

int cli_main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "version") == 0) {
		printf("facteur %s\n", FACTEUR_VERSION);
		return 0;
	}
	fprintf(stderr, "usage: facteur [-c DIR] COMMAND ...\n");
	return 2;
}
