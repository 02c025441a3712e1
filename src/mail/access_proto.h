/* access_proto.h - the private protocol between a login front end
 * (pop3-login, imap-login: unprivileged, speak to the network before
 * authentication) and its privileged service (pop3, imap: verify the
 * password, become the mailbox owner and serve the session).
 *
 * The login process opens one SOCK_SEQPACKET connection to
 * QDIR/private/<service> per login attempt and sends ONE request packet
 * with the client's socket attached (SCM_RIGHTS):
 *     struct access_proto_req, then user, password, client address, the
 *     IMAP tag of the login command (empty for POP3) and the client bytes
 *     already read after the login command (pipelining), concatenated
 *     without separators (lengths in the header).
 * The service answers with ONE reply byte:
 *     ACCESS_PROTO_OK    authenticated; the service now owns the client
 *                        connection (it sends the success reply itself);
 *                        the login process closes its copy and forgets it;
 *     ACCESS_PROTO_FAIL  wrong user or password: the login process keeps
 *                        the session and answers the failure itself;
 *     ACCESS_PROTO_TEMP  temporary failure (passwd-file unreadable, no
 *                        mailbox mapping).
 * The password is wiped from the packet buffers on both sides after use.
 */
#ifndef FACTEUR_MAIL_ACCESS_PROTO_H
#define FACTEUR_MAIL_ACCESS_PROTO_H

#include <stdint.h>

#define POP3_PROTO_SOCKET_NAME "private/pop3"
#define IMAP_PROTO_SOCKET_NAME "private/imap"
#define ACCESS_PROTO_MAGIC 0x41435032u /* "ACP2" */
/* Client bytes after the login command handed over with it. */
#define ACCESS_PROTO_PENDING_MAX 8192u
#define ACCESS_PROTO_ADDR_MAX 64u
#define ACCESS_PROTO_TAG_MAX 128u
/* user <= AUTH_USER_MAX, password <= AUTH_PASSWORD_MAX. */
#define ACCESS_PROTO_PACKET_MAX (sizeof(struct access_proto_req) + 255u + 1024u + \
				 ACCESS_PROTO_ADDR_MAX + ACCESS_PROTO_TAG_MAX + \
				 ACCESS_PROTO_PENDING_MAX)

enum access_proto_reply {
	ACCESS_PROTO_OK = 'O',
	ACCESS_PROTO_FAIL = 'F',
	ACCESS_PROTO_TEMP = 'T',
};

struct access_proto_req {
	uint32_t magic;
	uint16_t user_len;
	uint16_t password_len;
	uint16_t addr_len;
	uint16_t tag_len;
	uint16_t pending_len;
	uint16_t reserved;
};

#endif
