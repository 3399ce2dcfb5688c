/* rd_net.h - small socket helpers: address parsing, listen, connect with timeout, full
 * reads and writes with deadlines, EINTR handled, SIGPIPE never delivered (MSG_NOSIGNAL on
 * every send; sendfile() runs with SIGPIPE blocked in the calling thread). The library never
 * changes the process's signal dispositions: that is the program's choice.
 */
#ifndef RD_NET_H
#define RD_NET_H

#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RD_DEFAULT_PORT 7878u
#define RD_DEFAULT_HOST "127.0.0.1"

/* "1-65535" -> port. RD_ERR_INVAL for anything else (0, signs, junk, > 65535). */
int rd_net_parse_port(const char *s, uint16_t *port);
/* "HOST:PORT", "[V6]:PORT", "HOST" (port = default_port), ":PORT" (host = default).
 * host receives at most hcap-1 bytes. RD_ERR_ADDR on a malformed string. */
int rd_net_parse_hostport(const char *s, uint16_t default_port, char *host, size_t hcap,
			  uint16_t *port);

/* Listening TCP socket on host:port (port 0 = ephemeral; the bound port in *bound).
 * SO_REUSEADDR set. RD_ERR_ADDR_IN_USE when the port is taken, RD_ERR_ADDR when host
 * does not resolve. The socket is close-on-exec. */
int rd_net_listen(const char *host, uint16_t port, int backlog, int *fd, uint16_t *bound);
/* Accept one connection (EINTR retried); peer address as text. */
int rd_net_accept(int lfd, int *fd, char *ip, size_t ipcap, uint16_t *port);
/* Connect with a timeout (ms, < 0 = system default). RD_ERR_REFUSED, RD_ERR_TIMEOUT,
 * RD_ERR_ADDR. Returns a blocking, close-on-exec socket with TCP_NODELAY. */
int rd_net_connect(const char *host, uint16_t port, int timeout_ms, int *fd);
/* Start a non-blocking connect to an IP literal (no name lookup, so nothing blocks) and
 * return at once: *fd is a non-blocking, close-on-exec socket with TCP_NODELAY whose
 * connect is in progress (*done = 0: wait for POLLOUT, then rd_net_connect_finish) or
 * already made (*done = 1). RD_ERR_ADDR when host is not an IP address, RD_ERR_REFUSED,
 * RD_ERR_SYSTEM (errno). For a program that dials several addresses at once. */
int rd_net_connect_start(const char *host, uint16_t port, int *fd, int *done);
/* After POLLOUT (or POLLERR/POLLHUP) on such a socket: 0 when connected, RD_ERR_REFUSED,
 * RD_ERR_TIMEOUT (the system gave up), RD_ERR_SYSTEM (errno says why). The socket is
 * left open either way. */
int rd_net_connect_finish(int fd);
/* Peer / local address of a connected socket as text + port. */
int rd_net_peer(int fd, char *ip, size_t ipcap, uint16_t *port);
int rd_net_local(int fd, char *ip, size_t ipcap, uint16_t *port);

int rd_net_set_nodelay(int fd, int on);
int rd_net_set_nonblock(int fd, int on);
/* SO_SNDBUF / SO_RCVBUF (0 = leave as is). */
int rd_net_set_bufs(int fd, int sndbuf, int rcvbuf);
/* Ignore SIGPIPE process-wide (idempotent). For programs that want that policy; the
 * library itself never calls it and does not need it. */
void rd_net_ignore_sigpipe(void);

/* Wait until fd is readable (events = POLLIN) or writable (POLLOUT).
 * 0 ready, RD_ERR_TIMEOUT, RD_ERR_SYSTEM. timeout_ms < 0 waits forever. */
int rd_net_wait(int fd, short events, int timeout_ms);
/* Write all n bytes (MSG_NOSIGNAL; works on blocking and non-blocking sockets).
 * RD_ERR_CLOSED if the peer is gone (EPIPE/ECONNRESET), RD_ERR_TIMEOUT. */
int rd_net_write_all(int fd, const void *p, size_t n, int timeout_ms);
/* Read exactly n bytes. RD_ERR_CLOSED if EOF before the first byte, RD_ERR_MALFORMED if EOF
 * after some bytes, RD_ERR_TIMEOUT. */
int rd_net_read_full(int fd, void *p, size_t n, int timeout_ms);
/* Read what is available (at least 1 byte): *got. RD_ERR_CLOSED on EOF. */
int rd_net_read_some(int fd, void *p, size_t n, int timeout_ms, size_t *got);
/* Read exactly n bytes of a file at off (pread; EINTR retried; the offset is not moved).
 * RD_ERR_SYSTEM (errno), or RD_ERR_MISMATCH (errno EIO) when the file ends first. */
int rd_pread_full(int fd, void *p, size_t n, uint64_t off);
/* Write all n bytes at off (pwrite, EINTR retried): 0, or RD_ERR_SYSTEM with errno. */
int rd_pwrite_full(int fd, const void *p, size_t n, uint64_t off);
/* sendfile() all of [off, off+n) from in_fd to the socket, with a deadline. */
int rd_net_sendfile_all(int sock, int in_fd, off_t off, size_t n, int timeout_ms);

/* Monotonic and wall clocks in milliseconds. */
uint64_t rd_now_mono_ms(void);
/* The same clock in nanoseconds (timing a chunk). */
uint64_t rd_now_mono_ns(void);
uint64_t rd_now_wall_ms(void);

/* Condition variables whose timed waits run on CLOCK_MONOTONIC, so that a step of the wall
 * clock neither stalls nor hurries a deadline. Every timed wait in roomdrop goes through
 * these two (scripts/lint.sh checks it).
 * rd_cond_init_mono: 0, or RD_ERR_SYSTEM.
 * rd_cond_wait_until: wait on cv (mtx held) until signalled or rd_now_mono_ms() reaches
 * deadline_ms; 0 when woken (possibly spuriously: re-check the predicate), RD_ERR_TIMEOUT
 * when the deadline has passed. */
int rd_cond_init_mono(pthread_cond_t *cv);
int rd_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mtx, uint64_t deadline_ms);

#ifdef __cplusplus
}
#endif
#endif
