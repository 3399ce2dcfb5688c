/* noredis_cluster.c - cluster mode in a build without hiredis: it refuses to start. */
#include "cluster.h"

#include <stdio.h>

#include "rd_err.h"
#include "state_redis.h"

int cluster_supported(void)
{
	return 0;
}

int cluster_new(const struct cluster_config *cfg, struct cluster **out, char *why, size_t cap)
{
	(void)cfg;
	*out = NULL;
	snprintf(why, cap,
		 "this roomdrop-server was built without cluster mode (no hiredis: install "
		 "libhiredis-dev and rebuild)");
	return RD_ERR_STATE;
}

void cluster_ops(struct cluster *cl, struct rd_cluster_ops *ops)
{
	(void)cl;
	(void)ops;
}

int cluster_start(struct cluster *cl, struct rd_server *srv, const char *listen_host, uint16_t port,
		  const uint8_t *fp, unsigned capacity, char *why, size_t cap)
{
	(void)cl;
	(void)srv;
	(void)listen_host;
	(void)port;
	(void)fp;
	(void)capacity;
	snprintf(why, cap, "no cluster mode in this build");
	return RD_ERR_STATE;
}

int cluster_clients(struct cluster *cl, struct rd_ctl_client **out, size_t *n)
{
	(void)cl;
	*out = NULL;
	*n = 0;
	return RD_ERR_STATE;
}

void cluster_free(struct cluster *cl)
{
	(void)cl;
}

int state_redis_open(struct cluster *cl, uint64_t expiry_ms, struct state_redis **out,
		     const struct state_redis_ops **ops, char *why, size_t cap)
{
	(void)cl;
	(void)expiry_ms;
	*out = NULL;
	*ops = NULL;
	snprintf(why, cap, "this roomdrop-server was built without cluster mode");
	return RD_ERR_STATE;
}
