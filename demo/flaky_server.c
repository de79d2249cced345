/* flaky_server: an echo server that misbehaves on a schedule, to show what a
 * reconnecting client does. Every step of the schedule waits, then does one
 * thing to all connected clients and says so on stdout:
 *
 *   close       close them gracefully (the client sees FIN: "peer closed")
 *   reset       close them with SO_LINGER 0 (the client sees RST: "peer reset")
 *   down=SECS   close them, stop listening for SECS (connects are refused),
 *               then listen again on the same port
 *
 *   flaky_server [--host ADDR] [--port N] [--schedule SPEC] [--duration SECS]
 *
 * SPEC is "WAIT:ACTION,..." and repeats, e.g. "3:close,3:reset,2:down=6".
 * --port 0 picks a free port; the first line says which:
 * "server: HH:MM:SS.d listening on 127.0.0.1:PORT".
 */
/* ---- platform: Winsock or POSIX sockets; nothing below this block differs ----
 * demo_os.h has the clocks and the select() that copes with empty sets. */
#include "demo_os.h"
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#ifdef _WIN32

typedef SOCKET sock_t;
#define NO_SOCK INVALID_SOCKET
#define close_sock closesocket
static const char *sock_errtext(int e) { static char b[32]; snprintf(b, sizeof b, "error %d", e); return b; }
static void set_nonblock(sock_t s, int on) { u_long v = (u_long)on; ioctlsocket(s, FIONBIO, &v); }
/* Windows' SO_REUSEADDR would let another socket take the port over; the
 * default already lets a listener come back while old connections linger. */
static void set_reuse(sock_t s) { (void)s; }
static int max_fd(int m, sock_t s) { (void)s; return m; }     /* nfds is ignored */
static int platform_init(void)
{
    WSADATA wsa;
    setvbuf(stdout, NULL, _IONBF, 0);
    return WSAStartup(MAKEWORD(2, 2), &wsa) == 0 ? 0 : -1;
}
#else
#include <netinet/in.h>
#include <fcntl.h>
#include <netdb.h>
#include <unistd.h>

typedef int sock_t;
#define NO_SOCK (-1)
#define close_sock close
static const char *sock_errtext(int e) { return strerror(e); }
static void set_nonblock(sock_t s, int on) { int f = fcntl(s, F_GETFL, 0); fcntl(s, F_SETFL, on ? f | O_NONBLOCK : f & ~O_NONBLOCK); }
static void set_reuse(sock_t s) { int one = 1; setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one); }
static int max_fd(int m, sock_t s) { return s > m ? s : m; }
static int platform_init(void)
{
    signal(SIGPIPE, SIG_IGN);   /* a client gone mid-echo is not our death */
    return 0;
}
#endif

#define MAX_CLIENTS 16
#define MAX_STEPS   32
#define DEFAULT_SCHEDULE "3:close,3:reset,2:down=6"

enum action { A_CLOSE, A_RESET, A_DOWN };

typedef struct step { unsigned wait_ms; enum action what; unsigned down_ms; } step;

typedef struct server {
    const char *host;
    char port[16];
    sock_t lfd;                 /* listening socket, NO_SOCK while down */
    sock_t clients[MAX_CLIENTS];
    step steps[MAX_STEPS];
    size_t nsteps, next;
    unsigned long long next_at, end_at;
} server;

static volatile sig_atomic_t got_signal;
static void on_signal(int sig) { got_signal = sig; }

/* Time of day on every line, so it lines up with kacat --timestamps. */
static void say(const char *fmt, ...)
{
    char t[32];
    va_list ap;
    clock_text(t, sizeof t);
    printf("server: %s ", t);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

/* ---- schedule ---- */

static int parse_secs(const char *s, char **end, unsigned *ms)
{
    double d = strtod(s, end);
    if (*end == s || !(d >= 0 && d <= 86400)) return -1;
    *ms = (unsigned)(d * 1000.0 + 0.5);
    return 0;
}

static int parse_step(const char *s, step *st)
{
    char *end;
    if (parse_secs(s, &end, &st->wait_ms) != 0 || *end != ':') return -1;
    s = end + 1;
    st->down_ms = 0;
    if (strncmp(s, "close", 5) == 0 && (s[5] == ',' || !s[5])) st->what = A_CLOSE;
    else if (strncmp(s, "reset", 5) == 0 && (s[5] == ',' || !s[5])) st->what = A_RESET;
    else if (strncmp(s, "down=", 5) == 0) {
        st->what = A_DOWN;
        if (parse_secs(s + 5, &end, &st->down_ms) != 0 || (*end && *end != ',')) return -1;
    } else return -1;
    return 0;
}

static int parse_schedule(server *sv, const char *spec)
{
    const char *p = spec;
    sv->nsteps = 0;
    while (*p) {
        if (sv->nsteps == MAX_STEPS || parse_step(p, &sv->steps[sv->nsteps]) != 0) return -1;
        sv->nsteps++;
        p = strchr(p, ',');
        if (!p) break;
        p++;
    }
    return sv->nsteps ? 0 : -1;
}

/* ---- sockets ---- */

static int open_listener(server *sv)
{
    struct addrinfo hints, *ai = NULL;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    sock_t fd;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST;
    if (getaddrinfo(sv->host, sv->port, &hints, &ai) != 0) return -1;
    fd = socket(ai->ai_family, SOCK_STREAM, 0);
    if (fd != NO_SOCK) set_reuse(fd);
    if (fd == NO_SOCK || bind(fd, ai->ai_addr, (int)ai->ai_addrlen) != 0 || listen(fd, 16) != 0) {
        if (fd != NO_SOCK) close_sock(fd);
        freeaddrinfo(ai);
        return -1;
    }
    freeaddrinfo(ai);
    /* Port 0 asked for any port: keep the one we got for coming back. */
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
        getnameinfo((struct sockaddr *)&ss, sl, NULL, 0, sv->port, sizeof sv->port, NI_NUMERICSERV);
    set_nonblock(fd, 1);
    sv->lfd = fd;
    say("listening on %s:%s", sv->host, sv->port);
    return 0;
}

static void accept_client(server *sv)
{
    sock_t fd = accept(sv->lfd, NULL, NULL);
    int i;
    if (fd == NO_SOCK) return;
    set_nonblock(fd, 0);        /* Windows hands it over non-blocking, like the listener: the echo's send() must wait */
    for (i = 0; i < MAX_CLIENTS && sv->clients[i] != NO_SOCK; i++) { }
    if (i == MAX_CLIENTS) { say("too many clients: closing a new one"); close_sock(fd); return; }
    sv->clients[i] = fd;
    say("client connected");
}

/* Echo what came; drop the client on EOF or error. */
static void serve_client(server *sv, int i)
{
    char buf[16384];
    int n = (int)recv(sv->clients[i], buf, sizeof buf, 0), off = 0;
    if (n <= 0) {
        say("client %s", n == 0 ? "closed its connection" : "connection failed");
        close_sock(sv->clients[i]);
        sv->clients[i] = NO_SOCK;
        return;
    }
    while (off < n) {
        int w = (int)send(sv->clients[i], buf + off, n - off, 0);
        if (w <= 0) break;
        off += w;
    }
}

static int drop_clients(server *sv, int reset)
{
    struct linger lg;
    int i, n = 0;
    lg.l_onoff = 1;
    lg.l_linger = 0;
    for (i = 0; i < MAX_CLIENTS; i++) {
        if (sv->clients[i] == NO_SOCK) continue;
        if (reset) setsockopt(sv->clients[i], SOL_SOCKET, SO_LINGER, (const char *)&lg, sizeof lg);
        close_sock(sv->clients[i]);
        sv->clients[i] = NO_SOCK;
        n++;
    }
    return n;
}

/* ---- the schedule in action ---- */

static const char *plural(int n) { return n == 1 ? "" : "s"; }

static void do_step(server *sv, const step *st)
{
    int n;
    switch (st->what) {
    case A_CLOSE:
        n = drop_clients(sv, 0);
        say("closed %d connection%s gracefully (FIN)", n, plural(n));
        break;
    case A_RESET:
        n = drop_clients(sv, 1);
        say("reset %d connection%s (RST, SO_LINGER 0)", n, plural(n));
        break;
    case A_DOWN:
        n = drop_clients(sv, 0);
        close_sock(sv->lfd);
        sv->lfd = NO_SOCK;
        say("going down for %.1f s: closed %d connection%s, not listening (connects are refused)",
            st->down_ms / 1000.0, n, plural(n));
        break;
    }
}

/* Next due thing: back up after a down, or the next step. */
static void tick(server *sv)
{
    unsigned long long now = now_ms();
    const step *st;
    if (now < sv->next_at) return;
    if (sv->lfd == NO_SOCK) {
        if (open_listener(sv) != 0) { say("cannot listen again yet: %s", sock_errtext(sock_errno())); sv->next_at = now + 1000; return; }
        sv->next_at = now + sv->steps[sv->next].wait_ms;
        return;
    }
    st = &sv->steps[sv->next];
    do_step(sv, st);
    sv->next = (sv->next + 1) % sv->nsteps;
    sv->next_at = now + (st->what == A_DOWN ? st->down_ms : sv->steps[sv->next].wait_ms);
}

static void serve(server *sv)
{
    while (!got_signal && now_ms() < sv->end_at) {
        fd_set rd;
        unsigned long long now = now_ms(), until = sv->next_at < sv->end_at ? sv->next_at : sv->end_at;
        long t = until > now ? (long)(until - now) : 0;
        int i, maxfd = -1;
        FD_ZERO(&rd);
        if (sv->lfd != NO_SOCK) { FD_SET(sv->lfd, &rd); maxfd = max_fd(maxfd, sv->lfd); }
        for (i = 0; i < MAX_CLIENTS; i++)
            if (sv->clients[i] != NO_SOCK) { FD_SET(sv->clients[i], &rd); maxfd = max_fd(maxfd, sv->clients[i]); }
        if (wait_sockets(maxfd + 1, &rd, NULL, NULL, t) > 0) {
            if (sv->lfd != NO_SOCK && FD_ISSET(sv->lfd, &rd)) accept_client(sv);
            for (i = 0; i < MAX_CLIENTS; i++)
                if (sv->clients[i] != NO_SOCK && FD_ISSET(sv->clients[i], &rd)) serve_client(sv, i);
        }
        tick(sv);
    }
}

static int usage(void)
{
    fprintf(stderr, "usage: flaky_server [--host ADDR] [--port N] [--schedule SPEC] [--duration SECS]\n"
                    "  SPEC: WAIT:ACTION,... repeated; ACTION is close, reset or down=SECS\n"
                    "  defaults: --host 127.0.0.1 --port 0 (any) --schedule %s --duration 60\n", DEFAULT_SCHEDULE);
    return 2;
}

int main(int argc, char **argv)
{
    static server sv;
    const char *schedule = DEFAULT_SCHEDULE;
    unsigned duration_ms = 60000;
    char *end;
    int i;
    sv.host = "127.0.0.1";
    strcpy(sv.port, "0");
    for (i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--host") == 0) sv.host = argv[i + 1];
        else if (strcmp(argv[i], "--port") == 0 && strlen(argv[i + 1]) < sizeof sv.port) strcpy(sv.port, argv[i + 1]);
        else if (strcmp(argv[i], "--schedule") == 0) schedule = argv[i + 1];
        else if (strcmp(argv[i], "--duration") == 0) { if (parse_secs(argv[i + 1], &end, &duration_ms) || *end) return usage(); }
        else return usage();
    }
    if (i != argc || parse_schedule(&sv, schedule) != 0) return usage();
    for (i = 0; i < MAX_CLIENTS; i++) sv.clients[i] = NO_SOCK;
    if (platform_init() != 0) { fprintf(stderr, "flaky_server: cannot start Winsock\n"); return 1; }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    if (open_listener(&sv) != 0) { fprintf(stderr, "flaky_server: cannot listen on %s:%s: %s\n", sv.host, sv.port, sock_errtext(sock_errno())); return 1; }
    sv.end_at = now_ms() + duration_ms;
    sv.next_at = now_ms() + sv.steps[0].wait_ms;
    serve(&sv);
    drop_clients(&sv, 0);
    if (got_signal) say("stopped by signal %d", (int)got_signal);
    else say("run time over; exiting");
    return 0;
}
