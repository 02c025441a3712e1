/* pop3_proto.h - the private protocol between pop3-login (unprivileged,
 * speaks to the network before authentication) and pop3 (root: verifies
 * passwords, becomes the mailbox owner and serves the session).
 *
 * pop3-login opens one SOCK_SEQPACKET connection to QDIR/private/pop3 per
 * login attempt and sends ONE request packet with the client's socket
 * attached (SCM_RIGHTS):
 *     struct pop3_proto_req, then user, password, client address and the
 *     client bytes already read after the login command (pipelining),
 *     concatenated without separators (lengths in the header).
 * pop3 answers with ONE reply byte:
 *     POP3_PROTO_OK    authenticated; pop3 now owns the client connection
 *                      (it sends "+OK Logged in." or an -ERR itself); the
 *                      login process closes its copy and forgets it;
 *     POP3_PROTO_FAIL  wrong user or password: the login process keeps the
 *                      session and answers "-ERR [AUTH] ...";
 *     POP3_PROTO_TEMP  temporary failure (passwd-file unreadable, no
 *                      mailbox mapping): "-ERR [SYS/TEMP] ...".
 * The password is wiped from the packet buffers on both sides after use.
 */
#ifndef FACTEUR_MAIL_POP3_PROTO_H
#define FACTEUR_MAIL_POP3_PROTO_H

#include <stdint.h>

#define POP3_PROTO_SOCKET_NAME "private/pop3"
#define POP3_PROTO_MAGIC 0x50335031u /* "P3P1" */
/* Client bytes after the login command handed over with it. */
#define POP3_PROTO_PENDING_MAX 8192u
#define POP3_PROTO_ADDR_MAX 64u
/* user <= AUTH_USER_MAX, password <= AUTH_PASSWORD_MAX. */
#define POP3_PROTO_PACKET_MAX (sizeof(struct pop3_proto_req) + 255u + 1024u + \
			       POP3_PROTO_ADDR_MAX + POP3_PROTO_PENDING_MAX)

enum pop3_proto_reply {
	POP3_PROTO_OK = 'O',
	POP3_PROTO_FAIL = 'F',
	POP3_PROTO_TEMP = 'T',
};

struct pop3_proto_req {
	uint32_t magic;
	uint16_t user_len;
	uint16_t password_len;
	uint16_t addr_len;
	uint16_t pending_len;
};

#endif
