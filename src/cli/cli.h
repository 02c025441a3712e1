/* cli.h - the facteur command line (subcommands and the sendmail, mailq,
 * newaliases personalities). */
#ifndef FACTEUR_CLI_CLI_H
#define FACTEUR_CLI_CLI_H

int cli_main(int argc, char **argv);

#endif
