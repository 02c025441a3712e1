/* addr.c - RFC 5321 envelope paths, ESMTP parameters and address helpers.
 *
 * Called by smtpd for MAIL FROM / RCPT TO, by sendmail for command-line
 * addresses and by cleanup for qualification.  Nothing here reads the
 * configuration: every function is pure and takes what it needs as
 * arguments, so it can be unit-tested and fuzzed in isolation.
 *
 * Parsing never writes into its input; every returned string is newly
 * allocated and owned by the caller.
 */
#include "mail/addr.h"

#include "lib/buf.h"
#include "lib/mem.h"
#include "lib/str.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool addr_is_alpha(int c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }
static bool addr_is_digit(int c) { return c >= '0' && c <= '9'; }
static bool addr_is_alnum(int c) { return addr_is_alpha(c) || addr_is_digit(c); }

/* RFC 5322 3.2.3 atext (the characters of an unquoted local part). */
static bool addr_is_atext(int c)
{
	return addr_is_alnum(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* A domain name: labels of letters, digits, '-' and '_' (Postfix accepts the
 * underscore, which some real hosts have), 1-63 octets, no label starting or
 * ending with '-'.  No trailing dot: RFC 5321 4.1.2 Domain has none. */
static bool addr_domain_name_valid(const char *p, size_t n)
{
	size_t label = 0;
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)p[i];
		if (c == '.') {
			if (label == 0 || p[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!addr_is_alnum(c) && c != '-' && c != '_')
			return false;
		if (c == '-' && label == 0)
			return false;
		if (++label > 63)
			return false;
	}
	return label > 0 && p[n - 1] != '-';
}

/* RFC 5321 4.1.3 address-literal: "[" ( IPv4 / "IPv6:" IPv6 /
 * Standardized-tag ":" 1*dcontent ) "]".  p..n includes the brackets. */
static bool addr_domain_literal_valid(const char *p, size_t n)
{
	char tmp[ADDR_DOMAIN_MAX + 1];
	unsigned char bin[16];
	if (n < 3 || p[0] != '[' || p[n - 1] != ']' || n - 2 > ADDR_DOMAIN_MAX)
		return false;
	memcpy(tmp, p + 1, n - 2);
	tmp[n - 2] = '\0';
	if (strncasecmp(tmp, "IPv6:", 5) == 0)
		return inet_pton(AF_INET6, tmp + 5, bin) == 1;
	if (addr_is_digit((unsigned char)tmp[0]) && strchr(tmp, ':') == NULL)
		return inet_pton(AF_INET, tmp, bin) == 1;
	/* General-address-literal: Ldh-str ":" 1*dcontent. */
	const char *colon = strchr(tmp, ':');
	if (colon == NULL || colon == tmp || colon[1] == '\0')
		return false;
	for (const char *q = tmp; q < colon; q++)
		if (!addr_is_alnum((unsigned char)*q) && *q != '-')
			return false;
	for (const char *q = colon + 1; *q != '\0'; q++) {
		int c = (unsigned char)*q;
		if (c < 33 || c > 126 || c == '[' || c == '\\' || c == ']')
			return false;
	}
	return true;
}

static bool addr_domain_valid(const char *p, size_t n)
{
	if (n > 0 && p[0] == '[')
		return addr_domain_literal_valid(p, n);
	return addr_domain_name_valid(p, n);
}

/* Find the '@' that separates local part and domain: the last one outside
 * double quotes.  Returns its offset or n when there is none. */
static size_t addr_find_at(const char *p, size_t n)
{
	bool in_quote = false;
	size_t at = n;
	for (size_t i = 0; i < n; i++) {
		if (in_quote && p[i] == '\\' && i + 1 < n)
			i++;
		else if (p[i] == '"')
			in_quote = !in_quote;
		else if (!in_quote && p[i] == '@')
			at = i;
	}
	return at;
}

/* RFC 5321 4.1.2: Local-part = Dot-string / Quoted-string.  Postfix (and
 * so we) accept empty atoms in a dot-string ("a..b"): real MUAs send them
 * and refusing them gains nothing. */
static bool addr_local_valid(const char *p, size_t n)
{
	if (n == 0)
		return false;
	if (p[0] == '"') {
		size_t i = 1;
		for (; i < n; i++) {
			int c = (unsigned char)p[i];
			if (c == '\\') {
				if (++i >= n)
					return false;
				c = (unsigned char)p[i];
				if (c < 32 || c > 126)
					return false;
			} else if (c == '"') {
				break;
			} else if (c < 32 || c > 126) {
				return false;
			}
		}
		return i == n - 1 && p[i] == '"';
	}
	for (size_t i = 0; i < n; i++)
		if (p[i] != '.' && !addr_is_atext((unsigned char)p[i]))
			return false;
	return true;
}

/* Scan the path text from p.  When bracketed, stop at the closing '>';
 * otherwise stop at the first space.  Quotes and domain literals are
 * skipped as units so that '>' or ' ' inside them do not end the path. */
static int addr_scan(const char *p, const char *end, bool bracketed, const char **stop_r,
		     const char **error_r)
{
	bool in_quote = false, in_literal = false;
	for (; p < end; p++) {
		int c = (unsigned char)*p;
		if (c >= 0x80) {
			*error_r = "8-bit character in address (SMTPUTF8 is not supported)";
			return -1;
		}
		if (c < 0x20 || c == 0x7f) {
			if (c == '\t' && !bracketed && !in_quote)
				break;
			*error_r = "control character in address";
			return -1;
		}
		if (in_quote) {
			if (c == '\\') {
				if (p + 1 >= end) {
					*error_r = "unbalanced quote in address";
					return -1;
				}
				p++;
				if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f) {
					*error_r = (unsigned char)*p >= 0x80 ?
						"8-bit character in address (SMTPUTF8 is not supported)" :
						"control character in address";
					return -1;
				}
			} else if (c == '"') {
				in_quote = false;
			}
			continue;
		}
		if (in_literal) {
			if (c == ']')
				in_literal = false;
			else if (c == '[' || c == '<' || c == '>') {
				*error_r = "unbalanced '[' in address";
				return -1;
			}
			continue;
		}
		if (c == '"')
			in_quote = true;
		else if (c == '[')
			in_literal = true;
		else if (c == ']') {
			*error_r = "unbalanced ']' in address";
			return -1;
		} else if (c == '<') {
			*error_r = "unbalanced '<' in address";
			return -1;
		} else if (c == '>') {
			if (bracketed)
				break;
			*error_r = "unbalanced '>' in address";
			return -1;
		} else if (c == ' ' && !bracketed) {
			break;
		}
	}
	if (in_quote) {
		*error_r = "unbalanced quote in address";
		return -1;
	}
	if (in_literal) {
		*error_r = "unbalanced '[' in address";
		return -1;
	}
	if (bracketed && p >= end) {
		*error_r = "missing '>' after address";
		return -1;
	}
	*stop_r = p;
	return 0;
}

/* RFC 5321 4.1.2: A-d-l = At-domain *( "," At-domain ) followed by ':'. */
static bool addr_route_valid(const char *p, size_t n)
{
	size_t i = 0;
	while (i < n) {
		if (p[i] != '@')
			return false;
		size_t start = ++i;
		while (i < n && p[i] != ',')
			i++;
		if (!addr_domain_valid(p + start, i - start))
			return false;
		if (i < n)
			i++;	/* the ',' */
		if (i == n && p[n - 1] == ',')
			return false;
	}
	return n > 0;
}

int addr_parse_path(const char *arg, size_t len, bool strict, char **addr_r,
		    size_t *consumed_r, const char **error_r)
{
	const char *p = arg, *end = arg + len, *stop;
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	if (p == end) {
		*error_r = "missing address";
		return -1;
	}
	bool bracketed = *p == '<';
	if (strict && !bracketed) {
		*error_r = "angle brackets required around address";
		return -1;
	}
	if (bracketed)
		p++;
	if (addr_scan(p, end, bracketed, &stop, error_r) < 0)
		return -1;
	/* The path as sent, brackets included (RFC 5321 4.5.3.1.3). */
	size_t path_len = (size_t)(stop - p) + 2;
	const char *mbox = p, *mbox_end = stop;
	if (mbox < mbox_end && *mbox == '@') {
		const char *colon = memchr(mbox, ':', (size_t)(mbox_end - mbox));
		if (colon == NULL || !addr_route_valid(mbox, (size_t)(colon - mbox))) {
			*error_r = "bad source route in address";
			return -1;
		}
		mbox = colon + 1;
		if (mbox == mbox_end) {
			*error_r = "bad source route in address";
			return -1;
		}
	}
	size_t n = (size_t)(mbox_end - mbox);
	if (n == 0 && !bracketed) {
		*error_r = "missing address";
		return -1;
	}
	if (n > 0) {
		size_t at = addr_find_at(mbox, n);
		size_t local_len = at;
		if (local_len > ADDR_LOCAL_MAX) {
			*error_r = "local part of address too long (max 64)";
			return -1;
		}
		if (at < n && n - at - 1 > ADDR_DOMAIN_MAX) {
			*error_r = "domain of address too long (max 255)";
			return -1;
		}
		if (!addr_local_valid(mbox, local_len)) {
			*error_r = "bad address syntax";
			return -1;
		}
		if (at < n && !addr_domain_valid(mbox + at + 1, n - at - 1)) {
			*error_r = "bad domain syntax in address";
			return -1;
		}
	}
	if (path_len > ADDR_PATH_MAX) {
		*error_r = "address too long (max 256)";
		return -1;
	}
	const char *after = bracketed ? stop + 1 : stop;
	if (after < end && *after != ' ' && *after != '\t') {
		*error_r = "garbage after address";
		return -1;
	}
	while (after < end && (*after == ' ' || *after == '\t'))
		after++;
	*addr_r = xstrndup(mbox, n);
	*consumed_r = (size_t)(after - arg);
	return 0;
}

/* ---- ESMTP parameters (RFC 5321 4.1.2) ---- */

void addr_esmtp_params_free(struct esmtp_param **params, size_t n)
{
	if (*params == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		free((*params)[i].key);
		free((*params)[i].value);
	}
	free(*params);
	*params = NULL;
}

int addr_parse_esmtp_params(const char *s, struct esmtp_param **params_r, size_t *n_r,
			    const char **error_r)
{
	struct esmtp_param *params = NULL;
	size_t n = 0;
	const char *p = s;
	for (;;) {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		if (n == ADDR_ESMTP_PARAMS_MAX) {
			*error_r = "too many ESMTP parameters";
			goto fail;
		}
		const char *key = p;
		if (!addr_is_alnum((unsigned char)*p)) {
			*error_r = "bad ESMTP parameter keyword";
			goto fail;
		}
		while (addr_is_alnum((unsigned char)*p) || *p == '-')
			p++;
		size_t key_len = (size_t)(p - key);
		char *value = NULL;
		if (*p == '=') {
			const char *v = ++p;
			while (*p > 32 && *p < 127 && *p != '=')
				p++;
			if (p == v) {
				*error_r = "empty ESMTP parameter value";
				goto fail;
			}
			value = xstrndup(v, (size_t)(p - v));
		}
		if (*p != ' ' && *p != '\0') {
			free(value);
			*error_r = (unsigned char)*p >= 0x80 || *p < 32 ?
				"bad character in ESMTP parameter" : "bad ESMTP parameter syntax";
			goto fail;
		}
		params = xreallocarray(params, n + 1, sizeof(*params));
		params[n].key = xstrndup(key, key_len);
		for (char *k = params[n].key; *k != '\0'; k++)
			if (*k >= 'a' && *k <= 'z')
				*k = (char)(*k - 32);
		params[n].value = value;
		n++;
	}
	*params_r = params;
	*n_r = n;
	return 0;
fail:
	addr_esmtp_params_free(&params, n);
	return -1;
}

/* ---- xtext (RFC 3461 4) ---- */

static int addr_hex_value(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')	/* RFC says upper case; be liberal */
		return c - 'a' + 10;
	return -1;
}

int xtext_decode(const char *in, char **out_r)
{
	struct buf b = BUF_INIT;
	for (const char *p = in; *p != '\0'; p++) {
		int c = (unsigned char)*p;
		if (c == '+') {
			int hi = addr_hex_value((unsigned char)p[1]);
			int lo = hi < 0 ? -1 : addr_hex_value((unsigned char)p[2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				goto fail;
			buf_append_char(&b, (char)(hi * 16 + lo));
			p += 2;
		} else if (c < 33 || c > 126 || c == '=') {
			goto fail;
		} else {
			buf_append_char(&b, (char)c);
		}
	}
	*out_r = buf_steal(&b);
	return 0;
fail:
	buf_deinit(&b);
	return -1;
}

char *xtext_encode(const char *in)
{
	static const char hex[] = "0123456789ABCDEF";
	struct buf b = BUF_INIT;
	for (const unsigned char *p = (const unsigned char *)in; *p != '\0'; p++) {
		if (*p < 33 || *p > 126 || *p == '+' || *p == '=') {
			buf_append_char(&b, '+');
			buf_append_char(&b, hex[*p >> 4]);
			buf_append_char(&b, hex[*p & 15]);
		} else {
			buf_append_char(&b, (char)*p);
		}
	}
	return buf_steal(&b);
}

/* ---- DSN and other MAIL/RCPT parameter values ---- */

int addr_esmtp_notify_parse(const char *value, unsigned *flags_r)
{
	unsigned flags = 0;
	const char *p = value;
	for (;;) {
		const char *comma = strchr(p, ',');
		size_t n = comma != NULL ? (size_t)(comma - p) : strlen(p);
		struct strv item = strv_make(p, n);
		if (strv_case_eq(item, "NEVER"))
			flags |= ADDR_NOTIFY_NEVER;
		else if (strv_case_eq(item, "SUCCESS"))
			flags |= ADDR_NOTIFY_SUCCESS;
		else if (strv_case_eq(item, "FAILURE"))
			flags |= ADDR_NOTIFY_FAILURE;
		else if (strv_case_eq(item, "DELAY"))
			flags |= ADDR_NOTIFY_DELAY;
		else
			return -1;
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	/* RFC 3461 4.1: NEVER must appear alone. */
	if ((flags & ADDR_NOTIFY_NEVER) != 0 && flags != ADDR_NOTIFY_NEVER)
		return -1;
	*flags_r = flags;
	return 0;
}

int addr_esmtp_ret_parse(const char *value, enum addr_dsn_ret *ret_r)
{
	if (str_casecmp(value, "FULL") == 0)
		*ret_r = ADDR_RET_FULL;
	else if (str_casecmp(value, "HDRS") == 0)
		*ret_r = ADDR_RET_HDRS;
	else
		return -1;
	return 0;
}

int addr_esmtp_envid_parse(const char *value, char **envid_r)
{
	if (strlen(value) > ADDR_ENVID_MAX)
		return -1;
	return xtext_decode(value, envid_r);
}

int addr_esmtp_orcpt_parse(const char *value, char **type_r, char **addr_r)
{
	const char *semi = strchr(value, ';');
	if (semi == NULL || semi == value || strlen(value) > ADDR_ORCPT_MAX)
		return -1;
	/* addr-type = atom (RFC 3461 4.2). */
	for (const char *p = value; p < semi; p++)
		if (!addr_is_atext((unsigned char)*p))
			return -1;
	char *addr;
	if (xtext_decode(semi + 1, &addr) < 0)
		return -1;
	char *type = xstrndup(value, (size_t)(semi - value));
	for (char *t = type; *t != '\0'; t++)
		if (*t >= 'a' && *t <= 'z')
			*t = (char)(*t - 32);
	if (strcmp(type, "RFC822") == 0 && *addr == '\0') {
		free(type);
		free(addr);
		return -1;
	}
	*type_r = type;
	*addr_r = addr;
	return 0;
}

int addr_esmtp_size_parse(const char *value, uint64_t *size_r)
{
	/* 20 digits would overflow; RFC 1870 size-value is 1*20DIGIT. */
	return str_to_u64(value, 0, UINT64_MAX, size_r);
}

int addr_esmtp_body_parse(const char *value, enum addr_body *body_r)
{
	if (str_casecmp(value, "7BIT") == 0)
		*body_r = ADDR_BODY_7BIT;
	else if (str_casecmp(value, "8BITMIME") == 0)
		*body_r = ADDR_BODY_8BITMIME;
	else
		return -1;
	return 0;
}

/* ---- helpers on parsed addresses ---- */

bool addr_split(const char *addr, char **local_r, char **domain_r)
{
	size_t n = strlen(addr);
	size_t at = addr_find_at(addr, n);
	if (local_r != NULL)
		*local_r = xstrndup(addr, at);
	if (domain_r != NULL)
		*domain_r = at < n ? xstrdup(addr + at + 1) : NULL;
	return at < n;
}

char *addr_qualify(const char *addr, const char *origin)
{
	size_t n = strlen(addr);
	if (n == 0 || addr_find_at(addr, n) < n)
		return xstrdup(addr);
	struct buf b = BUF_INIT;
	buf_printf(&b, "%s@%s", addr, origin);
	return buf_steal(&b);
}

static size_t addr_len_no_dot(const char *s)
{
	size_t n = strlen(s);
	if (n > 0 && s[n - 1] == '.')
		n--;
	return n;
}

bool addr_domain_in_list(const char *domain, char *const *domains)
{
	size_t n = addr_len_no_dot(domain);
	if (n == 0 || domains == NULL)
		return false;
	for (size_t i = 0; domains[i] != NULL; i++) {
		size_t m = addr_len_no_dot(domains[i]);
		if (m == n && strncasecmp(domain, domains[i], n) == 0)
			return true;
	}
	return false;
}

char *addr_lower_domain(const char *addr)
{
	size_t n = strlen(addr);
	size_t at = addr_find_at(addr, n);
	char *copy = xstrdup(addr);
	if (at < n)
		str_lower(copy + at + 1);
	return copy;
}

bool addr_has_routing_chars(const char *local)
{
	return strpbrk(local, "@%!") != NULL;
}
