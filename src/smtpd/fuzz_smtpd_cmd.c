/* fuzz_smtpd_cmd.c - libFuzzer target: the input is a client byte stream
 * fed into a real SMTP session (command loop, handlers, checks, DATA,
 * queue file writer) over a socketpair, driven by event_base_loop with
 * EVLOOP_NONBLOCK; no network, no DNS.  The configuration accepts mail for
 * a local domain and relays for the client (127.0.0.1 in mynetworks); the
 * queue directory is created once under /tmp and emptied after each run. */
#include <dirent.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/workq.h"
#include "lib/log.h"
#include "lib/str.h"
#include "mail/queue.h"
#include "mail/table.h"
#include "smtpd/smtpd_int.h"

static struct smtpd_conf conf;
static struct smtpd_server srv;
static char qdir[] = "/tmp/fuzz_smtpd_cmd.XXXXXX";
static char incoming[sizeof(qdir) + 16];

static void fuzz_init(void)
{
	const char *error = NULL;

	log_init("smtpd", LOG_DEST_FILE, "/dev/null");
	if (mkdtemp(qdir) == NULL || queue_dirs_create(qdir, getuid(), getgid(), &error) < 0)
		abort();
	(void)str_copy(incoming, sizeof(incoming), qdir);
	size_t n = strlen(incoming);
	(void)str_copy(incoming + n, sizeof(incoming) - n, "/incoming");

	memset(&conf, 0, sizeof(conf));
	conf.myhostname = "mail.example.test";
	conf.myorigin = "mail.example.test";
	conf.mydomain = "example.test";
	conf.mail_name = "facteur";
	conf.banner = "mail.example.test ESMTP facteur";
	conf.message_size_limit = 20000;
	conf.line_length_limit = 512;
	conf.header_size_limit = 4096;
	conf.timeout_sec = 300;
	conf.error_sleep_sec = 0;
	conf.max_sessions = 10;
	conf.client_connection_count_limit = 10;
	conf.soft_error_limit = 10;
	conf.hard_error_limit = 20;
	conf.recipient_limit = 5;
	conf.unknown_local_reject_code = 550;
	conf.relay_reject_code = 554;
	conf.recipient_delimiter = "+";
	(void)str_list_split("mail.example.test localhost", &conf.mydestination);
	(void)str_list_split("virtual.test", &conf.virtual_mailbox_domains);
	(void)str_list_split("", &conf.relay_domains);
	(void)smtpd_nets_parse(&conf.mynetworks, "127.0.0.0/8 [::1]/128", &error);
	conf.alias_maps = table_list_open("inline:{ toto=root, postmaster=root }", &error);
	conf.virtual_mailbox_maps = table_list_open("inline:{ alice@virtual.test=a/ }", &error);
	conf.virtual_alias_maps = table_list_open("inline:{ b@virtual.test=alice@virtual.test }",
						  &error);
	smtpd_conf_wire_cleanup(&conf);

	memset(&srv, 0, sizeof(srv));
	srv.base = event_base_new();
	srv.conf = &conf;
	srv.queue_dir = qdir;
	srv.commitq = workq_new(srv.base, 1);
}

static void fuzz_clean_incoming(void)
{
	DIR *d = opendir(incoming);
	struct dirent *e;
	struct buf p = BUF_INIT;

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		buf_reset(&p);
		buf_printf(&p, "%s/%s", incoming, e->d_name);
		(void)unlink(buf_cstr(&p));
	}
	closedir(d);
	buf_deinit(&p);
}

static void fuzz_drain(int fd)
{
	char sink[4096];
	while (read(fd, sink, sizeof(sink)) > 0)
		;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	int sv[2];
	struct sockaddr_in sin;

	if (!ready) {
		fuzz_init();
		ready = true;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		return 0;
	(void)fcntl(sv[1], F_SETFL, O_NONBLOCK);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(0x7f000001);
	smtpd_session_start(&srv, sv[0], false, (struct sockaddr *)&sin, sizeof(sin));

	/* Send in pieces so that commands arrive split across reads. */
	size_t off = 0;
	for (int round = 0; round < 10000 && srv.n_sessions > 0; round++) {
		if (off < size) {
			size_t chunk = size - off < 1024 ? size - off : 1024;
			ssize_t n = write(sv[1], data + off, chunk);
			if (n > 0)
				off += (size_t)n;
			if (off == size)
				(void)shutdown(sv[1], SHUT_WR);
		} else if (size == 0 && round == 0) {
			(void)shutdown(sv[1], SHUT_WR);
		}
		event_base_loop(srv.base, EVLOOP_NONBLOCK);
		fuzz_drain(sv[1]);
	}
	smtpd_sessions_close_all(&srv);
	event_base_loop(srv.base, EVLOOP_NONBLOCK);
	/* Commits still in flight finish before the queue is cleaned. */
	while (workq_pending(srv.commitq) > 0)
		event_base_loop(srv.base, EVLOOP_ONCE);
	(void)close(sv[1]);
	fuzz_clean_incoming();
	return 0;
}
