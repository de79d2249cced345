/* kacat: cat over one TCP connection that ka_client keeps alive.
 *
 *   kacat [options] HOST PORT
 *
 * stdin goes to the server, the server's bytes go to stdout, and what
 * happens to the connection is told on stderr in plain words. When the
 * connection drops, kacat reconnects with backoff; input that arrives in the
 * meantime is queued and sent after the reconnect. When the queue is full
 * kacat stops reading stdin (backpressure), so nothing is ever dropped
 * silently.
 *
 * End of input: kacat calls ka_client_finish(), which delivers what is
 * queued (reconnecting if need be), then half-closes the connection (the
 * server sees EOF after the last byte) and stops heartbeats. kacat keeps
 * printing what the server still sends until the server closes or --linger
 * ms pass, then exits 0. Input that ends with nothing queued and no
 * connection up (e.g. empty input at start-up) still waits for a connection
 * first, so the server always sees a clean end, and a server that talks
 * first (a banner) is heard: kacat never exits 0 without having connected.
 *
 * "Sent" means handed to the kernel: bytes still in the kernel's send
 * buffer when a connection dies are lost without a count (the library
 * cannot see them); only a message cut in half is reported (unsent_bytes).
 *
 * Exit status: 0 input sent; 1 runtime error (including a connection reset
 * while finishing); 2 bad usage; 3 gave up (--max-attempts); 128+N on
 * signal N (SIGINT, SIGTERM).
 *
 * Layout: platform, options, status words, hooks (--exec), input,
 * callbacks, loop. Only the platform section knows about POSIX or Windows.
 *
 * On Windows stdin cannot be select()ed: a thread reads it and hands it to
 * the loop through a loopback socket (demo/win_stdin.h). --exec runs
 * "cmd.exe /d /s /c CMD" with CreateProcess. Ctrl+C is noticed within
 * 200 ms (it does not interrupt select() there). See docs/windows.md.
 */

/* ---- platform -------------------------------------------------------------------
 *
 *   now_ms(), clock_text(), sleep_ms()   monotonic and wall-clock time
 *   sock_errnames[], sock_errtext()      spelling of sys_error (errno or WSA code)
 *   platform_init(), catch_signals()     Winsock, binary stdout; SIGINT/SIGTERM
 *   input_start/fd/read/errtext()        stdin as something select() can watch
 *   wait_select(), poll()                select() that may get empty sets
 *   proc_t, proc_spawn(), proc_poll()    a hook: CMD in the shell, not waited for
 */
typedef struct env_var { const char *name, *value; } env_var;

#ifdef _WIN32

#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#define _CRT_SECURE_NO_WARNINGS
#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>
#include <errno.h>
#include <fcntl.h>
#include <io.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ka_client.h"
#include "win_stdin.h"

typedef HANDLE proc_t;                  /* NULL: no process */
#define HOOK_SHELL "cmd.exe /d /s /c"
#define HOOK_NOT_FOUND 9009u            /* cmd.exe: "is not recognized as a command" */
#define SIGNAL_CHECK_MS 200             /* Ctrl+C runs its handler on another thread */
#define SOCK_EINTR WSAEINTR
#define poll WSAPoll                    /* only for the FD_SETSIZE fallback, unused here */

#define SE(e) { WSA##e, "WSA" #e }
static const struct sock_errname { int e; const char *name; } sock_errnames[] = {
    SE(ECONNRESET), SE(ECONNREFUSED), SE(ETIMEDOUT), SE(ECONNABORTED), SE(EHOSTUNREACH),
    SE(ENETUNREACH), SE(ENETDOWN), SE(ENETRESET), SE(EADDRNOTAVAIL), SE(EACCES), SE(EHOSTDOWN),
};
#undef SE

static unsigned long long now_ms(void) { return (unsigned long long)GetTickCount64(); }
static void sleep_ms(unsigned ms) { Sleep(ms); }
static int sock_errno(void) { return WSAGetLastError(); }

static void clock_text(char *buf, size_t n)
{
    SYSTEMTIME st;
    GetLocalTime(&st);
    snprintf(buf, n, "%02u:%02u:%02u.%u", st.wHour, st.wMinute, st.wSecond, st.wMilliseconds / 100u);
}

static const char *sock_errtext(int e)
{
    static char buf[32];
    snprintf(buf, sizeof buf, "error %d", e);
    return buf;
}

/* Winsock for the input socket pair (each ka_client starts its own too);
 * stdout carries the server's bytes unchanged, no \n -> \r\n; stderr
 * unbuffered (the C runtime buffers it when it is not a console, and the
 * status lines would come out late, after the hooks' output). Only stderr
 * is inherited by hooks (as their stdout): a hook holding kacat's stdout
 * would keep a reader of it waiting for EOF. */
static int platform_init(void)
{
    WSADATA wsa;
    if (WSAStartup(MAKEWORD(2, 2), &wsa) != 0) return -1;
    _setmode(_fileno(stdout), _O_BINARY);
    setvbuf(stderr, NULL, _IONBF, 0);
    SetHandleInformation(GetStdHandle(STD_INPUT_HANDLE), HANDLE_FLAG_INHERIT, 0);
    SetHandleInformation(GetStdHandle(STD_OUTPUT_HANDLE), HANDLE_FLAG_INHERIT, 0);
    SetHandleInformation(GetStdHandle(STD_ERROR_HANDLE), HANDLE_FLAG_INHERIT, HANDLE_FLAG_INHERIT);
    return 0;
}

static void catch_signals(void (*handler)(int))
{
    signal(SIGINT, handler);
    signal(SIGTERM, handler);
}

static int input_start(void) { return win_stdin_start(); }
static ka_socket input_fd(void) { return win_stdin_socket; }
static int sock_nfds(ka_socket s) { (void)s; return 0; }     /* Windows ignores nfds */

/* > 0 bytes, 0 end of input, -1 error (input_errtext), -2 nothing yet. */
static long input_read(void *buf, size_t len)
{
    int n = recv(win_stdin_socket, (char *)buf, len > INT_MAX ? INT_MAX : (int)len, 0);
    if (n > 0) return n;
    if (n < 0 && WSAGetLastError() == WSAEWOULDBLOCK) return -2;
    return n == 0 && win_stdin_error == 0 ? 0 : -1;
}

static const char *input_errtext(void)
{
    static char buf[48];
    snprintf(buf, sizeof buf, "error %ld", win_stdin_error ? (long)win_stdin_error : (long)WSAGetLastError());
    return buf;
}

/* select() fails at once when every set is empty (and wants NULL for an
 * empty one): then just sleep until the timer. */
static int wait_select(fd_set *rd, fd_set *wr, fd_set *ex, int nfds, long t)
{
    struct timeval tv;
    (void)nfds;
    if (!rd->fd_count && !wr->fd_count && !ex->fd_count) {
        sleep_ms(t < 0 ? SIGNAL_CHECK_MS : (unsigned)t);
        return 0;
    }
    tv.tv_sec = t / 1000;
    tv.tv_usec = (t % 1000) * 1000;
    return select(0, rd->fd_count ? rd : NULL, wr->fd_count ? wr : NULL, ex->fd_count ? ex : NULL, t < 0 ? NULL : &tv);
}

/* Starts "cmd.exe /d /s /c CMD" with the variables set (in kacat's own
 * environment, which the child copies; the input thread never reads it),
 * stdin from NUL, stdout and stderr to kacat's stderr. */
static proc_t proc_spawn(const char *cmd, const env_var *env, size_t nenv, char *err, size_t errlen)
{
    SECURITY_ATTRIBUTES sa;
    STARTUPINFOA si;
    PROCESS_INFORMATION pi;
    HANDLE nul;
    size_t i, len = strlen(cmd) + sizeof HOOK_SHELL + 4;
    char *line = (char *)malloc(len);
    BOOL ok;
    if (!line) { snprintf(err, errlen, "out of memory"); return NULL; }
    snprintf(line, len, "%s \"%s\"", HOOK_SHELL, cmd);
    for (i = 0; i < nenv; i++) SetEnvironmentVariableA(env[i].name, env[i].value);
    sa.nLength = sizeof sa;
    sa.lpSecurityDescriptor = NULL;
    sa.bInheritHandle = TRUE;
    nul = CreateFileA("NUL", GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE, &sa, OPEN_EXISTING, 0, NULL);
    memset(&si, 0, sizeof si);
    si.cb = sizeof si;
    si.dwFlags = STARTF_USESTDHANDLES;
    si.hStdInput = nul;
    si.hStdOutput = si.hStdError = GetStdHandle(STD_ERROR_HANDLE);
    ok = CreateProcessA(NULL, line, NULL, NULL, TRUE, 0, NULL, NULL, &si, &pi);
    if (!ok) snprintf(err, errlen, "CreateProcess: error %lu", (unsigned long)GetLastError());
    if (nul != INVALID_HANDLE_VALUE) CloseHandle(nul);
    free(line);
    if (!ok) return NULL;
    CloseHandle(pi.hThread);
    return pi.hProcess;
}

/* 0 still running; 1 ended with *code (*signo is always 0 here). */
static int proc_poll(proc_t p, unsigned long *code, int *signo)
{
    DWORD c = 0;
    if (WaitForSingleObject(p, 0) == WAIT_TIMEOUT) return 0;
    GetExitCodeProcess(p, &c);
    CloseHandle(p);
    *code = c;
    *signo = 0;
    return 1;
}

#else /* POSIX */

#define _POSIX_C_SOURCE 200809L
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "ka_client.h"

typedef pid_t proc_t;                   /* 0: no process */
#define HOOK_SHELL "/bin/sh -c"
#define HOOK_NOT_FOUND 127u             /* sh: command not found, or not executable */
#define SIGNAL_CHECK_MS (-1)            /* signals interrupt select() with EINTR */
#define SOCK_EINTR EINTR

#define SE(e) { e, #e }
static const struct sock_errname { int e; const char *name; } sock_errnames[] = {
    SE(ECONNRESET), SE(ECONNREFUSED), SE(ETIMEDOUT), SE(EPIPE), SE(ECONNABORTED), SE(EHOSTUNREACH),
    SE(ENETUNREACH), SE(ENETDOWN), SE(ENETRESET), SE(EADDRNOTAVAIL), SE(EACCES), SE(EPERM),
#ifdef EHOSTDOWN
    SE(EHOSTDOWN),
#endif
};
#undef SE

static unsigned long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000u + (unsigned long long)ts.tv_nsec / 1000000u;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
}

static int sock_errno(void) { return errno; }
static const char *sock_errtext(int e) { return strerror(e); }

static void clock_text(char *buf, size_t n)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    snprintf(buf, n, "%02d:%02d:%02d.%d", tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ts.tv_nsec / 100000000L));
}

static int platform_init(void) { return 0; }

/* No SA_RESTART: select() must return EINTR. */
static void catch_signals(void (*handler)(int))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

static int input_start(void) { return fcntl(0, F_GETFD) != -1; }   /* 0: stdin closed */
static ka_socket input_fd(void) { return 0; }
static int sock_nfds(ka_socket s) { return s + 1; }

/* > 0 bytes, 0 end of input, -1 error (input_errtext), -2 nothing yet. */
static long input_read(void *buf, size_t len)
{
    ssize_t n = read(0, buf, len);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return -2;
    return (long)n;
}

static const char *input_errtext(void) { return strerror(errno); }

static int wait_select(fd_set *rd, fd_set *wr, fd_set *ex, int nfds, long t)
{
    struct timeval tv;
    tv.tv_sec = t / 1000;
    tv.tv_usec = (t % 1000) * 1000;
    return select(nfds, rd, wr, ex, t < 0 ? NULL : &tv);
}

/* The hook must not eat kacat's stdin nor write into the server's byte
 * stream on stdout, so its stdin is /dev/null and its stdout kacat's
 * stderr. kacat is single-threaded, so setenv after fork is safe. */
static proc_t proc_spawn(const char *cmd, const env_var *env, size_t nenv, char *err, size_t errlen)
{
    pid_t pid;
    size_t i;
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid < 0) { snprintf(err, errlen, "fork: %s", strerror(errno)); return 0; }
    if (pid == 0) {
        int fd = open("/dev/null", O_RDONLY);
        if (fd >= 0) { dup2(fd, 0); if (fd > 2) close(fd); }
        dup2(2, 1);
        for (i = 0; i < nenv; i++) setenv(env[i].name, env[i].value, 1);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* 0 still running; 1 ended with exit status *code, or killed by *signo. */
static int proc_poll(proc_t p, unsigned long *code, int *signo)
{
    int st;
    pid_t r = waitpid(p, &st, WNOHANG);
    if (r == 0) return 0;
    *code = r == p && WIFEXITED(st) ? (unsigned long)WEXITSTATUS(st) : 0;
    *signo = r == p && WIFSIGNALED(st) ? WTERMSIG(st) : 0;
    return 1;
}

#endif /* _WIN32 */

#define EXIT_RUNTIME 1
#define EXIT_USAGE   2
#define EXIT_GAVE_UP 3

#define CHUNK      65536        /* largest read from stdin */
#define MAX_HOOKS  16           /* hook processes running at once */
#define HOOK_GRACE_MS 1000      /* at exit, how long to wait for running hooks */

typedef struct hook { proc_t proc; const char *event; } hook;

typedef struct app {
    ka_config cfg;
    ka_client *c;
    /* options that are kacat's own */
    const char *heartbeat_text;
    const char *exec_cmd;
    unsigned linger_ms;
    int quiet, verbose, timestamps;
    char heartbeat[1024];       /* heartbeat_text with escapes decoded */
    /* input: one chunk read from stdin and not yet accepted by the queue */
    unsigned char in[CHUNK];
    size_t inlen;
    int in_eof, in_error;
    /* what has been said, so each notice is given once per outage */
    int said_waiting, said_full, said_eof_wait, just_lost;
    /* finishing: ka_client_finish called; half_closed: it sent the FIN
     * and the linger runs until linger_until */
    int finishing, half_closed, done, exit_code;
    unsigned long long linger_until;
    hook hooks[MAX_HOOKS];
} app;

static volatile sig_atomic_t got_signal;

/* ---- status words ---------------------------------------------------------- */

/* Status lines go to stderr so stdout stays the server's byte stream. One
 * fputs per line: stderr is unbuffered, and a line written in pieces would
 * interleave with other processes writing to the same terminal. */
static void vsay(const app *a, const char *fmt, va_list ap)
{
    char line[1024];
    size_t n = 0;
    n += (size_t)snprintf(line, sizeof line, "kacat: ");
    if (a->timestamps) {
        char t[32];
        clock_text(t, sizeof t);
        n += (size_t)snprintf(line + n, sizeof line - n, "%s ", t);
    }
    vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
    strcat(line, "\n");
    fputs(line, stderr);
}

/* say(): progress, silenced by --quiet. warn(): always shown. */
static void say(const app *a, const char *fmt, ...)
{
    va_list ap;
    if (a->quiet) return;
    va_start(ap, fmt);
    vsay(a, fmt, ap);
    va_end(ap);
}

static void warn(const app *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsay(a, fmt, ap);
    va_end(ap);
}

/* Symbolic names for the errors a connection can end with: "ECONNRESET"
 * tells a user more than "104" or a sentence from strerror(). */
static const char *errno_name(int e)
{
    size_t i;
    for (i = 0; i < sizeof sock_errnames / sizeof sock_errnames[0]; i++)
        if (sock_errnames[i].e == e) return sock_errnames[i].name;
    return NULL;
}

/* "peer reset (ECONNRESET)", "refused (ECONNREFUSED)", "peer closed". */
static const char *cause_text(char *buf, size_t n, ka_reason r, int err)
{
    const char *name = err ? errno_name(err) : NULL;
    if (r == KA_REASON_RESOLVE && err) snprintf(buf, n, "%s (%s)", ka_reason_str(r), gai_strerror(err));
    else if (name) snprintf(buf, n, "%s (%s)", ka_reason_str(r), name);
    else if (err) snprintf(buf, n, "%s (%s)", ka_reason_str(r), sock_errtext(err));
    else snprintf(buf, n, "%s", ka_reason_str(r));
    return buf;
}

/* "1.4 s", or "250 ms" where tenths of a second would round to nothing. */
static const char *duration_text(char *buf, size_t n, unsigned ms)
{
    if (ms < 1000) snprintf(buf, n, "%u ms", ms);
    else snprintf(buf, n, "%.1f s", ms / 1000.0);
    return buf;
}

/* Script-friendly spelling of a reason for KA_REASON: no spaces. */
static const char *reason_token(ka_reason r)
{
    static const char *const t[] = {
        "none", "peer_closed", "peer_reset", "timeout", "unreachable", "refused",
        "connect_timeout", "resolve", "heartbeat", "local", "error"
    };
    return (unsigned)r < sizeof t / sizeof t[0] ? t[r] : "unknown";
}

/* ---- options ---------------------------------------------------------------- */

enum opt_kind { OT_UINT, OT_DOUBLE, OT_SIZE, OT_TEXT, OT_FLAG };

typedef struct opt {
    const char *name;           /* long name, without "--" */
    char letter;                /* short alias, 0 if none */
    enum opt_kind kind;
    void *dst;
    const char *arg, *help;
} opt;

/* The option table, pointing into a. One table serves parsing and --help,
 * whose defaults are read from a freshly initialised app. */
static size_t options_of(app *a, opt *t)
{
    ka_config *k = &a->cfg;
    size_t n = 0;
#define OPT(nm, l, kd, d, ar, h) do { t[n].name = nm; t[n].letter = l; t[n].kind = kd; \
        t[n].dst = d; t[n].arg = ar; t[n].help = h; n++; } while (0)
    OPT("keepalive-idle", 0, OT_UINT, &k->keepalive_idle_ms, "MS", "idle time before the first keepalive probe");
    OPT("keepalive-interval", 0, OT_UINT, &k->keepalive_interval_ms, "MS", "time between keepalive probes");
    OPT("keepalive-count", 0, OT_UINT, &k->keepalive_count, "N", "unanswered probes before the connection is dead");
    OPT("user-timeout", 0, OT_UINT, &k->user_timeout_ms, "MS", "max time sent data may stay unacked (0: idle+interval*count)");
    OPT("connect-timeout", 0, OT_UINT, &k->connect_timeout_ms, "MS", "give up on one connect attempt after this long");
    OPT("backoff-initial", 0, OT_UINT, &k->backoff_initial_ms, "MS", "delay before the first retry");
    OPT("backoff-max", 0, OT_UINT, &k->backoff_max_ms, "MS", "no retry delay exceeds this");
    OPT("backoff-multiplier", 0, OT_DOUBLE, &k->backoff_multiplier, "X", "each further retry waits X times longer");
    OPT("backoff-jitter", 0, OT_DOUBLE, &k->backoff_jitter, "X", "0..1: each delay is drawn from [d*(1-X), d]");
    OPT("backoff-reset", 0, OT_UINT, &k->backoff_reset_ms, "MS", "a connection up this long resets the attempt count");
    OPT("max-attempts", 'n', OT_UINT, &k->max_attempts, "N", "give up (exit 3) after N failed attempts (0: never)");
    OPT("heartbeat", 0, OT_TEXT, &a->heartbeat_text, "TEXT", "bytes to send when idle; \\n \\r \\t \\\\ \\xHH escapes");
    OPT("heartbeat-interval", 0, OT_UINT, &k->heartbeat_interval_ms, "MS", "send the heartbeat after this long without sending (0: off)");
    OPT("idle-timeout", 0, OT_UINT, &k->idle_timeout_ms, "MS", "reconnect after this long without receiving (0: off)");
    OPT("send-buffer", 0, OT_SIZE, &k->send_buffer_size, "BYTES", "size of the send queue; input waits while it is full");
    OPT("recv-buffer", 0, OT_SIZE, &k->recv_buffer_size, "BYTES", "largest chunk read from the server at once");
    OPT("linger", 0, OT_UINT, &a->linger_ms, "MS", "at the end, wait this long for the server to close");
    OPT("exec", 'e', OT_TEXT, &a->exec_cmd, "CMD", "run CMD with " HOOK_SHELL " on every event (see below)");
    OPT("quiet", 'q', OT_FLAG, &a->quiet, NULL, "only warnings and errors on stderr");
    OPT("verbose", 'v', OT_FLAG, &a->verbose, NULL, "also the library's diagnostics (keepalive options, attempts)");
    OPT("timestamps", 'T', OT_FLAG, &a->timestamps, NULL, "prefix status lines with the time of day");
#undef OPT
    return n;
}

#define MAX_OPTS 32

static void app_defaults(app *a)
{
    memset(a, 0, sizeof *a);
    ka_config_init(&a->cfg);
    a->linger_ms = 2000;
}

static void print_value(const opt *o)
{
    switch (o->kind) {
    case OT_UINT:   printf("%u", *(unsigned *)o->dst); break;
    case OT_DOUBLE: printf("%g", *(double *)o->dst); break;
    case OT_SIZE:   printf("%lu", (unsigned long)*(size_t *)o->dst); break;
    case OT_TEXT:   printf("%s", *(const char **)o->dst ? *(const char **)o->dst : "none"); break;
    case OT_FLAG:   break;
    }
}

static void usage(FILE *f)
{
    fputs("usage: kacat [options] HOST PORT\n"
          "Sends stdin to HOST:PORT and prints what the server sends; reconnects when\n"
          "the connection drops and queues input meanwhile. Status goes to stderr.\n", f);
    if (f == stderr) fputs("Try 'kacat --help' for the options.\n", f);
}

static void help(void)
{
    app *d = (app *)malloc(sizeof *d);
    opt t[MAX_OPTS];
    size_t n, i;
    if (!d) exit(EXIT_RUNTIME);
    app_defaults(d);
    n = options_of(d, t);
    usage(stdout);
    printf("\nOptions (MS = milliseconds; defaults in brackets):\n");
    for (i = 0; i < n; i++) {
        char left[64];
        if (t[i].letter) snprintf(left, sizeof left, "-%c, --%s%s%s", t[i].letter, t[i].name, t[i].arg ? " " : "", t[i].arg ? t[i].arg : "");
        else snprintf(left, sizeof left, "    --%s%s%s", t[i].name, t[i].arg ? " " : "", t[i].arg ? t[i].arg : "");
        printf("  %-30s %s", left, t[i].help);
        if (t[i].kind != OT_FLAG) { printf(" ["); print_value(&t[i]); printf("]"); }
        printf("\n");
    }
    printf("  %-30s %s\n", "-h, --help", "this text");
    printf("\nEnd of input: once everything is sent (after a reconnect if need be), kacat\n"
           "half-closes the connection, prints what the server still sends (until it\n"
           "closes, or --linger), exits 0. Empty input still waits for a connection.\n"
           "Exit status: 0 all input sent, 1 runtime error, 2 bad usage, 3 gave up.\n"
           "\n--exec CMD runs on connect, disconnect, retry and give_up, without kacat\n"
           "waiting for it; its stdout goes to kacat's stderr. Environment:\n"
           "  KA_EVENT      connect | disconnect | retry | give_up\n"
           "  KA_REASON     peer_closed, peer_reset, timeout, refused, ... (none on connect)\n"
           "  KA_ERRNO      the system error number, 0 if none\n"
           "  KA_ATTEMPT    retry number (retry, give_up), else 0\n"
           "  KA_DELAY_MS   delay before the next attempt (retry), else 0\n"
           "  KA_HOST, KA_PORT as given on the command line\n"
           "Example: kacat --exec 'logger \"kacat: $KA_EVENT $KA_REASON\"' 127.0.0.1 6379\n");
    free(d);
}

static int parse_uint(const char *s, unsigned long long max, unsigned long long *out)
{
    char *end;
    unsigned long long v;
    if (*s < '0' || *s > '9') return -1;    /* strtoull would take "-1" */
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || *end || v > max) return -1;
    *out = v;
    return 0;
}

static int set_value(const opt *o, const char *val)
{
    unsigned long long u;
    double d;
    char *end;
    switch (o->kind) {
    case OT_UINT:
        if (parse_uint(val, UINT_MAX, &u)) return -1;
        *(unsigned *)o->dst = (unsigned)u;
        return 0;
    case OT_SIZE:
        if (parse_uint(val, (size_t)-1, &u)) return -1;
        *(size_t *)o->dst = (size_t)u;
        return 0;
    case OT_DOUBLE:
        errno = 0;
        d = strtod(val, &end);
        if (errno || *end || end == val || d != d) return -1;
        *(double *)o->dst = d;
        return 0;
    case OT_TEXT:
        *(const char **)o->dst = val;
        return 0;
    case OT_FLAG:
        *(int *)o->dst = 1;
        return 0;
    }
    return -1;
}

static const opt *find_opt(const opt *t, size_t n, const char *arg, size_t namelen)
{
    size_t i;
    for (i = 0; i < n; i++) {
        if (arg[1] != '-' && arg[1] == t[i].letter && arg[2] == 0) return &t[i];
        if (arg[1] == '-' && strlen(t[i].name) == namelen && strncmp(arg + 2, t[i].name, namelen) == 0) return &t[i];
    }
    return NULL;
}

static int bad_usage(const char *fmt, const char *what)
{
    fputs("kacat: ", stderr);
    fprintf(stderr, fmt, what);
    fputc('\n', stderr);
    usage(stderr);
    return -1;
}

/* HOST, then PORT. */
static int positional(app *a, int *npos, const char *arg)
{
    if (*npos == 2) return bad_usage("unexpected argument '%s'", arg);
    if ((*npos)++ == 0) a->cfg.host = arg;
    else a->cfg.port = arg;
    return 0;
}

/* Accepts --name VALUE, --name=VALUE and -x VALUE. Returns 0, 1 for --help,
 * -1 on bad usage (already reported). */
static int parse_args(app *a, int argc, char **argv)
{
    opt t[MAX_OPTS];
    size_t n = options_of(a, t);
    int i, npos = 0;
    for (i = 1; i < argc; i++) {
        const char *arg = argv[i], *val = NULL, *eq;
        const opt *o;
        size_t namelen;
        if (strcmp(arg, "--") == 0) { i++; break; }
        if (arg[0] != '-' || arg[1] == 0) {
            if (positional(a, &npos, arg) != 0) return -1;
            continue;
        }
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) return 1;
        eq = arg[1] == '-' ? strchr(arg, '=') : NULL;
        namelen = eq ? (size_t)(eq - arg - 2) : strlen(arg) - 2;
        o = find_opt(t, n, arg, namelen);
        if (!o) return bad_usage("unknown option '%s'", arg);
        if (o->kind != OT_FLAG) {
            if (eq) val = eq + 1;
            else if (i + 1 < argc) val = argv[++i];
            else return bad_usage("option '%s' needs a value", arg);
        } else if (eq) {
            return bad_usage("option '%s' takes no value", arg);
        }
        if (set_value(o, val) != 0) return bad_usage("bad value for '%s'", arg);
    }
    for (; i < argc; i++)
        if (positional(a, &npos, argv[i]) != 0) return -1;
    if (npos < 2) return bad_usage("%s", "HOST and PORT are required");
    return 0;
}

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* Decodes \n \r \t \\ \xHH so a heartbeat like "PING\r\n" can be typed. */
static long unescape(const char *s, char *out, size_t cap)
{
    size_t n = 0;
    while (*s) {
        int ch = (unsigned char)*s++;
        if (ch == '\\' && *s) {
            int e = (unsigned char)*s++;
            if (e == 'n') ch = '\n';
            else if (e == 'r') ch = '\r';
            else if (e == 't') ch = '\t';
            else if (e == 'x' && hexval(s[0]) >= 0 && hexval(s[1]) >= 0) { ch = hexval(s[0]) * 16 + hexval(s[1]); s += 2; }
            else ch = e;
        }
        if (n == cap) return -1;
        out[n++] = (char)ch;
    }
    return (long)n;
}

/* kacat's own checks, with messages naming the option; the library's
 * ka_client_new rejects the rest. */
static int check_config(app *a)
{
    if (a->heartbeat_text) {
        long n = unescape(a->heartbeat_text, a->heartbeat, sizeof a->heartbeat);
        if (n <= 0) return bad_usage("%s", "--heartbeat: empty, or longer than 1024 bytes");
        a->cfg.heartbeat_data = a->heartbeat;
        a->cfg.heartbeat_len = (size_t)n;
    }
    if (a->cfg.heartbeat_interval_ms && !a->heartbeat_text)
        return bad_usage("%s", "--heartbeat-interval needs --heartbeat TEXT");
    if (a->heartbeat_text && !a->cfg.heartbeat_interval_ms)
        return bad_usage("%s", "--heartbeat needs --heartbeat-interval MS");
    if (a->cfg.backoff_initial_ms > a->cfg.backoff_max_ms)
        return bad_usage("%s", "--backoff-initial must not exceed --backoff-max");
    return 0;
}

/* ---- hooks (--exec) ------------------------------------------------------------ */

/* Starts the hook and returns at once: a slow notifier must never hold up
 * the connection. hooks_reap() collects it later. */
static void hook_run(app *a, const char *event, ka_reason r, int err, unsigned attempt, unsigned delay_ms)
{
    char num[3][24], why[128];
    env_var env[7];
    proc_t p;
    int i;
    if (!a->exec_cmd) return;
    for (i = 0; i < MAX_HOOKS && a->hooks[i].proc; i++) { }
    if (i == MAX_HOOKS) {
        warn(a, "hook not run for %s: %d earlier hooks are still running", event, MAX_HOOKS);
        return;
    }
    snprintf(num[0], sizeof num[0], "%d", err);
    snprintf(num[1], sizeof num[1], "%u", attempt);
    snprintf(num[2], sizeof num[2], "%u", delay_ms);
    env[0].name = "KA_EVENT";    env[0].value = event;
    env[1].name = "KA_REASON";   env[1].value = reason_token(r);
    env[2].name = "KA_ERRNO";    env[2].value = num[0];
    env[3].name = "KA_ATTEMPT";  env[3].value = num[1];
    env[4].name = "KA_DELAY_MS"; env[4].value = num[2];
    env[5].name = "KA_HOST";     env[5].value = a->cfg.host;
    env[6].name = "KA_PORT";     env[6].value = a->cfg.port;
    p = proc_spawn(a->exec_cmd, env, sizeof env / sizeof env[0], why, sizeof why);
    if (!p) { warn(a, "hook not run for %s: %s", event, why); return; }
    a->hooks[i].proc = p;
    a->hooks[i].event = event;
}

static void hook_report(const app *a, const hook *h, unsigned long code, int signo)
{
    if (signo)
        warn(a, "hook for %s killed by signal %d", h->event, signo);
    else if (code == HOOK_NOT_FOUND)
        warn(a, "hook for %s: exit status %lu (command not found, or %s could not run it)", h->event, code, HOOK_SHELL);
    else if (code != 0)
        warn(a, "hook for %s failed: exit status %lu", h->event, code);
}

/* Collects finished hooks without blocking; returns how many still run. */
static int hooks_reap(app *a)
{
    int i, running = 0, signo;
    unsigned long code;
    for (i = 0; i < MAX_HOOKS; i++) {
        if (!a->hooks[i].proc) continue;
        if (!proc_poll(a->hooks[i].proc, &code, &signo)) { running++; continue; }
        hook_report(a, &a->hooks[i], code, signo);
        a->hooks[i].proc = 0;
    }
    return running;
}

/* At exit: give running hooks (e.g. the give_up notification) a moment so
 * their failures are still reported, but never wait long. */
static void hooks_finish(app *a)
{
    unsigned long long end = now_ms() + HOOK_GRACE_MS;
    int running;
    while ((running = hooks_reap(a)) > 0 && now_ms() < end) sleep_ms(20);
    if (running) say(a, "%d hook%s still running; not waiting for %s", running, running > 1 ? "s" : "", running > 1 ? "them" : "it");
}

/* ---- input ------------------------------------------------------------------------ */

static size_t queue_room(const app *a)
{
    size_t pending = ka_client_pending(a->c);
    return pending < a->cfg.send_buffer_size ? a->cfg.send_buffer_size - pending : 0;
}

/* Backpressure: read stdin only when the chunk before has been queued and
 * the queue has room for more. */
static int input_wanted(const app *a)
{
    return !a->in_eof && a->inlen == 0 && queue_room(a) > 0;
}

static void input_take(app *a)
{
    size_t room = queue_room(a);
    long n = input_read(a->in, room < sizeof a->in ? room : sizeof a->in);
    if (n > 0) { a->inlen = (size_t)n; return; }
    if (n == -2) return;
    if (n < 0) { warn(a, "reading stdin: %s; treating it as the end of input", input_errtext()); a->in_error = 1; }
    a->in_eof = 1;
    if (a->verbose) say(a, "input ended");
}

/* Hands the held chunk to the client. KA_EAGAIN keeps it for the next round. */
static void input_push(app *a)
{
    int rc, connected = ka_client_state(a->c) == KA_STATE_CONNECTED;
    if (!a->inlen) return;
    rc = ka_client_send(a->c, a->in, a->inlen);
    if (rc == 0) {
        a->inlen = 0;
        if (!connected && !a->said_waiting) {
            say(a, "waiting for the connection; input is queued (%lu bytes so far)", (unsigned long)ka_client_pending(a->c));
            a->said_waiting = 1;
        }
    } else if (rc != KA_EAGAIN) {       /* KA_EAGAIN: keep the chunk for the next round */
        warn(a, "cannot queue input: %s", ka_strerror(rc));
        a->done = 1;
        a->exit_code = EXIT_RUNTIME;
    }
}

/* Input is paused while the queue is full; say so once per outage, since
 * then it is waiting on the reconnect, not just on a busy connection. */
static void note_backpressure(app *a)
{
    if (a->said_full || a->in_eof || ka_client_state(a->c) == KA_STATE_CONNECTED) return;
    if (a->inlen == 0 && queue_room(a) > 0) return;
    say(a, "send queue full (%lu bytes); not reading input until the connection is back",
        (unsigned long)ka_client_pending(a->c));
    a->said_full = 1;
}

/* ---- callbacks ------------------------------------------------------------------- */

/* The numeric peer address when HOST was a name: "localhost (127.0.0.1)". */
static void peer_suffix(const app *a, char *buf, size_t n)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char addr[64];
    buf[0] = 0;
    if (getpeername(ka_client_socket(a->c), (struct sockaddr *)&ss, &sl) != 0) return;
    if (getnameinfo((struct sockaddr *)&ss, sl, addr, sizeof addr, NULL, 0, NI_NUMERICHOST) != 0) return;
    if (strcmp(addr, a->cfg.host) != 0) snprintf(buf, n, " (%s)", addr);
}

static void on_connect(ka_client *c, void *user)
{
    app *a = (app *)user;
    char peer[80];
    size_t pending = ka_client_pending(c);
    peer_suffix(a, peer, sizeof peer);
    say(a, "connected to %s:%s%s", a->cfg.host, a->cfg.port, peer);
    if (pending) say(a, "sending %lu bytes queued while disconnected", (unsigned long)pending);
    a->said_waiting = a->said_full = a->just_lost = 0;
    hook_run(a, "connect", KA_REASON_NONE, 0, 0, 0);
}

static void on_data(ka_client *c, const void *data, size_t len, void *user)
{
    app *a = (app *)user;
    if (fwrite(data, 1, len, stdout) != len || fflush(stdout) != 0) {
        warn(a, "writing stdout: %s", strerror(errno));
        a->done = 1;
        a->exit_code = EXIT_RUNTIME;
        ka_client_stop(c);
    }
}

/* The connection that ka_client_finish was ending is gone, and the client
 * stopped. After the half-close the server closing is the normal end; a
 * reset means it may not have taken the last bytes; an idle timeout
 * (--idle-timeout) just ends the wait early. */
static int finished_cleanly(const ka_disconnect_info *di)
{
    return (di->reason == KA_REASON_PEER_CLOSED || di->reason == KA_REASON_LOCAL ||
            di->reason == KA_REASON_HEARTBEAT) && di->unsent_bytes == 0;
}

static void finish_on_disconnect(app *a, const ka_disconnect_info *di)
{
    char cause[128];
    if (di->unsent_bytes)
        warn(a, "%lu bytes of input were dropped: the connection died while they were being sent",
             (unsigned long)di->unsent_bytes);
    if (!finished_cleanly(di)) {
        warn(a, "connection lost while finishing: %s; the server may not have received the last bytes",
             cause_text(cause, sizeof cause, di->reason, di->sys_error));
        a->exit_code = EXIT_RUNTIME;
    } else if (di->reason == KA_REASON_PEER_CLOSED && a->verbose) {
        say(a, "server closed the connection");
    }
    a->done = 1;
}

static void on_disconnect(ka_client *c, const ka_disconnect_info *di, void *user)
{
    app *a = (app *)user;
    char cause[128];
    if (a->done) return;        /* our own ka_client_stop: nothing to tell */
    if (a->finishing && ka_client_state(c) == KA_STATE_STOPPED) {
        finish_on_disconnect(a, di);    /* the end; the client makes no retry */
        return;
    }
    say(a, "connection lost after %.1f s: %s", di->connected_ms / 1000.0,
        cause_text(cause, sizeof cause, di->reason, di->sys_error));
    if (di->unsent_bytes)
        warn(a, "%lu bytes of input were dropped: the connection died while they were being sent",
             (unsigned long)di->unsent_bytes);
    a->just_lost = 1;
    hook_run(a, "disconnect", di->reason, di->sys_error, 0, 0);
}

static void on_retry(ka_client *c, const ka_retry_info *ri, void *user)
{
    app *a = (app *)user;
    char cause[128];
    char delay[32];
    (void)c;
    duration_text(delay, sizeof delay, ri->delay_ms);
    if (a->just_lost)
        say(a, "reconnecting in %s (attempt %u)", delay, ri->attempt);
    else
        say(a, "connect failed: %s; retrying in %s (attempt %u)",
            cause_text(cause, sizeof cause, ri->reason, ri->sys_error), delay, ri->attempt);
    a->just_lost = 0;
    hook_run(a, "retry", ri->reason, ri->sys_error, ri->attempt, ri->delay_ms);
}

static void on_give_up(ka_client *c, const ka_retry_info *ri, void *user)
{
    app *a = (app *)user;
    char cause[128];
    size_t unsent = ka_client_pending(c) + a->inlen;
    warn(a, "gave up after %u attempt%s: %s", ri->attempt, ri->attempt == 1 ? "" : "s",
         cause_text(cause, sizeof cause, ri->reason, ri->sys_error));
    if (unsent) warn(a, "%lu bytes of input were never sent", (unsigned long)unsent);
    a->done = 1;
    a->exit_code = EXIT_GAVE_UP;
    hook_run(a, "give_up", ri->reason, ri->sys_error, ri->attempt, 0);
}

static void on_log(ka_client *c, int level, const char *msg, void *user)
{
    app *a = (app *)user;
    (void)c;
    if (level >= KA_LOG_WARN) warn(a, "%s", msg);
    else if (a->verbose) say(a, "%s", msg);
}

/* ---- the loop ------------------------------------------------------------------------- */

/* End of input, once the last chunk is queued: ka_client_finish delivers
 * the queue and half-closes; kacat watches for that (nothing pending on a
 * live connection) and then lingers for the server's last words. With
 * nothing queued and no connection, finish would stop at once: kacat first
 * waits for a connection instead (see the top of this file). */
static void finish_if_done(app *a)
{
    ka_state st = ka_client_state(a->c);
    size_t pending = ka_client_pending(a->c);
    if (!a->in_eof || a->inlen || a->done) return;
    if (st != KA_STATE_CONNECTED && pending && !a->said_eof_wait) {
        say(a, "input ended; %lu bytes wait for the connection", (unsigned long)pending);
        a->said_eof_wait = 1;
    }
    if (!a->finishing) {
        int rc;
        if (!pending && st != KA_STATE_CONNECTED) return;
        rc = ka_client_finish(a->c);
        if (rc != 0) {
            warn(a, "cannot finish: %s", ka_strerror(rc));
            a->done = 1;
            a->exit_code = EXIT_RUNTIME;
            return;
        }
        a->finishing = 1;
        st = ka_client_state(a->c);
        pending = ka_client_pending(a->c);
    }
    if (!a->half_closed) {
        if (st != KA_STATE_CONNECTED || pending) return;     /* still delivering */
        a->half_closed = 1;
        a->linger_until = now_ms() + a->linger_ms;
        if (a->verbose) say(a, "all input sent; half-closed, waiting up to %.1f s for the server to close", a->linger_ms / 1000.0);
    }
    if (now_ms() >= a->linger_until) { a->done = 1; ka_client_stop(a->c); }
}

/* How long the next wait may last: the client's next timer, the linger
 * deadline, a short cap while hooks run so their exits are reported, and
 * where signals do not interrupt select() (Windows), SIGNAL_CHECK_MS. */
static long wait_ms(const app *a, int hooks_running)
{
    long t = ka_client_timeout_ms(a->c);
    if (a->half_closed) {
        unsigned long long now = now_ms();
        long d = a->linger_until > now ? (long)(a->linger_until - now) : 0;
        if (t < 0 || d < t) t = d;
    }
    if (hooks_running && (t < 0 || t > 100)) t = 100;
    if (SIGNAL_CHECK_MS >= 0 && (t < 0 || t > SIGNAL_CHECK_MS)) t = SIGNAL_CHECK_MS;
    return t;
}

/* A socket numbered >= FD_SETSIZE cannot go in an fd_set: wait with poll()
 * and report readiness through ka_client_process_events. Returns whether
 * stdin is readable. (POSIX only in practice: a Windows fd_set holds any
 * socket while there is room.) */
static int wait_poll(app *a, int want_in, long t)
{
    struct pollfd p[2];
    int want = ka_client_want(a->c), ready = 0, n, np = 0, in_at = -1;
    p[np].fd = ka_client_socket(a->c);
    p[np].events = (short)(((want & KA_READ) ? POLLIN : 0) | ((want & KA_WRITE) ? POLLOUT : 0));
    p[np++].revents = 0;
    if (want_in) {
        in_at = np;
        p[np].fd = input_fd();
        p[np].events = POLLIN;
        p[np++].revents = 0;
    }
    n = poll(p, (unsigned)np, t < 0 ? -1 : t > INT_MAX ? INT_MAX : (int)t);
    if (n < 0 && sock_errno() != SOCK_EINTR) {
        warn(a, "poll: %s", sock_errtext(sock_errno()));
        a->done = 1;
        a->exit_code = EXIT_RUNTIME;
        return 0;
    }
    if (n > 0) {
        if (p[0].revents & (POLLIN | POLLERR | POLLHUP)) ready |= KA_READ;
        if (p[0].revents & (POLLOUT | POLLERR)) ready |= KA_WRITE;
    }
    ka_client_process_events(a->c, ready);
    return n > 0 && in_at >= 0 && p[in_at].revents != 0;
}

/* One round: wait on stdin (when we want input) and the client's socket or
 * timer, let the client work, then move input into its queue. The
 * exception set is where Windows reports a failed connect. */
static void loop_once(app *a)
{
    fd_set rd, wr, ex;
    int want_in = input_wanted(a), in_ready = 0, nfds, n;
    long t = wait_ms(a, hooks_reap(a));
    FD_ZERO(&rd);
    FD_ZERO(&wr);
    FD_ZERO(&ex);
    nfds = ka_client_fdset_ex(a->c, &rd, &wr, &ex);
    if (nfds == KA_EFDSETSIZE) {
        in_ready = wait_poll(a, want_in, t);
    } else {
        if (want_in) {
            FD_SET(input_fd(), &rd);
            if (sock_nfds(input_fd()) > nfds) nfds = sock_nfds(input_fd());
        }
        n = wait_select(&rd, &wr, &ex, nfds, t);
        if (n < 0) {
            int e = sock_errno();
            if (e != SOCK_EINTR) { warn(a, "select: %s", sock_errtext(e)); a->done = 1; a->exit_code = EXIT_RUNTIME; return; }
            ka_client_process(a->c, NULL, NULL);    /* the sets are undefined now: run timers only */
        } else {
            in_ready = want_in && FD_ISSET(input_fd(), &rd);
            ka_client_process_ex(a->c, &rd, &wr, &ex);
        }
    }
    if (in_ready && !a->done) input_take(a);
    if (!a->done) input_push(a);
    note_backpressure(a);
    finish_if_done(a);
}

/* SIGINT/SIGTERM end the loop so kacat can say what was left unsent. */
static void on_signal(int sig) { got_signal = sig; }

static int run(app *a)
{
    while (!a->done && !got_signal) loop_once(a);
    if (got_signal) {
        size_t unsent = ka_client_pending(a->c) + a->inlen;
        a->done = 1;            /* on_disconnect: no "connection lost" for our own stop */
        if (unsent) warn(a, "interrupted; %lu bytes of input were not sent", (unsigned long)unsent);
        a->exit_code = 128 + (int)got_signal;
    }
    ka_client_stop(a->c);
    hooks_finish(a);
    if (a->exit_code == 0 && a->in_error) a->exit_code = EXIT_RUNTIME;
    return a->exit_code;
}

static void set_callbacks(app *a)
{
    a->cfg.cb.on_connect = on_connect;
    a->cfg.cb.on_data = on_data;
    a->cfg.cb.on_disconnect = on_disconnect;
    a->cfg.cb.on_retry = on_retry;
    a->cfg.cb.on_give_up = on_give_up;
    a->cfg.cb.on_log = on_log;
    a->cfg.user = a;
}

int main(int argc, char **argv)
{
    app *a = (app *)malloc(sizeof *a);   /* holds a 64 KiB input chunk: not on the stack */
    int rc;
    if (!a) { fputs("kacat: out of memory\n", stderr); return EXIT_RUNTIME; }
    if (platform_init() != 0) { fputs("kacat: cannot start Winsock\n", stderr); free(a); return EXIT_RUNTIME; }
    app_defaults(a);
    rc = parse_args(a, argc, argv);
    if (rc == 1) { help(); free(a); return 0; }
    if (rc < 0 || check_config(a) != 0) { free(a); return EXIT_USAGE; }
    set_callbacks(a);
    rc = ka_client_new(&a->c, &a->cfg);
    if (rc != 0) {
        fprintf(stderr, "kacat: %s: check HOST, PORT and the option values (see --help)\n", ka_strerror(rc));
        free(a);
        return rc == KA_EINVAL ? EXIT_USAGE : EXIT_RUNTIME;
    }
    rc = input_start();
    if (rc < 0) {
        fputs("kacat: cannot start reading stdin\n", stderr);
        ka_client_free(a->c);
        free(a);
        return EXIT_RUNTIME;
    }
    if (rc == 0) a->in_eof = 1;     /* stdin closed: nothing to send */
    catch_signals(on_signal);
    say(a, "connecting to %s:%s", a->cfg.host, a->cfg.port);
    ka_client_start(a->c);
    rc = run(a);
    ka_client_free(a->c);
    free(a);
    return rc;
}
