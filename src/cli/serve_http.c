/* The HTTP side of `gilprobe serve` (libmicrohttpd, a thread per
 * connection apart from the collectors: a slow or hostile client holds its
 * own thread, never the sampling). Routes:
 *   /metrics            OpenMetrics or Prometheus text, by the Accept header
 *   /api/report         ?pid=PID&seconds=N: the `-p --json` report of N seconds
 *   /debug/pprof/profile ?pid=PID&seconds=N: those seconds as a gzipped pprof profile
 *   /healthz            "ok" (no authentication)
 *   /                   the targets, with links
 * Every parameter is checked: an unwatched PID is 404, seconds outside
 * 1..60 are 400, more one-shot reports than SERVE_MAX_REPORTS at once 429. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "serve.h"

#define CONNECTIONS_MAX 256
#define CONNECTIONS_PER_IP 64
#define CLIENT_TIMEOUT_S 10
#define REPORT_MAX_BYTES (64u << 20)

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned code, const char *type,
                             char *body, size_t len)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    enum MHD_Result q = MHD_queue_response(conn, code, r);
    MHD_destroy_response(r);
    return q;
}

static enum MHD_Result reply_text(struct MHD_Connection *conn, unsigned code, const char *fmt,
                                  const char *arg)
{
    char *body = NULL;
    int n = asprintf(&body, fmt, arg);
    if (n < 0)
        return MHD_NO;
    return reply(conn, code, "text/plain; charset=utf-8", body, (size_t)n);
}

static bool same(const char *a, const char *b)
{
    /* constant time in the length of the secret */
    size_t la = strlen(a), lb = strlen(b);
    unsigned char d = (unsigned char)(la != lb);
    for (size_t i = 0; i < lb; i++)
        d |= (unsigned char)(a[i < la ? i : 0] ^ b[i]);
    return d == 0;
}

static bool authorized(struct serve_state *s, struct MHD_Connection *conn)
{
    if (!s->ntokens && !s->nusers)
        return true;
    const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    if (h && strncmp(h, "Bearer ", 7) == 0) {
        bool ok = false;
        for (size_t i = 0; i < s->ntokens; i++)
            ok |= same(h + 7, s->tokens[i]);
        return ok;
    }
    char *pass = NULL;
    char *user = MHD_basic_auth_get_username_password(conn, &pass);
    bool ok = false;
    if (user && pass) {
        char pair[1024];
        snprintf(pair, sizeof pair, "%s:%s", user, pass);
        for (size_t i = 0; i < s->nusers; i++)
            ok |= same(pair, s->users[i]);
    }
    MHD_free(user);
    MHD_free(pass);
    return ok;
}

static enum MHD_Result unauthorized(struct MHD_Connection *conn)
{
    static const char msg[] = "authentication required\n";
    struct MHD_Response *r =
        MHD_create_response_from_buffer(sizeof msg - 1, (void *)msg, MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    enum MHD_Result q = MHD_queue_basic_auth_fail_response(conn, "gilprobe", r);
    MHD_destroy_response(r);
    return q;
}

static enum MHD_Result metrics(struct serve_state *s, struct MHD_Connection *conn)
{
    const char *accept = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Accept");
    bool om = accept && strstr(accept, "application/openmetrics-text");
    char *body = NULL;
    size_t len = 0;
    serve_fresh_figures(s);
    FILE *f = open_memstream(&body, &len);
    if (!f)
        return MHD_NO;
    pthread_mutex_lock(&s->lock);
    fleet_render(&s->fleet, om, f);
    pthread_mutex_unlock(&s->lock);
    fclose(f);
    return reply(conn, MHD_HTTP_OK,
                 om ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
                    : "text/plain; version=0.0.4; charset=utf-8",
                 body, len);
}

static void html_escaped(FILE *f, const char *v)
{
    for (; *v; v++) {
        switch (*v) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*v, f);
        }
    }
}

static enum MHD_Result index_page(struct serve_state *s, struct MHD_Connection *conn)
{
    char *body = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&body, &len);
    if (!f)
        return MHD_NO;
    fputs("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>gilprobe serve</title>"
          "<style>body{font-family:sans-serif;margin:2em}td,th{padding:.2em .8em;"
          "text-align:left}</style></head><body><h1>gilprobe serve</h1>"
          "<p><a href=\"/metrics\">/metrics</a></p><table><tr><th>PID</th><th>program</th>"
          "<th>Python</th><th>threads</th><th>GIL held (s)</th><th>findings</th>"
          "<th>report</th></tr>\n", f);
    pthread_mutex_lock(&s->lock);
    for (uint32_t i = 0; i < s->fleet.n; i++) {
        const struct fleet_target *t = &s->fleet.t[i];
        if (!t->info_seen)
            continue;
        fprintf(f, "<tr><td>%d</td><td>", (int)t->pid);
        html_escaped(f, t->exe);
        fputs("</td><td>", f);
        html_escaped(f, t->python_version);
        fprintf(f, "</td><td>%u</td><td>%.1f</td><td>", t->python_threads, t->held_s);
        for (uint32_t k = 0; k < t->nfindings; k++)
            fprintf(f, "%s%s (%s)", k ? ", " : "", t->findings[k].scenario, t->findings[k].severity);
        fprintf(f, "</td><td><a href=\"/api/report?pid=%d&amp;seconds=5\">5 s report</a>, "
                "<a href=\"/debug/pprof/profile?pid=%d&amp;seconds=5\">5 s pprof</a></td></tr>\n",
                (int)t->pid, (int)t->pid);
    }
    pthread_mutex_unlock(&s->lock);
    fputs("</table></body></html>\n", f);
    fclose(f);
    return reply(conn, MHD_HTTP_OK, "text/html; charset=utf-8", body, len);
}

/* A positive integer parameter within [1, max]; 0 when absent or not. */
static long int_param(struct MHD_Connection *conn, const char *key, long max)
{
    const char *v = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, key);
    if (!v || !*v)
        return 0;
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    return *end || errno || x < 1 || x > max ? 0 : x;
}

/* `gilprobe -p PID -d N` as a child, with --json or --pprof -: its standard
 * output, or NULL. */
static char *one_shot(struct serve_state *s, pid_t pid, long seconds, bool pprof, size_t *len)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return NULL;
    pid_t c = fork();
    if (c < 0) {
        close(p[0]);
        close(p[1]);
        return NULL;
    }
    if (c == 0) {
        dup2(p[1], STDOUT_FILENO);
        char pid_s[16], sec_s[16];
        snprintf(pid_s, sizeof pid_s, "%d", (int)pid);
        snprintf(sec_s, sizeof sec_s, "%ld", seconds);
        char *json[] = {"gilprobe", "-p", pid_s, "-d", sec_s, "--json", NULL};
        char *profile[] = {"gilprobe", "-p", pid_s, "-d", sec_s, "-o", "/dev/null",
                           "--pprof", "-", NULL};
        char **argv = pprof ? profile : json;
        execv(s->self_exe, argv);
        _exit(GP_ERR_INTERNAL);
    }
    close(p[1]);
    char *buf = NULL;
    size_t n = 0, cap = 0;
    bool ok = true;
    for (;;) {
        if (cap - n < 65536) {
            char *nb = cap + 65536 <= REPORT_MAX_BYTES ? realloc(buf, cap + 65536 + 1) : NULL;
            if (!nb) {
                ok = false;
                break;
            }
            buf = nb;
            cap += 65536;
        }
        ssize_t r = read(p[0], buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    close(p[0]);
    if (!ok)
        kill(c, SIGTERM);
    int status = 0;
    while (waitpid(c, &status, 0) < 0 && errno == EINTR)
        ;
    if (!ok || !WIFEXITED(status) || (WEXITSTATUS(status) != 0 && WEXITSTATUS(status) != 9)) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

static enum MHD_Result report(struct serve_state *s, struct MHD_Connection *conn, bool pprof)
{
    long pid = int_param(conn, "pid", 4194304);
    long seconds = int_param(conn, "seconds", SERVE_MAX_REPORT_S);
    if (!pid)
        return reply_text(conn, MHD_HTTP_BAD_REQUEST, "%s", "pid= wants a watched process ID\n");
    if (!seconds)
        return reply_text(conn, MHD_HTTP_BAD_REQUEST, "seconds= wants 1 to %s\n", "60");
    pthread_mutex_lock(&s->lock);
    bool known = fleet_find(&s->fleet, (pid_t)pid) != NULL;
    bool room = known && s->reports_running < SERVE_MAX_REPORTS;
    s->reports_running += room;
    pthread_mutex_unlock(&s->lock);
    if (!known)
        return reply_text(conn, MHD_HTTP_NOT_FOUND, "%s", "no such watched process\n");
    if (!room)
        return reply_text(conn, MHD_HTTP_TOO_MANY_REQUESTS, "%s",
                          "too many reports being made; try again later\n");
    size_t len = 0;
    char *body = one_shot(s, (pid_t)pid, seconds, pprof, &len);
    pthread_mutex_lock(&s->lock);
    s->reports_running--;
    pthread_mutex_unlock(&s->lock);
    if (!body)
        return reply_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "%s",
                          "the report could not be made (the process may have exited)\n");
    return reply(conn, MHD_HTTP_OK, pprof ? "application/octet-stream" : "application/json", body,
                 len);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **con_cls)
{
    (void)version;
    (void)upload;
    struct serve_state *s = cls;
    /* The first call only announces the request: answered on the next
     * one, after any body (ignored), or MHD closes the connection after
     * the response instead of keeping it alive. */
    static int seen;
    if (!*con_cls) {
        *con_cls = &seen;
        return MHD_YES;
    }
    if (*upload_size) {
        *upload_size = 0;
        return MHD_YES;
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return reply_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "%s", "only GET\n");
    if (strcmp(url, "/healthz") == 0)
        return reply_text(conn, MHD_HTTP_OK, "%s", "ok\n");
    if (!authorized(s, conn))
        return unauthorized(conn);
    if (strcmp(url, "/metrics") == 0)
        return metrics(s, conn);
    if (strcmp(url, "/api/report") == 0)
        return report(s, conn, false);
    if (strcmp(url, "/debug/pprof/profile") == 0)
        return report(s, conn, true);
    if (strcmp(url, "/") == 0)
        return index_page(s, conn);
    return reply_text(conn, MHD_HTTP_NOT_FOUND, "%s", "not found\n");
}

/* ADDR:PORT or [ADDR6]:PORT into a socket address. */
bool serve_parse_listen(const char *listen, struct sockaddr_storage *ss, bool *v6)
{
    char host[128];
    const char *colon = strrchr(listen, ':');
    if (!colon || colon == listen || (size_t)(colon - listen) >= sizeof host)
        return false;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535 || !colon[1])
        return false;
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    memset(ss, 0, sizeof *ss);
    size_t hl = strlen(host);
    if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
        host[hl - 1] = '\0';
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        *v6 = true;
        return inet_pton(AF_INET6, host + 1, &a->sin6_addr) == 1;
    }
    struct sockaddr_in *a = (struct sockaddr_in *)ss;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    *v6 = false;
    return inet_pton(AF_INET, host, &a->sin_addr) == 1;
}

static char *slurp(const char *path, struct gp_error *err, const char *what)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        gp_error_set(err, GP_ERR_USAGE, "cannot read %s %s (%s)", what, path, strerror(errno));
        return NULL;
    }
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    char chunk[4096];
    size_t n;
    while (m && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
        fwrite(chunk, 1, n, m);
    fclose(f);
    if (m)
        fclose(m);
    return buf;
}

int serve_http_start(struct serve_state *s, struct gp_error *err)
{
    const struct serve_options *o = s->opt;
    struct sockaddr_storage ss;
    bool v6 = false;
    if (!serve_parse_listen(o->listen, &ss, &v6)) {
        gp_error_set(err, GP_ERR_USAGE, "--listen wants ADDR:PORT or [ADDR6]:PORT, not '%s'",
                     o->listen);
        return err->code;
    }
    char *cert = NULL, *key = NULL;
    if (o->tls_cert && (!(cert = slurp(o->tls_cert, err, "--tls-cert")) ||
                        !(key = slurp(o->tls_key, err, "--tls-key")))) {
        free(cert);
        return err->code;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                     (v6 ? MHD_USE_IPv6 : 0) | (cert ? MHD_USE_TLS : 0);
    s->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, handle, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONNECTIONS_MAX, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned)CONNECTIONS_PER_IP, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CLIENT_TIMEOUT_S,
        cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, cert, MHD_OPTION_HTTPS_MEM_KEY, key,
        MHD_OPTION_END);
    int e = errno;
    free(cert);
    free(key);
    if (!s->daemon) {
        gp_error_set(err, GP_ERR_USAGE, "cannot listen on %s (%s%s)", o->listen,
                     e ? strerror(e) : "refused",
                     o->tls_cert ? "; or the TLS certificate and key do not load" : "");
        return err->code;
    }
    return GP_OK;
}

void serve_http_stop(struct serve_state *s)
{
    if (s->daemon)
        MHD_stop_daemon(s->daemon);
    s->daemon = NULL;
}

int serve_auth_load(struct serve_state *s, const char *path, struct gp_error *err)
{
    char *text = slurp(path, err, "--auth-file");
    if (!text)
        return err->code;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        size_t n = strlen(line);
        while (n && (line[n - 1] == '\r' || line[n - 1] == ' '))
            line[--n] = '\0';
        if (!n || line[0] == '#')
            continue;
        if (s->ntokens + s->nusers >= SERVE_MAX_TOKENS)
            break;
        if (strncmp(line, "Bearer ", 7) == 0 && line[7])
            s->tokens[s->ntokens++] = strdup(line + 7);
        else if (strchr(line, ':') && line[0] != ':')
            s->users[s->nusers++] = strdup(line);
    }
    free(text);
    if (!s->ntokens && !s->nusers) {
        gp_error_set(err, GP_ERR_USAGE, "--auth-file %s holds no 'Bearer TOKEN' or 'user:password' "
                     "line", path);
        return err->code;
    }
    return GP_OK;
}

void serve_auth_free(struct serve_state *s)
{
    for (size_t i = 0; i < s->ntokens; i++)
        free(s->tokens[i]);
    for (size_t i = 0; i < s->nusers; i++)
        free(s->users[i]);
    s->ntokens = s->nusers = 0;
}
