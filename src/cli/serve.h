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
    /* An eventfd the HTTP side bumps when a /metrics finds figures older
     * than SERVE_FRESH_S: the loop asks every collector for its figures
     * then (SIGUSR2), and `fresh` is signalled at each line that comes. */
    int scrape_fd;
    pthread_cond_t fresh; /* with lock; CLOCK_MONOTONIC */
};

/* A scrape is answered with figures at most this old: older ones are asked
 * for again (a collector answers no more often than every 0.5 s). */
#define SERVE_FRESH_S 0.6
/* ... waiting this long at most for them (a collector that does not
 * answer in time is shown with what it sent before). */
#define SERVE_FRESH_WAIT_S 0.3

/* ADDR:PORT or [ADDR6]:PORT into a socket address; false when it is not. */
bool serve_parse_listen(const char *listen, struct sockaddr_storage *ss, bool *v6);
/* Starts the HTTP server on opt->listen (TLS and auth as asked). */
int serve_http_start(struct serve_state *s, struct gp_error *err);
void serve_http_stop(struct serve_state *s);
/* Called by the HTTP side before it renders /metrics: when a target's
 * figures are older than SERVE_FRESH_S, asks for new ones and waits for
 * them (at most SERVE_FRESH_WAIT_S). A counter then steps at each scrape
 * and rate() sees every scrape interval whole, whatever the interval. */
void serve_fresh_figures(struct serve_state *s);
/* Reads --auth-file into s; GP_ERR_USAGE with err filled when unusable. */
int serve_auth_load(struct serve_state *s, const char *path, struct gp_error *err);
void serve_auth_free(struct serve_state *s);

#endif
