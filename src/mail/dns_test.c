/* dns_test.c - unit tests for mail/dns.c: MX sorting and shuffling with an
 * injected random source, name validation limits, MX answer
 * interpretation on hand-built DNS messages, and the resolver against a
 * real dnsmasq started on 127.0.0.9 at a free port (skipped with a message
 * when /usr/sbin/dnsmasq is missing): preference order, equal preferences,
 * implicit MX, null MX, NXDOMAIN, a dead server (TEMPFAIL), "[host]"
 * nexthops, the address limit, cancellation and dns_free with queries in
 * flight.  dnsmasq's pid file lives in a mkdtemp() directory removed at
 * the end; dnsmasq is stopped by its PID. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "mail/dns.h"

#include "lib/buf.h"
#include "lib/mem.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define DNSMASQ "/usr/sbin/dnsmasq"
#define DNS_ADDR "127.0.0.9"

static char test_dir[] = "/tmp/facteur-dns-test.XXXXXX";
static pid_t dnsmasq_pid = -1;
static unsigned dnsmasq_port;
static unsigned dead_port; /* a UDP port where nothing answers */
static char servers[64];
static char dead_servers[64];

/* ---- dns_mx_sort ---- */

struct seq_rnd {
	const unsigned *values;
	size_t n, i;
};

static unsigned seq_next(void *ctx)
{
	struct seq_rnd *s = ctx;
	unsigned v = s->values[s->i % s->n];
	s->i++;
	return v;
}

static const struct {
	const char *name;
	const char *in;  /* "pref:host ..." */
	unsigned rnd[4]; /* values returned by the random source, cycled */
	const char *out; /* hosts after sorting, space separated */
} sort_rows[] = {
	{ "empty", "", { 0 }, "" },
	{ "one", "10:a", { 0 }, "a" },
	{ "sorted by preference", "20:b 10:a 30:c", { 0 }, "a b c" },
	{ "stable for distinct preferences", "5:z 1:y 3:x", { 7 }, "y x z" },
	/* Fisher-Yates on a run of two: i=1, j = rnd % 2. */
	{ "equal pair kept (rnd even)", "10:a 10:b", { 0 }, "b a" },
	{ "equal pair swapped (rnd odd)", "10:a 10:b", { 1 }, "a b" },
	{ "equal run inside others", "30:z 10:a 10:b 20:m", { 1 }, "a b m z" },
	{ "two runs shuffled independently", "10:a 10:b 20:c 20:d", { 0 }, "b a d c" },
	{ "preference 0 and 65535", "65535:last 0:first", { 0 }, "first last" },
};

static void test_mx_sort(void **state)
{
	(void)state;
	for (size_t r = 0; r < sizeof(sort_rows) / sizeof(sort_rows[0]); r++) {
		struct dns_mx mx[8];
		size_t n = 0;
		char *copy = xstrdup(sort_rows[r].in);
		for (char *tok = copy, *end; *tok != '\0'; tok = end) {
			end = tok + strcspn(tok, " ");
			if (*end == ' ')
				*end++ = '\0';
			char *colon = strchr(tok, ':');
			assert_non_null(colon);
			*colon = '\0';
			mx[n].preference = (unsigned)strtoul(tok, NULL, 10);
			mx[n].host = colon + 1;
			n++;
		}
		struct seq_rnd rnd = { sort_rows[r].rnd, 4, 0 };
		dns_mx_sort(mx, n, seq_next, &rnd);
		struct buf got = BUF_INIT;
		for (size_t i = 0; i < n; i++)
			buf_printf(&got, "%s%s", i > 0 ? " " : "", mx[i].host);
		if (strcmp(buf_cstr(&got), sort_rows[r].out) != 0)
			fail_msg("row %s: got \"%s\", want \"%s\"", sort_rows[r].name,
				 buf_cstr(&got), sort_rows[r].out);
		buf_deinit(&got);
		free(copy);
	}
}

/* Every order of an equal run is reachable: with a real random source,
 * both orders of a pair appear over many runs. */
static unsigned counter_rnd(void *ctx)
{
	unsigned *c = ctx;
	return (*c)++;
}

static void test_mx_sort_both_orders(void **state)
{
	(void)state;
	unsigned c = 0;
	bool seen_ab = false, seen_ba = false;
	for (int i = 0; i < 10; i++) {
		struct dns_mx mx[2] = { { (char *)"a", 10 }, { (char *)"b", 10 } };
		dns_mx_sort(mx, 2, counter_rnd, &c);
		if (strcmp(mx[0].host, "a") == 0)
			seen_ab = true;
		else
			seen_ba = true;
	}
	assert_true(seen_ab && seen_ba);
}

/* ---- dns_name_valid ---- */

static char *repeat(char c, size_t n)
{
	char *s = xmalloc(n + 1);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

static void test_name_valid(void **state)
{
	(void)state;
	static const struct {
		const char *name;
		bool ok;
	} rows[] = {
		{ "machin.test", true },   { "machin.test.", true }, { "a", true },
		{ "mx-1.machin.test", true }, { "_srv.x.test", true }, { "", false },
		{ ".", false },            { "a..b", false },        { ".a", false },
		{ "a b.test", false },     { "a/b", false },         { "é.test", false },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		if (dns_name_valid(rows[i].name) != rows[i].ok)
			fail_msg("%s: want %d", rows[i].name, rows[i].ok);

	/* Label limit 63: max-1, max, max+1. */
	for (size_t n = 62; n <= 64; n++) {
		char *label = repeat('a', n);
		struct buf b = BUF_INIT;
		buf_printf(&b, "%s.test", label);
		assert_int_equal(dns_name_valid(buf_cstr(&b)), n <= 63);
		buf_deinit(&b);
		free(label);
	}
	/* Name limit 253 (without the root dot): max-1, max, max+1. */
	for (size_t total = 252; total <= 254; total++) {
		struct buf b = BUF_INIT;
		while (b.len + 50 < total)
			buf_append_str(&b, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.");
		char *last = repeat('b', total - b.len);
		buf_append_str(&b, last);
		free(last);
		assert_int_equal(b.len, total);
		assert_int_equal(dns_name_valid(buf_cstr(&b)), total <= 253);
		buf_append_char(&b, '.');
		assert_int_equal(dns_name_valid(buf_cstr(&b)), total <= 253);
		buf_deinit(&b);
	}
}

/* ---- dns_mx_list_from_reply on hand-built messages ---- */

static void put16(struct buf *b, unsigned v)
{
	uint8_t x[2] = { (uint8_t)(v >> 8), (uint8_t)v };
	buf_append(b, x, 2);
}

static void put_name(struct buf *b, const char *name)
{
	while (*name != '\0') {
		size_t n = strcspn(name, ".");
		uint8_t len = (uint8_t)n;
		buf_append(b, &len, 1);
		buf_append(b, name, n);
		name += n;
		if (*name == '.')
			name++;
	}
	buf_append_char(b, '\0');
}

/* A response to "MX qname" with the given answers ("pref host", host ""
 * for the root). */
static void build_mx_reply(struct buf *b, const char *qname, size_t n, const unsigned *prefs,
			   const char *const *hosts)
{
	buf_reset(b);
	put16(b, 0x1234);  /* id */
	put16(b, 0x8180);  /* response, RD, RA, NOERROR */
	put16(b, 1);       /* qdcount */
	put16(b, (unsigned)n);
	put16(b, 0);
	put16(b, 0);
	put_name(b, qname);
	put16(b, 15); /* MX */
	put16(b, 1);  /* IN */
	for (size_t i = 0; i < n; i++) {
		uint8_t ptr[2] = { 0xc0, 12 }; /* compressed pointer to qname */
		buf_append(b, ptr, 2);
		put16(b, 15);
		put16(b, 1);
		put16(b, 0);
		put16(b, 300); /* ttl */
		struct buf rd = BUF_INIT;
		put16(&rd, prefs[i]);
		put_name(&rd, hosts[i]);
		put16(b, (unsigned)rd.len);
		buf_append(b, rd.data, rd.len);
		buf_deinit(&rd);
	}
}

static void test_mx_reply(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	struct dns_mx *mx;
	size_t n;
	bool null_mx;

	{
		const unsigned p[] = { 20, 10 };
		const char *const h[] = { "MX2.Machin.Test", "mx1.machin.test" };
		build_mx_reply(&b, "machin.test", 2, p, h);
		assert_int_equal(dns_mx_list_from_reply(b.data, (int)b.len, &mx, &n, &null_mx), 0);
		assert_int_equal(n, 2);
		assert_false(null_mx);
		assert_string_equal(mx[0].host, "mx2.machin.test"); /* lower-cased */
		assert_int_equal(mx[0].preference, 20);
		assert_string_equal(mx[1].host, "mx1.machin.test");
		dns_mx_list_free(&mx, n);
		assert_null(mx);
	}
	{
		/* RFC 7505: "0 ." */
		const unsigned p[] = { 0 };
		const char *const h[] = { "" };
		build_mx_reply(&b, "null.test", 1, p, h);
		assert_int_equal(dns_mx_list_from_reply(b.data, (int)b.len, &mx, &n, &null_mx), 0);
		assert_int_equal(n, 0);
		assert_true(null_mx);
		dns_mx_list_free(&mx, n);
	}
	{
		/* A null MX beside a real one: the real one is used. */
		const unsigned p[] = { 0, 10 };
		const char *const h[] = { "", "mx.test" };
		build_mx_reply(&b, "mixed.test", 2, p, h);
		assert_int_equal(dns_mx_list_from_reply(b.data, (int)b.len, &mx, &n, &null_mx), 0);
		assert_int_equal(n, 1);
		assert_false(null_mx);
		assert_string_equal(mx[0].host, "mx.test");
		dns_mx_list_free(&mx, n);
	}
	{
		/* A host name with a space is skipped, not returned. */
		const unsigned p[] = { 10, 20 };
		const char *const h[] = { "bad name.test", "good.test" };
		build_mx_reply(&b, "x.test", 2, p, h);
		assert_int_equal(dns_mx_list_from_reply(b.data, (int)b.len, &mx, &n, &null_mx), 0);
		assert_int_equal(n, 1);
		assert_string_equal(mx[0].host, "good.test");
		dns_mx_list_free(&mx, n);
	}
	{
		/* No answers (NODATA): 0 records, not a null MX. */
		build_mx_reply(&b, "x.test", 0, NULL, NULL);
		assert_int_equal(dns_mx_list_from_reply(b.data, (int)b.len, &mx, &n, &null_mx), 0);
		assert_int_equal(n, 0);
		assert_false(null_mx);
	}
	{
		/* Truncated message: malformed. */
		const unsigned p[] = { 10 };
		const char *const h[] = { "mx.test" };
		build_mx_reply(&b, "x.test", 1, p, h);
		assert_int_equal(dns_mx_list_from_reply(b.data, (int)b.len - 3, &mx, &n, &null_mx),
				 -1);
		assert_int_equal(dns_mx_list_from_reply(b.data, 5, &mx, &n, &null_mx), -1);
	}
	{
		/* The record limit (32) keeps the best preferences: 40 records
		 * with preferences 40..1. */
		unsigned p[40];
		const char *h[40];
		char names[40][16];
		for (unsigned i = 0; i < 40; i++) {
			p[i] = 40 - i;
			snprintf(names[i], sizeof(names[i]), "mx%u.test", 40 - i);
			h[i] = names[i];
		}
		build_mx_reply(&b, "many.test", 40, p, h);
		assert_int_equal(dns_mx_list_from_reply(b.data, (int)b.len, &mx, &n, &null_mx), 0);
		assert_int_equal(n, 32);
		for (size_t i = 0; i < n; i++)
			assert_true(mx[i].preference <= 32);
		dns_mx_list_free(&mx, n);
	}
	buf_deinit(&b);
}

/* ---- against dnsmasq ---- */

/* A free UDP port on DNS_ADDR (bound then released). */
static unsigned free_udp_port(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0)
		return 0;
	inet_pton(AF_INET, DNS_ADDR, &sin.sin_addr);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) < 0) {
		close(fd);
		return 0;
	}
	close(fd);
	return ntohs(sin.sin_port);
}

/* Is something bound to DNS_ADDR:port (UDP)? */
static bool udp_port_busy(unsigned port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0)
		return false;
	inet_pton(AF_INET, DNS_ADDR, &sin.sin_addr);
	bool busy = bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 && errno == EADDRINUSE;
	close(fd);
	return busy;
}

static const char *const dnsmasq_records[] = {
	"--mx-host=machin.test,mx1.machin.test,10",
	"--mx-host=machin.test,mx2.machin.test,20",
	"--host-record=mx1.machin.test,127.0.0.3",
	"--host-record=mx2.machin.test,127.0.0.4",
	"--mx-host=egal.test,a.egal.test,10",
	"--mx-host=egal.test,b.egal.test,10",
	"--host-record=a.egal.test,127.0.0.5",
	"--host-record=b.egal.test,127.0.0.6",
	"--host-record=implicit.test,127.0.0.7",
	"--mx-host=null.test,.,0",
	"--mx-host=v6.test,mx.v6.test,10",
	"--host-record=mx.v6.test,127.0.0.8,::1",
	"--mx-host=partial.test,nohost.partial.test,10",
	"--mx-host=partial.test,ok.partial.test,20",
	"--host-record=ok.partial.test,127.0.0.10",
	"--mx-host=allbad.test,nohost.allbad.test,10",
	"--mx-host=many.test,m1.many.test,10",
	"--mx-host=many.test,m2.many.test,20",
	"--mx-host=many.test,m3.many.test,30",
	"--host-record=m1.many.test,127.0.0.11",
	"--host-record=m1.many.test,127.0.0.12",
	"--host-record=m2.many.test,127.0.0.13",
	"--host-record=m3.many.test,127.0.0.14",
};

static int group_setup(void **state)
{
	(void)state;
	if (mkdtemp(test_dir) == NULL)
		return -1;
	if (access(DNSMASQ, X_OK) != 0) {
		fprintf(stderr, "dns_test: %s missing: resolver tests are skipped\n", DNSMASQ);
		return 0;
	}
	dnsmasq_port = free_udp_port();
	dead_port = free_udp_port();
	while (dead_port == dnsmasq_port)
		dead_port = free_udp_port();
	if (dnsmasq_port == 0 || dead_port == 0)
		return -1;
	snprintf(servers, sizeof(servers), "%s:%u", DNS_ADDR, dnsmasq_port);
	snprintf(dead_servers, sizeof(dead_servers), "%s:%u", DNS_ADDR, dead_port);

	char port_arg[32], listen_arg[64], pid_arg[128];
	snprintf(port_arg, sizeof(port_arg), "--port=%u", dnsmasq_port);
	snprintf(listen_arg, sizeof(listen_arg), "--listen-address=%s", DNS_ADDR);
	snprintf(pid_arg, sizeof(pid_arg), "--pid-file=%s/dnsmasq.pid", test_dir);
	const char *argv[64];
	size_t n = 0;
	argv[n++] = DNSMASQ;
	argv[n++] = "--keep-in-foreground";
	argv[n++] = "--conf-file=/dev/null";
	argv[n++] = "--no-resolv";
	argv[n++] = "--no-hosts";
	argv[n++] = "--no-poll";
	argv[n++] = "--bind-interfaces";
	argv[n++] = "--local=/test/";
	argv[n++] = "--log-facility=/dev/null";
	argv[n++] = listen_arg;
	argv[n++] = port_arg;
	argv[n++] = pid_arg;
	for (size_t i = 0; i < sizeof(dnsmasq_records) / sizeof(dnsmasq_records[0]); i++)
		argv[n++] = dnsmasq_records[i];
	argv[n] = NULL;

	dnsmasq_pid = fork();
	if (dnsmasq_pid < 0)
		return -1;
	if (dnsmasq_pid == 0) {
		/* dnsmasq goes with us if this test crashes. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		execv(DNSMASQ, (char *const *)argv);
		_exit(127);
	}
	/* Ready when its UDP socket is bound (at most 5 s). */
	for (int i = 0; i < 500 && !udp_port_busy(dnsmasq_port); i++) {
		int status;
		if (waitpid(dnsmasq_pid, &status, WNOHANG) == dnsmasq_pid) {
			fprintf(stderr, "dns_test: dnsmasq exited at start\n");
			dnsmasq_pid = -1;
			return -1;
		}
		usleep(10000);
	}
	return udp_port_busy(dnsmasq_port) ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	if (dnsmasq_pid > 0) {
		int status;
		kill(dnsmasq_pid, SIGTERM);
		waitpid(dnsmasq_pid, &status, 0);
		dnsmasq_pid = -1;
	}
	struct buf p = BUF_INIT;
	buf_printf(&p, "%s/dnsmasq.pid", test_dir);
	(void)unlink(buf_cstr(&p));
	buf_deinit(&p);
	return rmdir(test_dir);
}

#define NEED_DNSMASQ()                                                  \
	do {                                                            \
		if (dnsmasq_pid <= 0) {                                 \
			fprintf(stderr, "dnsmasq not available\n");     \
			skip();                                         \
		}                                                       \
	} while (0)

/* What a test keeps of a result (the result is freed after cb). */
struct got {
	bool called;
	unsigned calls;
	enum dns_status status;
	bool null_mx, implicit;
	char error[512];
	char dsn[16];
	struct buf hosts; /* "host(pref)=addr:port,addr:port host2..." */
	size_t n_addrs;
	struct event_base *base;
	bool in_call; /* set around dns_resolve_mx: cb must not run then */
};

static void got_cb(void *ctx, const struct dns_mx_result *res)
{
	struct got *g = ctx;
	assert_false(g->in_call);
	g->called = true;
	g->calls++;
	g->status = res->status;
	g->null_mx = res->null_mx;
	g->implicit = res->implicit;
	snprintf(g->error, sizeof(g->error), "%s", res->error != NULL ? res->error : "");
	snprintf(g->dsn, sizeof(g->dsn), "%s", res->dsn != NULL ? res->dsn : "");
	for (size_t i = 0; i < res->n_hosts; i++) {
		const struct dns_mx_host *h = &res->hosts[i];
		buf_printf(&g->hosts, "%s%s(%u)=", i > 0 ? " " : "", h->host, h->preference);
		for (size_t j = 0; j < h->n_addrs; j++) {
			char a[INET6_ADDRSTRLEN];
			unsigned port;
			if (h->addrs[j].ss_family == AF_INET) {
				const struct sockaddr_in *s = (const void *)&h->addrs[j];
				inet_ntop(AF_INET, &s->sin_addr, a, sizeof(a));
				port = ntohs(s->sin_port);
				buf_printf(&g->hosts, "%s%s:%u", j > 0 ? "," : "", a, port);
			} else {
				const struct sockaddr_in6 *s = (const void *)&h->addrs[j];
				inet_ntop(AF_INET6, &s->sin6_addr, a, sizeof(a));
				port = ntohs(s->sin6_port);
				buf_printf(&g->hosts, "%s[%s]:%u", j > 0 ? "," : "", a, port);
			}
			g->n_addrs++;
		}
	}
	event_base_loopbreak(g->base);
}

static void loop_guard_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	event_base_loopbreak(arg);
}

/* Run the loop until the callback ran or 10 s passed. */
static void run_until(struct event_base *base, struct got *g)
{
	struct event *guard = evtimer_new(base, loop_guard_cb, base);
	struct timeval tv = { 10, 0 };
	evtimer_add(guard, &tv);
	while (!g->called) {
		event_base_dispatch(base);
		if (!evtimer_pending(guard, NULL))
			break;
	}
	event_free(guard);
}

static void resolve(const char *srv, unsigned limit, const char *domain, bool no_mx,
		    unsigned port, bool v4, bool v6, struct got *g)
{
	const char *error = NULL;
	struct event_base *base = event_base_new();
	struct dns *dns = dns_new(base, srv, 300, 2, &error);
	assert_non_null(dns);
	dns_set_mx_address_limit(dns, limit);
	memset(g, 0, sizeof(*g));
	buf_init(&g->hosts);
	g->base = base;
	g->in_call = true;
	struct dns_query *q = dns_resolve_mx(dns, domain, no_mx, port, v4, v6, got_cb, g);
	g->in_call = false;
	assert_non_null(q);
	run_until(base, g);
	assert_true(g->called);
	dns_free(&dns);
	assert_null(dns);
	event_base_free(base);
}

static const struct {
	const char *name;
	const char *domain;
	bool no_mx;
	unsigned port;
	bool v4, v6;
	unsigned limit;
	enum dns_status status;
	bool implicit, null_mx;
	const char *hosts; /* exact, or NULL when alt_hosts applies */
	const char *error;
	const char *dsn;
} resolve_rows[] = {
	{ "MX order by preference", "machin.test", false, 25, true, false, 5, DNS_OK, false,
	  false, "mx1.machin.test(10)=127.0.0.3:25 mx2.machin.test(20)=127.0.0.4:25", "", "" },
	{ "trailing dot and case", "Machin.TEST.", false, 25, true, false, 5, DNS_OK, false,
	  false, "mx1.machin.test(10)=127.0.0.3:25 mx2.machin.test(20)=127.0.0.4:25", "", "" },
	{ "port is put into addresses", "machin.test", false, 2525, true, false, 5, DNS_OK,
	  false, false, "mx1.machin.test(10)=127.0.0.3:2525 mx2.machin.test(20)=127.0.0.4:2525",
	  "", "" },
	{ "implicit MX", "implicit.test", false, 25, true, false, 5, DNS_OK, true, false,
	  "implicit.test(0)=127.0.0.7:25", "", "" },
	{ "null MX", "null.test", false, 25, true, false, 5, DNS_PERMFAIL, false, true, "",
	  "Domain null.test does not accept mail (nullMX)", "5.1.0" },
	{ "NXDOMAIN", "nxdomain.test", false, 25, true, false, 5, DNS_NOTFOUND, true, false, "",
	  "Host or domain name not found. Name service error for name=nxdomain.test type=A: "
	  "Host not found",
	  "5.4.4" },
	{ "NXDOMAIN, IPv4 and IPv6", "nxdomain.test", false, 25, true, true, 5, DNS_NOTFOUND,
	  true, false, "",
	  "Host or domain name not found. Name service error for name=nxdomain.test type=A: "
	  "Host not found",
	  "5.4.4" },
	{ "[host] skips the MX lookup", "mx1.machin.test", true, 2526, true, false, 5, DNS_OK,
	  false, false, "mx1.machin.test(0)=127.0.0.3:2526", "", "" },
	{ "[domain] without address", "machin.test", true, 25, true, false, 5, DNS_NOTFOUND,
	  false, false, "",
	  "Host or domain name not found. Name service error for name=machin.test type=A: "
	  "Host found but no data record of requested type",
	  "5.4.4" },
	{ "address literal, no lookup", "127.0.0.1", true, 2525, true, true, 5, DNS_OK, false,
	  false, "127.0.0.1(0)=127.0.0.1:2525", "", "" },
	{ "IPv6 literal", "::1", true, 25, true, true, 5, DNS_OK, false, false,
	  "::1(0)=[::1]:25", "", "" },
	{ "IPv4 and IPv6", "v6.test", false, 25, true, true, 5, DNS_OK, false, false,
	  "mx.v6.test(10)=127.0.0.8:25,[::1]:25", "", "" },
	{ "IPv6 only", "v6.test", false, 25, false, true, 5, DNS_OK, false, false,
	  "mx.v6.test(10)=[::1]:25", "", "" },
	{ "MX host without address skipped", "partial.test", false, 25, true, false, 5, DNS_OK,
	  false, false, "ok.partial.test(20)=127.0.0.10:25", "", "" },
	{ "every MX host without address", "allbad.test", false, 25, true, false, 5,
	  DNS_NOTFOUND, false, false, "",
	  "Host or domain name not found. Name service error for name=nohost.allbad.test "
	  "type=A: Host not found",
	  "5.4.4" },
	/* m1 has two addresses: limit 3 keeps m1 (2) and m2 (1), drops m3. */
	{ "address limit 3", "many.test", false, 25, true, false, 3, DNS_OK, false, false,
	  NULL, "", "" },
	{ "address limit 0 = none", "many.test", false, 25, true, false, 0, DNS_OK, false,
	  false, NULL, "", "" },
	{ "malformed name", "bad name.test", false, 25, true, false, 5, DNS_PERMFAIL, false,
	  false, "",
	  "Host or domain name not found. Name service error for name=bad name.test type=MX: "
	  "Malformed domain name",
	  "5.4.4" },
};

static void test_resolve(void **state)
{
	(void)state;
	NEED_DNSMASQ();
	for (size_t r = 0; r < sizeof(resolve_rows) / sizeof(resolve_rows[0]); r++) {
		struct got g;
		resolve(servers, resolve_rows[r].limit, resolve_rows[r].domain,
			resolve_rows[r].no_mx, resolve_rows[r].port, resolve_rows[r].v4,
			resolve_rows[r].v6, &g);
		const char *name = resolve_rows[r].name;
		if (g.status != resolve_rows[r].status)
			fail_msg("%s: status %d want %d (%s)", name, g.status,
				 resolve_rows[r].status, g.error);
		if (g.calls != 1)
			fail_msg("%s: %u calls", name, g.calls);
		if (g.implicit != resolve_rows[r].implicit || g.null_mx != resolve_rows[r].null_mx)
			fail_msg("%s: implicit %d null_mx %d", name, g.implicit, g.null_mx);
		if (strcmp(g.error, resolve_rows[r].error) != 0)
			fail_msg("%s: error \"%s\"", name, g.error);
		if (strcmp(g.dsn, resolve_rows[r].dsn) != 0)
			fail_msg("%s: dsn \"%s\"", name, g.dsn);
		const char *hosts = buf_cstr(&g.hosts);
		if (resolve_rows[r].hosts != NULL) {
			if (strcmp(hosts, resolve_rows[r].hosts) != 0)
				fail_msg("%s: hosts \"%s\"", name, hosts);
		} else if (resolve_rows[r].limit == 3) {
			/* m1's two addresses in either order, then m2. */
			if (g.n_addrs != 3 || strncmp(hosts, "m1.many.test(10)=", 17) != 0 ||
			    strstr(hosts, " m2.many.test(20)=127.0.0.13:25") == NULL ||
			    strstr(hosts, "m3.many.test") != NULL)
				fail_msg("%s: hosts \"%s\"", name, hosts);
		} else {
			if (g.n_addrs != 4 || strstr(hosts, "m3.many.test(30)=127.0.0.14:25") == NULL)
				fail_msg("%s: hosts \"%s\"", name, hosts);
		}
		buf_deinit(&g.hosts);
	}
}

/* Equal preferences: both hosts present, both orders seen over runs. */
static void test_resolve_equal_preferences(void **state)
{
	(void)state;
	NEED_DNSMASQ();
	bool seen_a_first = false, seen_b_first = false;
	for (int i = 0; i < 40 && !(seen_a_first && seen_b_first); i++) {
		struct got g;
		resolve(servers, 5, "egal.test", false, 25, true, false, &g);
		assert_int_equal(g.status, DNS_OK);
		const char *h = buf_cstr(&g.hosts);
		if (strcmp(h, "a.egal.test(10)=127.0.0.5:25 b.egal.test(10)=127.0.0.6:25") == 0)
			seen_a_first = true;
		else if (strcmp(h, "b.egal.test(10)=127.0.0.6:25 a.egal.test(10)=127.0.0.5:25") == 0)
			seen_b_first = true;
		else
			fail_msg("hosts \"%s\"", h);
		buf_deinit(&g.hosts);
	}
	assert_true(seen_a_first && seen_b_first);
}

/* A server that does not answer: TEMPFAIL with Postfix's text. */
static void test_resolve_dead_server(void **state)
{
	(void)state;
	NEED_DNSMASQ();
	struct got g;
	resolve(dead_servers, 5, "machin.test", false, 25, true, false, &g);
	assert_int_equal(g.status, DNS_TEMPFAIL);
	assert_string_equal(g.error, "Host or domain name not found. Name service error for "
				     "name=machin.test type=MX: Host not found, try again");
	assert_string_equal(g.dsn, "4.4.3");
	assert_int_equal(g.n_addrs, 0);
	buf_deinit(&g.hosts);

	resolve(dead_servers, 5, "mx1.machin.test", true, 25, true, true, &g);
	assert_int_equal(g.status, DNS_TEMPFAIL);
	assert_string_equal(g.error, "Host or domain name not found. Name service error for "
				     "name=mx1.machin.test type=A: Host not found, try again");
	buf_deinit(&g.hosts);
}

static void never_cb(void *ctx, const struct dns_mx_result *res)
{
	(void)res;
	bool *called = ctx;
	*called = true;
}

/* Cancel at every stage; the callback never runs and nothing leaks
 * (checked by ASan/valgrind runs). */
static void test_cancel(void **state)
{
	(void)state;
	NEED_DNSMASQ();
	const char *error = NULL;
	struct event_base *base = event_base_new();
	struct dns *dns = dns_new(base, servers, 300, 2, &error);
	assert_non_null(dns);

	bool called = false;
	/* Cancelled before c-ares answered the MX query. */
	struct dns_query *q1 = dns_resolve_mx(dns, "machin.test", false, 25, true, true,
					      never_cb, &called);
	/* Cancelled with its result already scheduled (address literal). */
	struct dns_query *q2 = dns_resolve_mx(dns, "127.0.0.1", true, 25, true, false,
					      never_cb, &called);
	/* Cancelled with the error already decided (bad name). */
	struct dns_query *q3 = dns_resolve_mx(dns, "bad name", false, 25, true, false,
					      never_cb, &called);
	dns_cancel(&q1);
	dns_cancel(&q2);
	dns_cancel(&q3);
	assert_null(q1);
	dns_cancel(&q1); /* NULL: no-op */

	/* Cancelled with address lookups in flight ("[host]": no MX). */
	struct dns_query *q4 = dns_resolve_mx(dns, "mx1.machin.test", true, 25, true, true,
					      never_cb, &called);
	dns_cancel(&q4);
	assert_null(q4);

	/* A witness query tells when the loop has processed the answers. */
	struct got g;
	memset(&g, 0, sizeof(g));
	buf_init(&g.hosts);
	g.base = base;
	(void)dns_resolve_mx(dns, "implicit.test", false, 25, true, false, got_cb, &g);
	run_until(base, &g);
	assert_true(g.called);
	assert_int_equal(g.status, DNS_OK);
	buf_deinit(&g.hosts);

	/* Let c-ares finish the cancelled queries' lookups. */
	struct timeval tv = { 0, 300000 };
	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
	assert_false(called);

	/* dns_free with queries in flight: no callback either. */
	(void)dns_resolve_mx(dns, "machin.test", false, 25, true, true, never_cb, &called);
	(void)dns_resolve_mx(dns, "127.0.0.1", true, 25, true, false, never_cb, &called);
	dns_free(&dns);
	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
	assert_false(called);
	event_base_free(base);
}

static void test_bad_servers(void **state)
{
	(void)state;
	const char *error = NULL;
	struct event_base *base = event_base_new();
	struct dns *dns = dns_new(base, "not an address:x", 300, 1, &error);
	assert_null(dns);
	assert_non_null(error);
	dns = dns_new(base, "127.0.0.9:53, [::1]:5353", 300, 1, &error);
	assert_non_null(dns);
	dns_free(&dns);
	dns = dns_new(base, "", 300, 1, &error); /* system configuration */
	assert_non_null(dns);
	dns_free(&dns);
	dns_free(&dns); /* NULL: no-op */
	event_base_free(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mx_sort),
		cmocka_unit_test(test_mx_sort_both_orders),
		cmocka_unit_test(test_name_valid),
		cmocka_unit_test(test_mx_reply),
		cmocka_unit_test(test_bad_servers),
		cmocka_unit_test(test_resolve),
		cmocka_unit_test(test_resolve_equal_preferences),
		cmocka_unit_test(test_resolve_dead_server),
		cmocka_unit_test(test_cancel),
	};
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
