/* main.c - the facteur program: dispatch to a subcommand (cli_*.c). */
#include "cli/cli.h"

int main(int argc, char **argv)
{
	return cli_main(argc, argv);
}
