/* pickup_int.h - internal interface of the pickup role (src/pickup/).
 *
 * The pickup role turns maildrop files (maildrop.h) written by
 * `facteur sendmail` into queue files in QDIR/incoming, as Postfix's
 * pickup + cleanup do:
 *
 *   pickup.c      pickup_main: privilege drop, FIFO wake-ups, periodic scan
 *   pickup_file.c one maildrop file: checks, envelope rewriting, headers,
 *                 queue file, removal of the maildrop file, log lines
 *   maildrop.c    the file format (also used by the sendmail command)
 *
 * Delivery guarantee: at-least-once.  The queue file is committed (fsync,
 * rename, directory fsync) before the maildrop file is unlinked; a crash
 * between the two makes the message picked up a second time.  The window
 * is one unlink(2).
 *
 * Nothing outside src/pickup includes this file, except the sendmail
 * command which uses maildrop.h only.
 */
#ifndef FACTEUR_PICKUP_INT_H
#define FACTEUR_PICKUP_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "mail/cleanup.h"

struct config;
struct table_list;

struct pickup {
	char *queue_dir;
	struct cleanup_params cp;
	struct table_list *canonical_maps;
	struct table_list *sender_canonical_maps;
	struct table_list *recipient_canonical_maps;
	struct table_list *virtual_alias_maps;
	uint64_t message_size_limit; /* 0: none */
	/* Counters for tests and the status command. */
	unsigned n_queued;
	unsigned n_corrupt;
	unsigned n_abandoned;
};

/* Read the parameters pickup needs from cfg and open its tables.  Returns 0
 * or -1 with *error_r (static or owned by the table module). */
int pickup_init(struct pickup *p, struct config *cfg, const char *queue_dir,
		const char **error_r);
void pickup_deinit(struct pickup *p);

/* Process every complete file in QDIR/maildrop once.  now is the current
 * time (for the abandon age).  Returns the number of messages queued. */
int pickup_scan(struct pickup *p, time_t now);

/* Process one maildrop file by name.  Returns 1 queued, 0 skipped (not
 * complete yet, or removed/quarantined with a log line), -1 temporary
 * error (the file stays for the next scan). */
int pickup_file(struct pickup *p, int maildrop_dfd, const char *name, time_t now);

#endif
