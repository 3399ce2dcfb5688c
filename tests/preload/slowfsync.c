/* slowfsync.c - an LD_PRELOAD shim for the live tests: fsync() and fdatasync() take
 * SLOWFSYNC_MS milliseconds longer (a disk that is slow to flush), then do their work.
 *
 *   LD_PRELOAD=build/tests/slowfsync.so SLOWFSYNC_MS=2500 roomdrop-server ...
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>

int fsync(int fd);
int fdatasync(int fd);

static void delay(void)
{
	const char *v = getenv("SLOWFSYNC_MS");
	long ms = v ? atol(v) : 0;
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	if (ms > 0)
		while (nanosleep(&ts, &ts) != 0)
			;
}

int fsync(int fd)
{
	int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
	delay();
	return real ? real(fd) : 0;
}

int fdatasync(int fd)
{
	int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
	delay();
	return real ? real(fd) : 0;
}
