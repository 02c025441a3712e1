/* pickup.c - the pickup role: pickup_main (see mail/role.h, pickup_int.h).
 *
 * Runs as mail_owner.  Scans QDIR/maildrop at start, whenever something is
 * written to the FIFO QDIR/public/pickup (sendmail writes "W\n" after each
 * file), and every PICKUP_SCAN_INTERVAL seconds in case a wake-up was lost
 * (FIFO full, facteur stopped while mail was dropped).  A simple poll(2)
 * loop is enough: the work is file I/O, one file at a time.
 *
 * The FIFO is opened O_RDWR so that it never reports end-of-file when the
 * last writer goes away (Linux allows O_RDWR on a FIFO; it also keeps
 * writers from getting ENXIO while we run).
 *
 * Signals: SIGTERM/SIGINT stop after the current file; SIGHUP (the master
 * started a successor) stops taking work and exits the same way, since a
 * scan is short.
 */
#include "pickup/pickup_int.h"

#include "lib/buf.h"
#include "lib/log.h"
#include "mail/role.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PICKUP_SCAN_INTERVAL 60

static volatile sig_atomic_t pickup_stop;

static void pickup_on_signal(int sig)
{
	(void)sig;
	pickup_stop = 1;
}

static int pickup_fifo_open(const char *queue_dir)
{
	struct buf path = BUF_INIT;
	buf_printf(&path, "%s/public/pickup", queue_dir);
	int fd = open(buf_cstr(&path), O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		log_warning("open %s: %s (scanning every %d s only)", buf_cstr(&path),
			    strerror(errno), PICKUP_SCAN_INTERVAL);
	buf_deinit(&path);
	return fd;
}

/* Read and discard what the FIFO holds: any content means "scan". */
static void pickup_fifo_drain(int fd)
{
	char junk[512];
	while (read(fd, junk, sizeof(junk)) > 0)
		;
}

int pickup_main(const struct role_env *env)
{
	const char *error = NULL;
	struct pickup p;

	log_set_role("pickup");
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = pickup_on_signal;
	sigemptyset(&sa.sa_mask);
	(void)sigaction(SIGTERM, &sa, NULL);
	(void)sigaction(SIGINT, &sa, NULL);
	(void)sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	(void)sigaction(SIGPIPE, &sa, NULL);

	if (role_drop_privileges(env, &error) < 0) {
		log_error("drop privileges: %s: %s", error, strerror(errno));
		return 1;
	}
	if (pickup_init(&p, env->cfg, env->queue_dir, &error) < 0) {
		log_error("%s", error != NULL ? error : "cannot initialize");
		return 1;
	}
	int fifo = pickup_fifo_open(env->queue_dir);
	time_t last_scan = 0;
	bool want_scan = true;

	while (!pickup_stop) {
		time_t now = time(NULL);
		if (want_scan || now - last_scan >= PICKUP_SCAN_INTERVAL) {
			(void)pickup_scan(&p, now);
			last_scan = now;
			want_scan = false;
			continue;
		}
		struct pollfd pfd = { .fd = fifo, .events = POLLIN, .revents = 0 };
		long wait_s = PICKUP_SCAN_INTERVAL - (long)(now - last_scan);
		if (wait_s < 1)
			wait_s = 1;
		int n = poll(&pfd, fifo >= 0 ? 1 : 0, (int)(wait_s * 1000));
		if (n < 0 && errno != EINTR) {
			log_warning("poll: %s", strerror(errno));
			(void)sleep(1);
		}
		if (n > 0 && (pfd.revents & POLLIN) != 0) {
			pickup_fifo_drain(fifo);
			want_scan = true;
		}
	}
	if (fifo >= 0)
		(void)close(fifo);
	pickup_deinit(&p);
	return 0;
}
