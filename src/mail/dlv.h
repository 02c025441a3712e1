/* dlv.h - the delivery request protocol between the queue manager (qmgr,
 * unprivileged) and the local delivery agent (local, root when facteur was
 * started as root).
 *
 * Transport: a SOCK_SEQPACKET UNIX socket at QDIR/private/local, created by
 * local (mode 0600, owned by mail_owner).  One packet per request and per
 * reply, at most DLV_MAX_PACKET bytes, text "key=value" lines separated by
 * '\n'; values may not contain '\n' (the writer replaces control
 * characters).  The local agent checks the peer's uid (SO_PEERCRED) and
 * treats every field as untrusted input: it re-reads sender and content
 * from the queue file itself and validates queue_id.
 *
 * Request (qmgr -> local), keys in any order:
 *   req=N            request number, echoed in the reply
 *   queue_id=ID      the message; the file is QDIR/active/ID
 *   rcpt=N           recipient index in the queue file
 *   address=ADDR     the recipient (after rewriting)
 *   orig_to=ADDR     the address before rewriting/aliasing (may be absent)
 *   class=local|virtual
 *
 * Reply (local -> qmgr):
 *   req=N
 *   status=sent|deferred|bounced|expanded
 *   dsn=X.Y.Z
 *   text=human readable reason ("delivered to mailbox", ...)
 *   forward=ADDR     zero or more: addresses that aliases or .forward
 *                    expanded to and that local does not deliver itself
 *                    (other domains, virtual domains); qmgr adds them to
 *                    the queue file as new recipients with orig_to kept.
 *                    With status=sent the local targets were delivered;
 *                    with status=expanded there were only forwards.
 * The local agent logs the "to=<...>, relay=local, ... status=" lines of
 * the deliveries it makes; qmgr logs nothing for them.
 */
#ifndef FACTEUR_MAIL_DLV_H
#define FACTEUR_MAIL_DLV_H

#define DLV_MAX_PACKET 65536
#define DLV_SOCKET_NAME "private/local"

#endif
