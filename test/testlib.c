/* Harness and socket helpers for the ka_client tests. Platform differences
 * stay in the compat block at the top, as in ka_client.c. */
#ifndef _WIN32
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE
#endif
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "testlib.h"

#ifdef _WIN32
#include <windows.h>
typedef int t_len;
static void t_os_close(ka_socket s) { closesocket(s); }
int t_last_error(void) { return WSAGetLastError(); }
static int t_would_block(int e) { return e == WSAEWOULDBLOCK; }
void t_nonblock(ka_socket s) { u_long on = 1; ioctlsocket(s, FIONBIO, &on); }
unsigned long long t_now_ms(void) { return GetTickCount64(); }
void t_sleep_ms(int ms) { Sleep((DWORD)ms); }
void t_net_init(void) { WSADATA w; WSAStartup(MAKEWORD(2, 2), &w); }
int t_under_wine(void)
{
    HMODULE nt = GetModuleHandleA("ntdll.dll");
    return nt && GetProcAddress(nt, "wine_get_version") != NULL;
}
/* No alarm(): a thread ends the process once the deadline has passed, so a
 * hung test fails the run instead of hanging CI. */
static volatile LONG64 t_dog_deadline;   /* t_now_ms() value, 0 = off */
static DWORD WINAPI t_dog(LPVOID arg)
{
    (void)arg;
    for (;;) {
        LONG64 d = t_dog_deadline;
        if (d && (LONG64)t_now_ms() > d) {
            printf("FAIL watchdog: test still running after its deadline\n");
            fflush(stdout);
            ExitProcess(3);
        }
        Sleep(200);
    }
}
static void t_watchdog(int seconds)
{
    static HANDLE th;
    if (!th && seconds) th = CreateThread(NULL, 0, t_dog, NULL, 0, NULL);
    t_dog_deadline = seconds ? (LONG64)t_now_ms() + (LONG64)seconds * 1000 : 0;
}
#else
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netdb.h>
#include <fcntl.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <dirent.h>
#endif
typedef size_t t_len;
static void t_os_close(ka_socket s) { close(s); }
int t_last_error(void) { return errno; }
static int t_would_block(int e) { return e == EAGAIN || e == EWOULDBLOCK || e == EINTR; }
void t_nonblock(ka_socket s) { fcntl(s, F_SETFL, fcntl(s, F_GETFL, 0) | O_NONBLOCK); }
unsigned long long t_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000u + (unsigned long long)ts.tv_nsec / 1000000u;
}
void t_sleep_ms(int ms)
{
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
}
void t_net_init(void) { signal(SIGPIPE, SIG_DFL); /* a SIGPIPE must kill us: the library may not raise one */ }
int t_under_wine(void) { return 0; }
/* A hung test kills the run (and so fails it) instead of hanging CI. */
static void t_watchdog(int seconds) { alarm((unsigned)seconds); }
#endif

/* ---- harness ---- */

int t_quick(void)
{
    const char *q = getenv("KA_TEST_QUICK");
    return q && *q && *q != '0';
}

static int t_cur_failed, t_cur_skipped;

void t_fail(const char *file, int line, const char *what)
{
    printf("    %s:%d: check failed: %s\n", file, line, what);
    t_cur_failed = 1;
}

void t_skip(const char *why)
{
    printf("    skipped: %s\n", why);
    t_cur_skipped = 1;
}

int t_failed_now(void) { return t_cur_failed; }

int t_run(const t_case *cases, size_t n, int argc, char **argv)
{
    size_t i;
    int passed = 0, failed = 0, skipped = 0;
    setvbuf(stdout, NULL, _IONBF, 0);
    t_net_init();
    for (i = 0; i < n; i++) {
        unsigned long long t0;
        if (argc > 1 && !strstr(cases[i].name, argv[1])) continue;
        t_cur_failed = t_cur_skipped = 0;
        t0 = t_now_ms();
        t_watchdog(120);
        cases[i].fn();
        t_watchdog(0);
        if (t_cur_failed) failed++;
        else if (t_cur_skipped) skipped++;
        else passed++;
        printf("%-4s %s (%llu ms)\n", t_cur_failed ? "FAIL" : t_cur_skipped ? "skip" : "ok",
               cases[i].name, t_now_ms() - t0);
    }
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    return failed ? 1 : 0;
}

/* ---- sockets ---- */

void t_close(ka_socket s) { if (s != KA_INVALID_SOCKET) t_os_close(s); }

void t_reset(ka_socket s)
{
    struct linger lg;
    lg.l_onoff = 1;
    lg.l_linger = 0;
    setsockopt(s, SOL_SOCKET, SO_LINGER, (const char *)&lg, sizeof lg);
    t_os_close(s);
}

int t_set_rcvbuf(ka_socket s, int bytes)
{
    return setsockopt(s, SOL_SOCKET, SO_RCVBUF, (const char *)&bytes, sizeof bytes);
}

int t_set_sndbuf(ka_socket s, int bytes)
{
    return setsockopt(s, SOL_SOCKET, SO_SNDBUF, (const char *)&bytes, sizeof bytes);
}

ka_socket t_listen_on(const char *addr, const char *port, int backlog)
{
    struct addrinfo hints, *ai = NULL;
    ka_socket s;
    int one = 1;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST;
    if (getaddrinfo(addr, port, &hints, &ai) != 0) return KA_INVALID_SOCKET;
    s = socket(ai->ai_family, SOCK_STREAM, 0);
    if (s == KA_INVALID_SOCKET) { freeaddrinfo(ai); return s; }
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, (const char *)&one, sizeof one);
    if (bind(s, ai->ai_addr, (int)ai->ai_addrlen) != 0 || listen(s, backlog) != 0) {
        t_os_close(s);
        freeaddrinfo(ai);
        return KA_INVALID_SOCKET;
    }
    freeaddrinfo(ai);
    t_nonblock(s);
    return s;
}

static void t_port_of(ka_socket s, char *port_out, size_t port_len)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    unsigned port = 0;
    getsockname(s, (struct sockaddr *)&ss, &sl);
    if (ss.ss_family == AF_INET) port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    else if (ss.ss_family == AF_INET6) port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    snprintf(port_out, port_len, "%u", port);
}

ka_socket t_listen(const char *addr, char *port_out, size_t port_len)
{
    ka_socket s = t_listen_on(addr, "0", 16);
    if (s != KA_INVALID_SOCKET) t_port_of(s, port_out, port_len);
    return s;
}

#ifdef __linux__
long t_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    long n = 0;
    if (!d) return -1;
    while ((e = readdir(d)) != NULL) if (e->d_name[0] != '.') n++;
    closedir(d);
    return n - 1;                           /* the DIR's own descriptor */
}
#else
long t_open_fds(void) { return -1; }
#endif

int t_free_port(char *port_out, size_t port_len)
{
    ka_socket s = t_listen("127.0.0.1", port_out, port_len);
    if (s == KA_INVALID_SOCKET) return -1;
    t_os_close(s);
    return 0;
}

/* One short slice of waiting: the client's own poll if there is a client,
 * else a plain sleep. */
static void t_tick(ka_client *c)
{
    if (!c || ka_client_poll(c, 5) != 0) t_sleep_ms(5);
}

ka_socket t_accept(ka_socket l, ka_client *c, int ms)
{
    unsigned long long end = t_now_ms() + (unsigned long long)ms;
    do {
        ka_socket s = accept(l, NULL, NULL);
        if (s != KA_INVALID_SOCKET) { t_nonblock(s); return s; }
        t_tick(c);
    } while (t_now_ms() < end);
    return KA_INVALID_SOCKET;
}

long t_recv_some(ka_socket s, void *buf, size_t len, ka_client *c, int ms)
{
    unsigned long long end = t_now_ms() + (unsigned long long)ms;
    do {
        long n = (long)recv(s, (char *)buf, (t_len)len, 0);
        if (n >= 0) return n;
        if (!t_would_block(t_last_error())) return -1;
        t_tick(c);
    } while (t_now_ms() < end);
    return -1;
}

int t_recv_exact(ka_socket s, void *buf, size_t len, ka_client *c, int ms)
{
    unsigned long long end = t_now_ms() + (unsigned long long)ms;
    size_t got = 0;
    while (got < len) {
        long left = (long)(end - t_now_ms());
        long n;
        if (t_now_ms() >= end) return -1;
        n = t_recv_some(s, (char *)buf + got, len - got, c, (int)left);
        if (n <= 0) return -1;
        got += (size_t)n;
    }
    return 0;
}

int t_send_all(ka_socket s, const void *buf, size_t len, ka_client *c, int ms)
{
    unsigned long long end = t_now_ms() + (unsigned long long)ms;
    size_t done = 0;
    while (done < len) {
        long n = (long)send(s, (const char *)buf + done, (t_len)(len - done), 0);
        if (n > 0) { done += (size_t)n; continue; }
        if (n < 0 && !t_would_block(t_last_error())) return -1;
        if (t_now_ms() >= end) return -1;
        t_tick(c);
    }
    return 0;
}

/* ---- client side ---- */

static void rec_connect(ka_client *c, void *u)
{
    t_rec *r = (t_rec *)u;
    (void)c;
    r->connects++;
    r->connect_ms = t_now_ms();
}

static void rec_data(ka_client *c, const void *d, size_t n, void *u)
{
    t_rec *r = (t_rec *)u;
    size_t room = sizeof r->data - r->dlen;
    (void)c;
    memcpy(r->data + r->dlen, d, n < room ? n : room);
    r->dlen += n < room ? n : room;
}

static void rec_disconnect(ka_client *c, const ka_disconnect_info *di, void *u)
{
    t_rec *r = (t_rec *)u;
    (void)c;
    r->disconnects++;
    r->last_di = *di;
    r->disconnect_ms = t_now_ms();
}

static void rec_retry(ka_client *c, const ka_retry_info *ri, void *u)
{
    t_rec *r = (t_rec *)u;
    (void)c;
    if (r->retries < 64) {
        r->delays[r->retries] = ri->delay_ms;
        r->attempts[r->retries] = ri->attempt;
    }
    r->retries++;
    r->last_ri = *ri;
}

static void rec_give_up(ka_client *c, const ka_retry_info *ri, void *u)
{
    t_rec *r = (t_rec *)u;
    (void)c;
    r->give_ups++;
    r->last_ri = *ri;
}

static void rec_log(ka_client *c, int level, const char *msg, void *u)
{
    static char last[160];        /* a warning repeated on every connection is printed once */
    t_rec *r = (t_rec *)u;
    (void)c;
    if (level >= KA_LOG_WARN) {
        if (r->warnings++ == 0) snprintf(r->warning, sizeof r->warning, "%s", msg);
        if (strncmp(last, msg, sizeof last - 1) != 0 || getenv("KA_TEST_VERBOSE")) printf("    log: %s\n", msg);
        snprintf(last, sizeof last, "%s", msg);
    } else if (getenv("KA_TEST_VERBOSE")) printf("    log: %s\n", msg);
}

void t_config(ka_config *cfg, const char *host, const char *port, t_rec *rec)
{
    ka_config_init(cfg);
    cfg->host = host;
    cfg->port = port;
    cfg->connect_timeout_ms = 2000;
    cfg->backoff_initial_ms = 50;
    cfg->backoff_max_ms = 400;
    cfg->backoff_jitter = 0;
    cfg->random_seed = 42;
    cfg->user = rec;
    if (rec) {
        memset(rec, 0, sizeof *rec);
        cfg->cb.on_connect = rec_connect;
        cfg->cb.on_data = rec_data;
        cfg->cb.on_disconnect = rec_disconnect;
        cfg->cb.on_retry = rec_retry;
        cfg->cb.on_give_up = rec_give_up;
        cfg->cb.on_log = rec_log;
    }
}

int t_poll_until(ka_client *c, const int *counter, int target, int ms)
{
    unsigned long long end = t_now_ms() + (unsigned long long)ms;
    while (*counter < target) {
        long left = (long)(end - t_now_ms());
        if (t_now_ms() >= end) return -1;
        if (ka_client_poll(c, left > 50 ? 50 : (int)left) != 0) t_sleep_ms(5);
    }
    return 0;
}

void t_poll_for(ka_client *c, int ms)
{
    unsigned long long end = t_now_ms() + (unsigned long long)ms;
    while (t_now_ms() < end) {
        long left = (long)(end - t_now_ms());
        if (ka_client_poll(c, left > 50 ? 50 : (int)left) != 0) t_sleep_ms(5);
    }
}

int t_poll_data(ka_client *c, const t_rec *rec, size_t n, int ms)
{
    unsigned long long end = t_now_ms() + (unsigned long long)ms;
    while (rec->dlen < n) {
        if (t_now_ms() >= end) return -1;
        if (ka_client_poll(c, 20) != 0) t_sleep_ms(5);
    }
    return 0;
}
