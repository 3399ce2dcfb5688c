/* rd_net.c - small socket helpers.
 *
 * Deadlines: every call with a timeout computes one absolute deadline on the monotonic
 * clock at entry and waits only for what is left of it, so EINTR and partial transfers
 * never stretch the total wait. Sends and receives use MSG_DONTWAIT and poll() on EAGAIN,
 * which makes the deadline hold on blocking sockets too without touching the socket's
 * O_NONBLOCK flag (shared with any other thread using the same socket).
 */
#include "rd_net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "rd_err.h"

/* Largest count handed to one sendfile()/pread() call. */
#define RD_NET_CHUNK (1u << 20)

/* ---- clocks and deadlines ------------------------------------------------------------ */

uint64_t rd_now_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t rd_now_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t rd_now_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int rd_cond_init_mono(pthread_cond_t *cv)
{
	pthread_condattr_t ca;
	int rc;

	if (pthread_condattr_init(&ca) != 0)
		return RD_ERR_SYSTEM;
	rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (rc == 0)
		rc = pthread_cond_init(cv, &ca);
	pthread_condattr_destroy(&ca);
	if (rc != 0) {
		errno = rc;
		return RD_ERR_SYSTEM;
	}
	return 0;
}

int rd_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mtx, uint64_t deadline_ms)
{
	struct timespec ts;

	if (rd_now_mono_ms() >= deadline_ms)
		return RD_ERR_TIMEOUT;
	ts.tv_sec = (time_t)(deadline_ms / 1000u);
	ts.tv_nsec = (long)(deadline_ms % 1000u) * 1000000L;
	return pthread_cond_timedwait(cv, mtx, &ts) == ETIMEDOUT ? RD_ERR_TIMEOUT : 0;
}

static uint64_t deadline_from(int timeout_ms)
{
	return timeout_ms < 0 ? 0 : rd_now_mono_ms() + (uint64_t)timeout_ms;
}

/* Milliseconds left until deadline for poll(): -1 = forever (timeout_ms < 0), 0 = spent. */
static int remaining_ms(uint64_t deadline, int timeout_ms)
{
	uint64_t now;

	if (timeout_ms < 0)
		return -1;
	now = rd_now_mono_ms();
	if (now >= deadline)
		return 0;
	if (deadline - now > (uint64_t)INT_MAX)
		return INT_MAX;
	return (int)(deadline - now);
}

/* ---- address parsing ----------------------------------------------------------------- */

int rd_net_parse_port(const char *s, uint16_t *port)
{
	unsigned long v = 0;
	size_t i;

	if (port != NULL)
		*port = 0;
	if (s == NULL || port == NULL)
		return RD_ERR_INVAL;
	if (s[0] == '\0')
		return RD_ERR_INVAL;
	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] < '0' || s[i] > '9')
			return RD_ERR_INVAL;
		v = v * 10 + (unsigned long)(s[i] - '0');
		if (v > 65535)
			return RD_ERR_INVAL;
	}
	if (v == 0)
		return RD_ERR_INVAL;
	*port = (uint16_t)v;
	return 0;
}

/* A host part may not carry blanks, controls or characters that belong to the syntax. */
static int host_chars_ok(const char *h, size_t n, int v6)
{
	size_t i;
	unsigned char c;

	for (i = 0; i < n; i++) {
		c = (unsigned char)h[i];
		if (c <= 0x20 || c >= 0x7F || c == '[' || c == ']' || c == '/' || c == '\\')
			return 0;
		if (c == ':' && !v6)
			return 0;
	}
	return 1;
}

static int copy_host(const char *h, size_t n, char *host, size_t hcap)
{
	if (n + 1 > hcap)
		return RD_ERR_ADDR; /* never hand back a truncated, different host name */
	memcpy(host, h, n);
	host[n] = '\0';
	return 0;
}

int rd_net_parse_hostport(const char *s, uint16_t default_port, char *host, size_t hcap,
			  uint16_t *port)
{
	const char *h, *colon, *close, *ps = NULL;
	size_t hlen;
	int v6 = 0, rc;
	struct in6_addr a6;
	char tmp[INET6_ADDRSTRLEN];

	if (host != NULL && hcap > 0)
		host[0] = '\0';
	if (port != NULL)
		*port = 0;
	if (s == NULL || host == NULL || hcap == 0 || port == NULL)
		return RD_ERR_INVAL;
	if (s[0] == '\0')
		return RD_ERR_ADDR;

	if (s[0] == '[') {
		close = strchr(s, ']');
		if (close == NULL)
			return RD_ERR_ADDR;
		h = s + 1;
		hlen = (size_t)(close - h);
		if (hlen == 0 || strchr(h, ':') == NULL || strchr(h, ':') > close)
			return RD_ERR_ADDR;
		v6 = 1;
		if (close[1] == ':')
			ps = close + 2;
		else if (close[1] != '\0')
			return RD_ERR_ADDR;
	} else {
		colon = strchr(s, ':');
		if (colon != NULL && strchr(colon + 1, ':') != NULL) {
			/* Several colons without brackets: only a bare IPv6 address, no port. */
			if (strlen(s) >= sizeof(tmp) || inet_pton(AF_INET6, s, &a6) != 1)
				return RD_ERR_ADDR;
			h = s;
			hlen = strlen(s);
			v6 = 1;
		} else if (colon != NULL) {
			h = s;
			hlen = (size_t)(colon - s);
			ps = colon + 1;
		} else {
			h = s;
			hlen = strlen(s);
		}
	}

	if (ps != NULL) {
		if (rd_net_parse_port(ps, port) != 0)
			return RD_ERR_ADDR;
	} else {
		*port = default_port;
	}
	if (hlen == 0) {
		h = RD_DEFAULT_HOST;
		hlen = strlen(h);
	} else if (!host_chars_ok(h, hlen, v6)) {
		*port = 0;
		return RD_ERR_ADDR;
	}
	if ((rc = copy_host(h, hlen, host, hcap)) != 0) {
		*port = 0;
		return rc;
	}
	return 0;
}

/* ---- socket addresses as text -------------------------------------------------------- */

static int addr_text(const struct sockaddr_storage *ss, char *ip, size_t ipcap, uint16_t *port)
{
	char buf[INET6_ADDRSTRLEN];
	const struct sockaddr_in *sin;
	const struct sockaddr_in6 *sin6;
	struct in_addr v4;

	buf[0] = '\0';
	if (ss->ss_family == AF_INET) {
		sin = (const struct sockaddr_in *)ss;
		if (inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof(buf)) == NULL)
			return RD_ERR_SYSTEM;
		if (port != NULL)
			*port = ntohs(sin->sin_port);
	} else if (ss->ss_family == AF_INET6) {
		sin6 = (const struct sockaddr_in6 *)ss;
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			/* A v4 client on a dual-stack listener reads better as plain v4. */
			memcpy(&v4, &sin6->sin6_addr.s6_addr[12], sizeof(v4));
			if (inet_ntop(AF_INET, &v4, buf, sizeof(buf)) == NULL)
				return RD_ERR_SYSTEM;
		} else if (inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof(buf)) == NULL) {
			return RD_ERR_SYSTEM;
		}
		if (port != NULL)
			*port = ntohs(sin6->sin6_port);
	} else {
		return RD_ERR_ADDR;
	}
	if (ip != NULL && ipcap > 0) {
		if (strlen(buf) + 1 > ipcap)
			return RD_ERR_INVAL;
		memcpy(ip, buf, strlen(buf) + 1);
	}
	return 0;
}

static void clear_addr_out(char *ip, size_t ipcap, uint16_t *port)
{
	if (ip != NULL && ipcap > 0)
		ip[0] = '\0';
	if (port != NULL)
		*port = 0;
}

int rd_net_peer(int fd, char *ip, size_t ipcap, uint16_t *port)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int rc;

	clear_addr_out(ip, ipcap, port);
	memset(&ss, 0, sizeof(ss));
	if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0)
		return RD_ERR_SYSTEM;
	if ((rc = addr_text(&ss, ip, ipcap, port)) != 0)
		clear_addr_out(ip, ipcap, port);
	return rc;
}

int rd_net_local(int fd, char *ip, size_t ipcap, uint16_t *port)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int rc;

	clear_addr_out(ip, ipcap, port);
	memset(&ss, 0, sizeof(ss));
	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
		return RD_ERR_SYSTEM;
	if ((rc = addr_text(&ss, ip, ipcap, port)) != 0)
		clear_addr_out(ip, ipcap, port);
	return rc;
}

/* ---- socket options ------------------------------------------------------------------ */

int rd_net_set_nodelay(int fd, int on)
{
	int v = on ? 1 : 0;

	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, sizeof(v)) != 0)
		return RD_ERR_SYSTEM;
	return 0;
}

int rd_net_set_nonblock(int fd, int on)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return RD_ERR_SYSTEM;
	fl = on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
	if (fcntl(fd, F_SETFL, fl) != 0)
		return RD_ERR_SYSTEM;
	return 0;
}

int rd_net_set_bufs(int fd, int sndbuf, int rcvbuf)
{
	if (sndbuf < 0 || rcvbuf < 0)
		return RD_ERR_INVAL;
	if (sndbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)) != 0)
		return RD_ERR_SYSTEM;
	if (rcvbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)) != 0)
		return RD_ERR_SYSTEM;
	return 0;
}

static pthread_once_t sigpipe_once = PTHREAD_ONCE_INIT;

static void sigpipe_ignore_now(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigemptyset(&sa.sa_mask);
	(void)sigaction(SIGPIPE, &sa, NULL);
}

void rd_net_ignore_sigpipe(void)
{
	(void)pthread_once(&sigpipe_once, sigpipe_ignore_now);
}

/* ---- listen / accept / connect ------------------------------------------------------- */

int rd_net_listen(const char *host, uint16_t port, int backlog, int *fd, uint16_t *bound)
{
	struct addrinfo hints, *res = NULL, *ai;
	char pstr[8];
	int s = -1, one = 1, rc, saved = 0, in_use = 0;

	if (fd != NULL)
		*fd = -1;
	if (bound != NULL)
		*bound = 0;
	if (fd == NULL)
		return RD_ERR_INVAL;
	if (backlog <= 0)
		backlog = SOMAXCONN;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(pstr, sizeof(pstr), "%u", (unsigned)port);
	if (getaddrinfo(host, pstr, &hints, &res) != 0 || res == NULL) {
		rc = RD_ERR_ADDR;
		goto out;
	}

	rc = RD_ERR_ADDR;
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		s = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (s < 0) {
			saved = errno;
			rc = RD_ERR_SYSTEM;
			continue;
		}
		if (setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0 &&
		    bind(s, ai->ai_addr, ai->ai_addrlen) == 0 && listen(s, backlog) == 0)
			break;
		saved = errno;
		if (saved == EADDRINUSE)
			in_use = 1;
		rc = RD_ERR_SYSTEM;
		close(s);
		s = -1;
	}
	if (s < 0) {
		if (in_use)
			rc = RD_ERR_ADDR_IN_USE;
		goto out;
	}
	if (bound != NULL && (rc = rd_net_local(s, NULL, 0, bound)) != 0) {
		saved = errno;
		goto out;
	}
	*fd = s;
	s = -1;
	rc = 0;
out:
	if (s >= 0)
		close(s);
	if (res != NULL)
		freeaddrinfo(res);
	if (rc == RD_ERR_SYSTEM)
		errno = saved;
	return rc;
}

int rd_net_accept(int lfd, int *fd, char *ip, size_t ipcap, uint16_t *port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int s;

	if (fd != NULL)
		*fd = -1;
	clear_addr_out(ip, ipcap, port);
	if (fd == NULL)
		return RD_ERR_INVAL;
	for (;;) {
		len = sizeof(ss);
		memset(&ss, 0, sizeof(ss));
		s = accept4(lfd, (struct sockaddr *)&ss, &len, SOCK_CLOEXEC);
		if (s >= 0)
			break;
		/* A connection reset while queued is the peer's business, not ours. */
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		return RD_ERR_SYSTEM;
	}
	/* The peer text is informational: a connection is never refused because of it. */
	if (addr_text(&ss, ip, ipcap, port) != 0)
		clear_addr_out(ip, ipcap, port);
	*fd = s;
	return 0;
}

static int connect_errno_rc(int err)
{
	errno = err;
	if (err == ECONNREFUSED)
		return RD_ERR_REFUSED;
	if (err == ETIMEDOUT)
		return RD_ERR_TIMEOUT;
	return RD_ERR_SYSTEM;
}

/* One non-blocking connect attempt to one address, waiting up to the deadline.
 * On success *out is a connected, still non-blocking socket. */
static int connect_one(const struct addrinfo *ai, uint64_t deadline, int timeout_ms, int *out)
{
	int s, rc, err = 0, saved = 0;
	socklen_t elen = sizeof(err);

	*out = -1;
	s = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
	if (s < 0)
		return RD_ERR_SYSTEM;
	if (connect(s, ai->ai_addr, ai->ai_addrlen) == 0)
		goto done;
	/* After EINTR a non-blocking connect carries on in the background, like EINPROGRESS. */
	if (errno != EINPROGRESS && errno != EINTR) {
		err = errno;
		goto failed;
	}
	rc = rd_net_wait(s, POLLOUT, remaining_ms(deadline, timeout_ms));
	if (rc != 0) {
		saved = errno;
		close(s);
		errno = saved;
		return rc;
	}
	if (getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &elen) != 0)
		err = errno;
	if (err != 0)
		goto failed;
done:
	*out = s;
	return 0;
failed:
	close(s);
	return connect_errno_rc(err);
}

int rd_net_connect(const char *host, uint16_t port, int timeout_ms, int *fd)
{
	struct addrinfo hints, *res = NULL, *ai;
	char pstr[8];
	uint64_t deadline = deadline_from(timeout_ms);
	int s = -1, rc, saved = 0;

	if (fd != NULL)
		*fd = -1;
	if (fd == NULL || port == 0)
		return RD_ERR_INVAL;
	if (host == NULL || host[0] == '\0')
		host = RD_DEFAULT_HOST;

	/* Name resolution is not bounded by timeout_ms (getaddrinfo has no deadline). */
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	snprintf(pstr, sizeof(pstr), "%u", (unsigned)port);
	if (getaddrinfo(host, pstr, &hints, &res) != 0 || res == NULL) {
		rc = RD_ERR_ADDR;
		goto out;
	}

	rc = RD_ERR_ADDR;
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		rc = connect_one(ai, deadline, timeout_ms, &s);
		saved = errno;
		if (rc == 0 || rc == RD_ERR_TIMEOUT)
			break; /* on timeout the whole deadline is spent */
	}
	if (rc != 0)
		goto out;
	if ((rc = rd_net_set_nonblock(s, 0)) != 0 || (rc = rd_net_set_nodelay(s, 1)) != 0) {
		saved = errno;
		goto out;
	}
	*fd = s;
	s = -1;
	rc = 0;
out:
	if (s >= 0)
		close(s);
	if (res != NULL)
		freeaddrinfo(res);
	if (rc == RD_ERR_SYSTEM)
		errno = saved;
	return rc;
}

int rd_net_connect_start(const char *host, uint16_t port, int *fd, int *done)
{
	union {
		struct sockaddr sa;
		struct sockaddr_in in4;
		struct sockaddr_in6 in6;
	} a;
	socklen_t alen;
	int s, err;

	if (fd != NULL)
		*fd = -1;
	if (done != NULL)
		*done = 0;
	if (host == NULL || fd == NULL || done == NULL || port == 0)
		return RD_ERR_INVAL;
	memset(&a, 0, sizeof(a));
	if (inet_pton(AF_INET, host, &a.in4.sin_addr) == 1) {
		a.in4.sin_family = AF_INET;
		a.in4.sin_port = htons(port);
		alen = sizeof(a.in4);
	} else if (inet_pton(AF_INET6, host, &a.in6.sin6_addr) == 1) {
		a.in6.sin6_family = AF_INET6;
		a.in6.sin6_port = htons(port);
		alen = sizeof(a.in6);
	} else {
		return RD_ERR_ADDR;
	}
	s = socket(a.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s < 0)
		return RD_ERR_SYSTEM;
	(void)rd_net_set_nodelay(s, 1);
	if (connect(s, &a.sa, alen) == 0) {
		*done = 1;
	} else if (errno != EINPROGRESS && errno != EINTR) {
		err = errno;
		close(s);
		return connect_errno_rc(err);
	}
	*fd = s;
	return 0;
}

int rd_net_connect_finish(int fd)
{
	int err = 0;
	socklen_t elen = sizeof(err);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0)
		return RD_ERR_SYSTEM;
	return err == 0 ? 0 : connect_errno_rc(err);
}

/* ---- waiting and transfers ----------------------------------------------------------- */

int rd_net_wait(int fd, short events, int timeout_ms)
{
	struct pollfd pfd;
	uint64_t deadline = deadline_from(timeout_ms);
	int r;

	if (fd < 0)
		return RD_ERR_INVAL; /* poll() would skip it and wait out the whole timeout */
	for (;;) {
		pfd.fd = fd;
		pfd.events = events;
		pfd.revents = 0;
		r = poll(&pfd, 1, remaining_ms(deadline, timeout_ms));
		if (r > 0) {
			if (pfd.revents & POLLNVAL) {
				errno = EBADF;
				return RD_ERR_SYSTEM;
			}
			/* POLLERR / POLLHUP count as ready: the next I/O call reports them. */
			return 0;
		}
		if (r == 0)
			return RD_ERR_TIMEOUT;
		if (errno != EINTR)
			return RD_ERR_SYSTEM;
	}
}

static int closed_errno(int e)
{
	return e == EPIPE || e == ECONNRESET || e == ENOTCONN || e == ESHUTDOWN;
}

int rd_net_write_all(int fd, const void *p, size_t n, int timeout_ms)
{
	const char *b = p;
	uint64_t deadline = deadline_from(timeout_ms);
	size_t off = 0;
	ssize_t w;
	int rc;

	if (p == NULL && n > 0)
		return RD_ERR_INVAL;
	while (off < n) {
		w = send(fd, b + off, n - off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w > 0) {
			off += (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			rc = rd_net_wait(fd, POLLOUT, remaining_ms(deadline, timeout_ms));
			if (rc != 0)
				return rc;
			continue;
		}
		if (w < 0 && closed_errno(errno))
			return RD_ERR_CLOSED;
		return RD_ERR_SYSTEM;
	}
	return 0;
}

int rd_net_read_full(int fd, void *p, size_t n, int timeout_ms)
{
	char *b = p;
	uint64_t deadline = deadline_from(timeout_ms);
	size_t off = 0;
	ssize_t r;
	int rc;

	if (p == NULL && n > 0)
		return RD_ERR_INVAL;
	while (off < n) {
		r = recv(fd, b + off, n - off, MSG_DONTWAIT);
		if (r > 0) {
			off += (size_t)r;
			continue;
		}
		if (r == 0)
			return off == 0 ? RD_ERR_CLOSED : RD_ERR_MALFORMED;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			if ((rc = rd_net_wait(fd, POLLIN, remaining_ms(deadline, timeout_ms))) != 0)
				return rc;
			continue;
		}
		if (closed_errno(errno))
			return off == 0 ? RD_ERR_CLOSED : RD_ERR_MALFORMED;
		return RD_ERR_SYSTEM;
	}
	return 0;
}

int rd_net_read_some(int fd, void *p, size_t n, int timeout_ms, size_t *got)
{
	uint64_t deadline = deadline_from(timeout_ms);
	ssize_t r;
	int rc;

	if (got != NULL)
		*got = 0;
	if (p == NULL || n == 0 || got == NULL)
		return RD_ERR_INVAL;
	for (;;) {
		r = recv(fd, p, n, MSG_DONTWAIT);
		if (r > 0) {
			*got = (size_t)r;
			return 0;
		}
		if (r == 0)
			return RD_ERR_CLOSED;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			if ((rc = rd_net_wait(fd, POLLIN, remaining_ms(deadline, timeout_ms))) != 0)
				return rc;
			continue;
		}
		if (closed_errno(errno))
			return RD_ERR_CLOSED;
		return RD_ERR_SYSTEM;
	}
}

/* Fallback for files sendfile() cannot read from: pread() and write_all(). */
static int copy_with_pread(int sock, int in_fd, off_t off, size_t n, uint64_t deadline,
			   int timeout_ms)
{
	char *buf = NULL;
	ssize_t r;
	size_t want;
	int rc;

	buf = malloc(RD_NET_CHUNK);
	if (buf == NULL)
		return RD_ERR_NOMEM;
	while (n > 0) {
		want = n < RD_NET_CHUNK ? n : RD_NET_CHUNK;
		r = pread(in_fd, buf, want, off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = RD_ERR_SYSTEM;
			goto out;
		}
		if (r == 0) {
			rc = RD_ERR_MISMATCH; /* the file is shorter than the range asked for */
			goto out;
		}
		if (timeout_ms >= 0 && remaining_ms(deadline, timeout_ms) == 0) {
			rc = RD_ERR_TIMEOUT;
			goto out;
		}
		rc = rd_net_write_all(sock, buf, (size_t)r, remaining_ms(deadline, timeout_ms));
		if (rc != 0)
			goto out;
		off += r;
		n -= (size_t)r;
	}
	rc = 0;
out:
	free(buf);
	return rc;
}

/* sendfile() has no MSG_NOSIGNAL: SIGPIPE is blocked in this thread for the call, and one
 * that the call raised is taken off the thread's pending set before the old mask returns
 * (a SIGPIPE that was already pending is left alone). The process's disposition is never
 * touched, so a program keeps whatever SIGPIPE policy it chose. */
static ssize_t sendfile_nosigpipe(int sock, int in_fd, off_t *off, size_t want)
{
	sigset_t pipe_set, old, pending;
	int was_pending, saved;
	ssize_t w;

	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	sigemptyset(&pending);
	(void)sigpending(&pending);
	was_pending = sigismember(&pending, SIGPIPE) == 1;
	(void)pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	w = sendfile(sock, in_fd, off, want);
	saved = errno;
	/* (a partial sendfile may raise it too, so look at what is pending, not at errno) */
	sigemptyset(&pending);
	if (!was_pending && sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1) {
		struct timespec zero = { 0, 0 };
		while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
			;
	}
	(void)pthread_sigmask(SIG_SETMASK, &old, NULL);
	errno = saved;
	return w;
}

/* On a blocking socket sendfile() waits for buffer space with no deadline of its own;
 * SO_SNDTIMEO bounds each call to what is left of ours. The previous value is restored. */
static int set_sndtimeo_ms(int sock, int ms)
{
	struct timeval tv;

	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	if (ms == 0)
		tv.tv_usec = 1000; /* 0 would mean "forever" */
	return setsockopt(sock, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

int rd_net_sendfile_all(int sock, int in_fd, off_t off, size_t n, int timeout_ms)
{
	uint64_t deadline = deadline_from(timeout_ms);
	struct timeval old_tv;
	socklen_t tvlen = sizeof(old_tv);
	int fl, blocking, restore = 0, rc, left, saved = 0;
	size_t sent = 0, want;
	ssize_t w;

	if (sock < 0 || in_fd < 0 || off < 0)
		return RD_ERR_INVAL;
	if (n == 0)
		return 0;
	fl = fcntl(sock, F_GETFL);
	if (fl < 0)
		return RD_ERR_SYSTEM;
	blocking = !(fl & O_NONBLOCK);
	if (blocking && timeout_ms >= 0) {
		if (getsockopt(sock, SOL_SOCKET, SO_SNDTIMEO, &old_tv, &tvlen) != 0)
			return RD_ERR_SYSTEM;
		restore = 1;
	}
	while (sent < n) {
		left = remaining_ms(deadline, timeout_ms);
		if (restore) {
			if (left == 0) {
				rc = RD_ERR_TIMEOUT;
				goto out;
			}
			if (set_sndtimeo_ms(sock, left) != 0) {
				rc = RD_ERR_SYSTEM;
				saved = errno;
				goto out;
			}
		}
		want = n - sent < RD_NET_CHUNK ? n - sent : RD_NET_CHUNK;
		w = sendfile_nosigpipe(sock, in_fd, &off, want);
		if (w > 0) {
			sent += (size_t)w;
			continue;
		}
		if (w == 0) {
			rc = RD_ERR_MISMATCH; /* the file is shorter than the range asked for */
			goto out;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			rc = rd_net_wait(sock, POLLOUT, remaining_ms(deadline, timeout_ms));
			if (rc != 0)
				goto out;
			continue;
		}
		if ((errno == EINVAL || errno == ENOSYS) && sent == 0) {
			rc = copy_with_pread(sock, in_fd, off, n, deadline, timeout_ms);
			saved = errno;
			goto out;
		}
		if (closed_errno(errno)) {
			rc = RD_ERR_CLOSED;
			goto out;
		}
		rc = RD_ERR_SYSTEM;
		saved = errno;
		goto out;
	}
	rc = 0;
out:
	if (restore)
		(void)setsockopt(sock, SOL_SOCKET, SO_SNDTIMEO, &old_tv, sizeof(old_tv));
	if (rc == RD_ERR_SYSTEM)
		errno = saved;
	return rc;
}

int rd_pread_full(int fd, void *p, size_t n, uint64_t off)
{
	uint8_t *d = p;
	while (n > 0) {
		ssize_t got = pread(fd, d, n, (off_t)off);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return RD_ERR_SYSTEM;
		if (got == 0) {
			errno = EIO; /* the file ends (or shrank under us) */
			return RD_ERR_MISMATCH;
		}
		d += got;
		n -= (size_t)got;
		off += (uint64_t)got;
	}
	return 0;
}

int rd_pwrite_full(int fd, const void *p, size_t n, uint64_t off)
{
	const uint8_t *d = p;
	while (n > 0) {
		ssize_t put = pwrite(fd, d, n, (off_t)off);
		if (put < 0 && errno == EINTR)
			continue;
		if (put < 0)
			return RD_ERR_SYSTEM;
		d += put;
		n -= (size_t)put;
		off += (uint64_t)put;
	}
	return 0;
}
