/* `gilprobe serve`, private to its two files: serve.c (the collectors, one
 * process per target, and the loop that adds up what they send) and
 * serve_http.c (the HTTP side, on libmicrohttpd's threads). They share
 * the fleet under one lock. */
#ifndef GILPROBE_SERVE_H
#define GILPROBE_SERVE_H
#include <limits.h>
#include <pthread.h>
#include <sys/socket.h>
#include <stdbool.h>

#include "commands.h"
#include "report/fleet.h"

/* One-shot reports (/api/report, /debug/pprof/profile) at a time; more
 * get 429. Each is a sampler of its own for its seconds. */
#define SERVE_MAX_REPORTS 2
#define SERVE_MAX_REPORT_S 60
#define SERVE_MAX_TOKENS 32

struct serve_state {
    const struct serve_options *opt;
    pthread_mutex_t lock;   /* the fleet and reports_running */
    struct fleet fleet;
    int reports_running;
    char self_exe[PATH_MAX]; /* gilprobe itself, for one-shot reports */
    /* --auth-file: bearer tokens and user:password pairs */
    char *tokens[SERVE_MAX_TOKENS];
    char *users[SERVE_MAX_TOKENS];
    size_t ntokens, nusers;
    void *daemon; /* struct MHD_Daemon */
};

/* ADDR:PORT or [ADDR6]:PORT into a socket address; false when it is not. */
bool serve_parse_listen(const char *listen, struct sockaddr_storage *ss, bool *v6);
/* Starts the HTTP server on opt->listen (TLS and auth as asked). */
int serve_http_start(struct serve_state *s, struct gp_error *err);
void serve_http_stop(struct serve_state *s);
/* Reads --auth-file into s; GP_ERR_USAGE with err filled when unusable. */
int serve_auth_load(struct serve_state *s, const char *path, struct gp_error *err);
void serve_auth_free(struct serve_state *s);

#endif
