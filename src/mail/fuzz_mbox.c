/* fuzz_mbox.c - the mbox backend on arbitrary file content.  An mbox is
 * written by other programs (procmail, mutt, a broken tool, disk damage):
 * opening, syncing, reading every message, changing flags and expunging
 * must reject or work, never crash, read out of bounds or lose bytes that
 * are not expunged.  Each input is written to an mbox in a fresh mkdtemp()
 * directory that is removed afterwards. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/fs.h"
#include "mail/mailbox.h"

static void fuzz_mbox_rmdir(const char *dir)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return;
	struct dirent *de;
	char path[512];
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		(void)snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		(void)unlink(path);
	}
	(void)closedir(d);
	(void)rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char dir[] = "/tmp/facteur-fuzz-mbox-XXXXXX";
	char path[128];
	if (mkdtemp(dir) == NULL)
		return 0;
	(void)snprintf(path, sizeof(path), "%s/mbox", dir);
	if (fs_write_atomic(path, data, size, 0600) < 0) {
		fuzz_mbox_rmdir(dir);
		return 0;
	}
	const char *error = NULL;
	struct mailbox *mb = mailbox_open(path, MAILBOX_MBOX, &error);
	if (mb == NULL) {
		if (error == NULL)
			abort();
		fuzz_mbox_rmdir(dir);
		return 0;
	}
	if (mailbox_sync(mb, &error) < 0)
		abort(); /* nothing changed since the open */
	size_t count = mailbox_count(mb);
	uint64_t total = 0;
	for (size_t seq = 1; seq <= count; seq++) {
		if (seq > 1 && mailbox_msg_uid(mb, seq) <= mailbox_msg_uid(mb, seq - 1))
			abort();
		int fd;
		if (mailbox_msg_open(mb, seq, &fd, &error) < 0)
			abort();
		uint64_t want = mailbox_msg_size(mb, seq);
		char chunk[4096];
		uint64_t got = 0;
		ssize_t n;
		while (got < want && (n = read(fd, chunk, sizeof(chunk))) > 0)
			got += (uint64_t)n;
		(void)close(fd);
		if (got < want)
			abort(); /* the message must be all there */
		total += want;
		(void)mailbox_msg_recent(mb, seq);
	}
	if (total > size)
		abort();
	if (count > 0) {
		size_t seqs[2] = { 1, count };
		unsigned flags[2] = { MAILBOX_FLAG_SEEN | MAILBOX_FLAG_FLAGGED,
				      MAILBOX_FLAG_ANSWERED | MAILBOX_FLAG_DELETED };
		if (mailbox_flags_set_many(mb, seqs, flags, 2, &error) < 0)
			abort();
		if (mailbox_count(mb) != count)
			abort();
		uint32_t last = mailbox_msg_uid(mb, count);
		if (mailbox_expunge(mb, (count + 1) / 2, &error) < 0)
			abort();
		if (mailbox_count(mb) != count - 1)
			abort();
		/* Re-reading the rewritten file finds the same messages. */
		struct mailbox *again = mailbox_open(path, MAILBOX_MBOX, &error);
		if (again == NULL || mailbox_count(again) != count - 1)
			abort();
		if (count > 1 && mailbox_msg_uid(again, count - 1) != last)
			abort();
		mailbox_free(&again);
	}
	mailbox_free(&mb);
	fuzz_mbox_rmdir(dir);
	return 0;
}
