/* smtp_data.c - the DATA writer of the SMTP client.
 *
 * Queue files keep content with LF line ends (smtpd and pickup convert
 * CRLF on the way in).  On the wire every line ends with CRLF and a line
 * that starts with "." is sent with one more "." (RFC 5321 4.5.2, "dot
 * transparency"); the data ends with CRLF "." CRLF.  A CR inside a line is
 * sent as it is: only the LF the queue file uses as a line end becomes
 * CRLF, so no bare LF ever reaches the server (SMTP smuggling needs one).
 */
#include "smtp/smtp.h"

#include <string.h>

void smtp_data_writer_init(struct smtp_data_writer *w)
{
	w->at_line_start = true;
	w->in_bytes = 0;
}

void smtp_data_write(struct smtp_data_writer *w, const uint8_t *data, size_t len,
		     struct buf *out)
{
	size_t i = 0;
	w->in_bytes += len;
	buf_reserve(out, len + len / 32 + 4);
	while (i < len) {
		if (w->at_line_start && data[i] == '.')
			buf_append_char(out, '.');
		const uint8_t *nl = memchr(data + i, '\n', len - i);
		size_t run = nl != NULL ? (size_t)(nl - (data + i)) : len - i;
		buf_append(out, data + i, run);
		i += run;
		if (nl != NULL) {
			buf_append(out, "\r\n", 2);
			i++;
			w->at_line_start = true;
		} else {
			w->at_line_start = run == 0 ? w->at_line_start : false;
		}
	}
}

void smtp_data_finish(struct smtp_data_writer *w, struct buf *out)
{
	if (!w->at_line_start)
		buf_append(out, "\r\n", 2);
	buf_append(out, ".\r\n", 3);
	w->at_line_start = true;
}
