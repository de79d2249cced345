/* kacat: cat over one TCP connection that ka_client keeps alive.
 *
 *   kacat [options] HOST PORT        kacat [options] HOST:PORT | [V6]:PORT
 *   kacat [options] SERVER [SERVER...]      (each one of the forms above)
 *
 * stdin goes to the server, the server's bytes go to stdout, and what
 * happens to the connection is told on stderr in plain words. When the
 * connection drops, kacat reconnects with backoff (unless --once); input
 * that arrives in the meantime is queued and sent after the reconnect. When
 * the queue is full kacat stops reading stdin (backpressure), so nothing is
 * ever dropped silently. Several servers are tried in turn (the library's
 * ka_config.endpoints): a failed attempt moves on to the next one.
 *
 * --hello TEXT is sent from on_connect, so it opens every connection,
 * before any queued input. --keep-sending lets a server end its side (FIN)
 * and go on reading: kacat's stdout ends there, the input keeps going
 * (keep_writing_after_fin).
 *
 * End of input: once everything queued has been handed to the kernel on a
 * live connection (after a reconnect if need be), kacat calls
 * ka_client_finish(), which half-closes the connection at once (the server
 * sees EOF after the last byte) and stops heartbeats. kacat keeps printing
 * what the server still sends until the server closes or --linger passes.
 * Empty input at start-up still waits for a connection, so the server
 * always sees a clean end, and a server that talks first (a banner) is
 * heard. (Not earlier: a finishing client takes no more messages, and a
 * reconnect needs its --hello.)
 *
 * The exit status and the last line on stderr say whether all input reached
 * one connection, and who closed first (see EXIT_* below, --help and
 * doc/kacat.1). "Sent" means handed to the kernel: bytes still in the
 * kernel's send buffer when a connection dies are lost without a count (the
 * library cannot see them), which is why input split over two connections
 * is never a plain success; a message cut in half is counted (unsent_bytes).
 *
 * --exec hooks run one at a time, in event order, from a bounded queue (see
 * the hooks section); on_health adds a "health" event when the link turns
 * degraded or good again.
 *
 * --tls and its options hand ka_config.transport an OpenSSL transport
 * (transport/ka_openssl.h) when kacat is built with it (KACAT_TLS, from
 * mk/tls.mk); nothing else changes, since the library hands on_connect and
 * on_data plaintext. --stats prints ka_client_stats as one line at exit and
 * on SIGUSR1; -v adds a status line with the kernel's view now and then.
 *
 * Layout: platform, status words, options, TLS, hooks, statistics, input,
 * the end, callbacks, loop. Only the platform section knows about POSIX or
 * Windows; what the demos share (clocks, select() with empty sets) is demo_os.h.
 *
 * On Windows stdin cannot be select()ed: a thread reads it and hands it to
 * the loop through a loopback socket (demo/win_stdin.h). --exec runs
 * "cmd.exe /d /s /c CMD" with CreateProcess. Ctrl+C is noticed within
 * 200 ms (it does not interrupt select() there). See docs/windows.md.
 */

/* ---- platform -------------------------------------------------------------------
 *
 *   platform_init()                      Winsock, binary stdout
 *   catch_signals(), signal_rearm()      SIGINT/SIGTERM
 *   catch_status_signal()                SIGUSR1 (POSIX): print the statistics
 *   input_start/fd/read/errtext()        stdin as something select() can watch
 *   proc_t, proc_spawn(), proc_poll()    a hook: CMD in the shell, polled, never waited for
 */
#include "demo_os.h"
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include "ka_client.h"
#ifdef KACAT_TLS
#include "ka_openssl.h"
#endif

typedef struct env_var { const char *name, *value; } env_var;     /* value NULL: unset */

#ifdef _WIN32

#include <fcntl.h>
#include <io.h>
#include "win_stdin.h"

typedef HANDLE proc_t;                  /* NULL: no process */
#define HOOK_SHELL "cmd.exe /d /s /c"
#define HOOK_NOT_FOUND 9009u            /* cmd.exe: "is not recognized as a command" */
#define SIGNAL_CHECK_MS 200             /* Ctrl+C runs its handler on another thread */
#define STATUS_SIGNAL_WORDS ""          /* no SIGUSR1 */
#define SYS_ERROR_WORD "WSA error"
#define poll WSAPoll                    /* only for the FD_SETSIZE fallback, unused here */

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

/* The C runtime resets a handler to SIG_DFL before calling it: put it back,
 * so a second Ctrl+C is seen too (it ends kacat's wait for hooks). */
static void signal_rearm(int sig, void (*handler)(int)) { signal(sig, handler); }

static void catch_status_signal(void (*handler)(int)) { (void)handler; }   /* no SIGUSR1 here */

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

/* Starts "cmd.exe /d /s /c CMD" with the variables set (in kacat's own
 * environment, which the child copies; the input thread never reads it;
 * a NULL value removes one, so an earlier event's does not linger),
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

#include <sys/wait.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <unistd.h>

typedef pid_t proc_t;                   /* 0: no process */
#define HOOK_SHELL "/bin/sh -c"
#define HOOK_NOT_FOUND 127u             /* sh: command not found, or not executable */
#define SIGNAL_CHECK_MS (-1)            /* signals interrupt select() with EINTR */
#define STATUS_SIGNAL_WORDS " (and on SIGUSR1)"
#define SYS_ERROR_WORD "errno"

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

static void signal_rearm(int sig, void (*handler)(int)) { (void)sig; (void)handler; }  /* sigaction keeps it */

/* SIGUSR1 prints the statistics, as dd does; no SA_RESTART either. */
static void catch_status_signal(void (*handler)(int))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
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

/* The hook must not eat kacat's stdin nor write into the server's byte
 * stream on stdout, so its stdin is /dev/null and its stdout kacat's
 * stderr. kacat is single-threaded, so setenv after fork is safe. */
static proc_t proc_spawn(const char *cmd, const env_var *env, size_t nenv, char *err, size_t errlen)
{
    pid_t pid;
    size_t i;
    fflush(stderr);
    pid = fork();
    if (pid < 0) { snprintf(err, errlen, "fork: %s", strerror(errno)); return 0; }
    if (pid == 0) {
        int fd = open("/dev/null", O_RDONLY);
        if (fd >= 0) { dup2(fd, 0); if (fd > 2) close(fd); }
        dup2(2, 1);
        for (i = 0; i < nenv; i++) {
            if (env[i].value) setenv(env[i].name, env[i].value, 1);
            else unsetenv(env[i].name);     /* from kacat's own environment */
        }
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

/* Exit statuses: 0 is the only success. When several apply, the first
 * listed in exit_status() wins; the last line on stderr tells the rest. */
#define EXIT_OK           0     /* all input over one connection; kacat closed first */
#define EXIT_FAILED       1     /* no connection (--once), I/O error, or the last connection failed after kacat closed */
#define EXIT_USAGE        2
#define EXIT_GAVE_UP      3     /* --max-attempts failed attempts in a row */
#define EXIT_SERVER_FIRST 4     /* the connection carrying the input ended before kacat had sent it all and closed */
#define EXIT_SPLIT        5     /* all input sent, but over more than one connection */
#define EXIT_DROPPED      6     /* part of a message dropped: a connection died while it was being sent */

#define CHUNK       65536       /* largest read from stdin */
#define HOOK_QUEUE  8           /* events waiting for their hook; more are folded (see hooks) */
#define HOOK_TICK_MS 20         /* how often a running hook is checked on */
#define MAX_OPTS    64          /* room in the option table (options_of) */
#define MAX_TEXT    1024        /* --heartbeat and --hello, decoded */
#ifdef KACAT_TLS
#define TLS_GROUP "TLS (OpenSSL):"
#else
#define TLS_GROUP "TLS (not in this build: kacat was built without TLS):"
#endif
#define SAMPLE_EVERY_MS 1000    /* --stats, -v: the kernel's view is looked at no more often, and only on a round that runs anyway */
#define STATUS_EVERY_MS 30000   /* -v: a status line this often while connected */

/* How kacat's run ended (the second half of the last line). */
enum end_kind {
    END_RUNNING,
    END_INPUT_DONE,         /* input ended and was delivered; kacat closed first */
    END_SERVER_FIRST,       /* the connection ended from the other side before kacat had sent all input and closed */
    END_FINISH_FAILED,      /* after kacat's FIN the connection failed (reset, timeout) */
    END_GAVE_UP,
    END_CONNECT_FAILED,     /* --once: the one attempt failed */
    END_SIGNAL,
    END_ERROR               /* fail_text says what */
};

/* One --exec event waiting for its turn. */
typedef struct hook_event {
    const char *name;           /* "connect", "disconnect", "retry", "give_up", "health" */
    ka_reason reason;
    int err;
    char err_text[200];         /* KA_ERROR_TEXT: for KA_REASON_TLS the transport's words */
    unsigned attempt, delay_ms;
    unsigned coalesced;         /* earlier events folded into this one */
    int server;                 /* which server it concerns (KA_HOST, KA_PORT) */
    ka_health health;           /* "health" only */
} hook_event;

/* One server: host as the library takes it ("[::1]" keeps its brackets),
 * without brackets for hooks, and "host:port" for people. */
typedef struct server {
    char host[KA_MAX_HOST_LEN + 3];
    char host_plain[KA_MAX_HOST_LEN + 3];
    char port[40];
    char where[KA_MAX_HOST_LEN + 48];
} server;

typedef struct app {
    ka_config cfg;
    ka_client *c;
    /* the servers, in the order given; ka_config.endpoints when several */
    server srv[KA_MAX_ENDPOINTS];
    ka_endpoint eps[KA_MAX_ENDPOINTS];
    int nsrv;
    int srv_try;                    /* the server of the latest attempt (ka_client_endpoint) */
    int srv_conn;                   /* the server of the latest connection */
    char where_all[4 * (KA_MAX_HOST_LEN + 48)];    /* "a:1 (then b:2, c:3)", for the first line */
    /* options that are kacat's own */
    const char *heartbeat_text;
    const char *hello_text;
    const char *exec_cmd;
    unsigned linger_ms;
    int quiet, verbose, timestamps, once, only4, only6, keep_sending, stats;
    /* TLS: the options as given, and the transport made from them (NULL: plain TCP) */
    int tls_on, tls_insecure;
    const char *tls_cafile, *tls_cert, *tls_key, *tls_servername;
    ka_transport *tls;
    char tls_text[200];             /* the transport's words for the latest KA_REASON_TLS */
    const char *given[MAX_OPTS];    /* each option's value as typed, for error messages */
    const char *w_bare;             /* -w given a small bare number: nc users mean seconds */
    char heartbeat[MAX_TEXT];       /* heartbeat_text with escapes decoded */
    char hello[MAX_TEXT];           /* hello_text with escapes decoded */
    size_t hello_len;
    /* input: one chunk read from stdin and not yet accepted by the queue */
    unsigned char in[CHUNK];
    size_t inlen;
    int in_eof, in_error;
    /* where the input went */
    unsigned long long accepted;    /* bytes ka_client_send took */
    unsigned long long dropped;     /* unsent_bytes, summed */
    long long left_at_connect;      /* accepted - pending when this connection came up */
    unsigned carriers;              /* connections that carried some input */
    int lost_carrier;               /* one of them ended before kacat closed it */
    /* what has been said, so each notice is given once per outage */
    int said_waiting, said_full, said_eof_wait, just_lost;
    /* --keep-sending: the server ended its side on this connection, and
     * stdout was closed then; what a later connection sends is discarded */
    int server_eof, stdout_closed;
    unsigned long long discarded;
    /* finishing: ka_client_finish called; half_closed: it sent the FIN
     * and the linger runs until linger_until */
    int finishing, half_closed, done;
    unsigned long long linger_until;
    /* the end, for the exit status and the last line */
    enum end_kind end;
    int server_closed, lingered_out, signo;
    ka_reason end_reason;
    int end_err;
    unsigned attempts;
    const char *end_state;
    char fail_text[160];
    /* hooks: the one running, and the queue behind it */
    proc_t hook_proc;
    hook_event hook_now;
    hook_event hq[HOOK_QUEUE];
    size_t hq_len;
    unsigned folded;                /* events folded since the queue was last empty */
    /* the kernel's view of the connection as last seen (valid 0: never),
     * when to look again, when -v says how the link is */
    ka_stats seen;
    unsigned long long sample_at, status_at;
} app;

static volatile sig_atomic_t got_signal, signal_count, got_status;

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

static const char *plural(unsigned long long n) { return n == 1 ? "" : "s"; }

/* "65536"; by hand, since %llu is not in every C runtime. */
static const char *count_text(char *buf, size_t n, unsigned long long v)
{
    char digits[24];
    size_t i = sizeof digits - 1;
    digits[i] = 0;
    do { digits[--i] = (char)('0' + v % 10); v /= 10; } while (v);
    snprintf(buf, n, "%s", digits + i);
    return buf;
}

/* "1 byte", "65536 bytes". */
static const char *bytes_text(char *buf, size_t n, unsigned long long v)
{
    char digits[24];
    snprintf(buf, n, "%s byte%s", count_text(digits, sizeof digits, v), plural(v));
    return buf;
}

/* "peer reset (connection reset by peer, errno 104)", "peer closed". The
 * words are the library's: ka_reason_str and ka_sys_strerror; for a TLS
 * failure, the transport's own (ka_client_transport_error, kept when the
 * callback reported it: see note_tls_error). */
static const char *cause_text(const app *a, char *buf, size_t n, ka_reason r, int err)
{
    if (r == KA_REASON_TLS && a->tls_text[0]) snprintf(buf, n, "%s: %s", ka_reason_str(r), a->tls_text);
    else if (!err) snprintf(buf, n, "%s", ka_reason_str(r));
    else snprintf(buf, n, "%s (%s, %s %d)", ka_reason_str(r), ka_sys_strerror(r, err),
                  r == KA_REASON_RESOLVE ? "getaddrinfo" : SYS_ERROR_WORD, err);
    return buf;
}

/* "1.4 s", or "250 ms" where tenths of a second would round to nothing. */
static const char *duration_text(char *buf, size_t n, unsigned long long ms)
{
    if (ms < 1000) snprintf(buf, n, "%u ms", (unsigned)ms);
    else snprintf(buf, n, "%.1f s", (double)ms / 1000.0);
    return buf;
}

/* Adds to the text in buf, cut short at n. */
static void append(char *buf, size_t n, const char *fmt, ...)
{
    size_t used = strlen(buf);
    va_list ap;
    if (used + 1 >= n) return;
    va_start(ap, fmt);
    vsnprintf(buf + used, n - used, fmt, ap);
    va_end(ap);
}

/* A duration as it would be typed: "250ms", "5s", "1m", "0". */
static const char *time_text(char *buf, size_t n, unsigned ms)
{
    if (ms == 0) snprintf(buf, n, "0");
    else if (ms % 3600000u == 0) snprintf(buf, n, "%uh", ms / 3600000u);
    else if (ms % 60000u == 0) snprintf(buf, n, "%um", ms / 60000u);
    else if (ms % 1000u == 0) snprintf(buf, n, "%us", ms / 1000u);
    else snprintf(buf, n, "%ums", ms);
    return buf;
}

/* KA_REASON for hooks: the library's words for the reason as one token,
 * up to any parenthesis, each run of other characters one underscore
 * ("peer reset" -> "peer_reset", "peer stalled (window closed)" ->
 * "peer_stalled", "TLS / transport failure" -> "tls_transport_failure"). */
static const char *reason_token(char *buf, size_t n, ka_reason r)
{
    const char *s = ka_reason_str(r);
    size_t i = 0;
    for (; *s && *s != '(' && i + 1 < n; s++) {
        if (isalnum((unsigned char)*s)) buf[i++] = (char)tolower((unsigned char)*s);
        else if (i > 0 && buf[i - 1] != '_') buf[i++] = '_';
    }
    while (i > 0 && buf[i - 1] == '_') i--;
    buf[i] = 0;
    return buf;
}

/* The library's words for a reason, up to any parenthesis: "peer stalled". */
static const char *reason_words(char *buf, size_t n, ka_reason r)
{
    const char *s = ka_reason_str(r), *paren = strchr(s, '(');
    size_t len = paren ? (size_t)(paren - s) : strlen(s);
    while (len > 0 && s[len - 1] == ' ') len--;
    snprintf(buf, n, "%.*s", (int)len, s);
    return buf;
}

/* "1.2 ms", "0.05 ms": a round trip in the unit people think in. */
static const char *rtt_text(char *buf, size_t n, unsigned long us)
{
    if (us < 10000) snprintf(buf, n, "%.2f ms", us / 1000.0);
    else snprintf(buf, n, "%.1f ms", us / 1000.0);
    return buf;
}

/* KA_HEALTH_CAUSE: "unacked,retrans", "stalled", "" when good. */
static const char *health_causes(char *buf, size_t n, unsigned cause)
{
    static const struct { unsigned bit; const char *word; } words[] = {
        { KA_HEALTH_UNACKED, "unacked" }, { KA_HEALTH_RETRANS, "retrans" }, { KA_HEALTH_STALLED, "stalled" }
    };
    size_t i, used = 0;
    buf[0] = 0;
    for (i = 0; i < sizeof words / sizeof words[0] && used < n; i++)
        if (cause & words[i].bit) used += (size_t)snprintf(buf + used, n - used, "%s%s", used ? "," : "", words[i].word);
    return buf;
}

/* ---- options ---------------------------------------------------------------- */

enum opt_kind { OT_TIME, OT_UINT, OT_DOUBLE, OT_SIZE, OT_TEXT, OT_FLAG, OT_HELP, OT_VERSION, OT_GROUP };

typedef struct opt {
    const char *name;           /* long name, without "--" */
    char letter;                /* short alias, 0 if none */
    enum opt_kind kind;
    void *dst;
    const char *arg;            /* the value's name in --help */
    const char *field;          /* the ka_config field it sets, as ka_config_error names it */
    const char *rule;           /* what the library accepts, for the error message */
    const char *help;
} opt;

/* The option table, pointing into a. One table serves parsing, --help
 * (defaults read from a freshly initialised app) and the messages for a
 * value the library rejects. */
static size_t options_of(app *a, opt *t)
{
    ka_config *k = &a->cfg;
    size_t n = 0;
#define OPT(nm, l, kd, d, ar, fld, rl, h) do { t[n].name = nm; t[n].letter = l; t[n].kind = kd; \
        t[n].dst = d; t[n].arg = ar; t[n].field = fld; t[n].rule = rl; t[n].help = h; n++; } while (0)
#define GROUP(title) OPT(NULL, 0, OT_GROUP, NULL, NULL, NULL, NULL, title)
    GROUP("Connection:");
    OPT("ipv4", '4', OT_FLAG, &a->only4, NULL, NULL, NULL, "IPv4 addresses only");
    OPT("ipv6", '6', OT_FLAG, &a->only6, NULL, NULL, NULL, "IPv6 addresses only");
    OPT("source", 's', OT_TEXT, &k->bind_address, "ADDR", "bind_address",
        "must be an IPv4 or IPv6 address (not a name), of the family dialled", "connect from this local address");
    OPT("interface", 0, OT_TEXT, &k->bind_interface, "IFACE", "bind_interface",
        "must be an interface name: 1..15 characters, no spaces or '/'", "connect through this interface only (eth1, wwan0)");
    OPT("resolve-timeout", 0, OT_TIME, &k->resolve_timeout_ms, "TIME", "resolve_timeout_ms",
        "must be within 1ms..2147483647ms (24.8 days)", "give up on a name lookup after this long");
    OPT("connect-timeout", 'w', OT_TIME, &k->connect_timeout_ms, "TIME", "connect_timeout_ms",
        "must be within 1ms..2147483647ms (24.8 days)", "give up on one connect attempt after this long");
    OPT("keepalive-idle", 0, OT_TIME, &k->keepalive_idle_ms, "TIME", "keepalive_idle_ms",
        "must be within 1ms..32767s", "idle time before the first keepalive probe");
    OPT("keepalive-interval", 0, OT_TIME, &k->keepalive_interval_ms, "TIME", "keepalive_interval_ms",
        "must be within 1ms..32767s", "time between keepalive probes");
    OPT("keepalive-count", 0, OT_UINT, &k->keepalive_count, "N", "keepalive_count",
        "must be within 1..127", "unanswered probes before the connection is dead");
    OPT("user-timeout", 0, OT_TIME, &k->user_timeout_ms, "TIME", "user_timeout_ms",
        "must be at most 2147483647ms (24.8 days)", "max time sent data may stay unacked (0: idle+interval*count)");
    OPT("idle-timeout", 0, OT_TIME, &k->idle_timeout_ms, "TIME", "idle_timeout_ms",
        "is out of range", "reconnect after this long without receiving (0: off)");
    OPT("stall-timeout", 0, OT_TIME, &k->stall_timeout_ms, "TIME", "stall_timeout_ms",
        "must be at most 2147483647ms (24.8 days)", "reconnect when the server reads nothing this long (0: wait)");
    OPT("heartbeat", 0, OT_TEXT, &a->heartbeat_text, "TEXT", "heartbeat_len",
        "must be 1..1024 bytes and no longer than --send-buffer", "bytes to send when idle; \\n \\r \\t \\\\ \\xHH escapes");
    OPT("heartbeat-interval", 0, OT_TIME, &k->heartbeat_interval_ms, "TIME", "heartbeat_interval_ms",
        "is out of range", "send the heartbeat after this long without sending (0: off)");
    GROUP(TLS_GROUP);
    OPT("tls", 0, OT_FLAG, &a->tls_on, NULL, NULL, NULL, "TLS over the connection, the server's certificate checked (ncat --ssl-verify)");
    OPT("cafile", 0, OT_TEXT, &a->tls_cafile, "FILE", NULL, NULL, "trust the CAs in this PEM file instead of the system's");
    OPT("cert", 0, OT_TEXT, &a->tls_cert, "FILE", NULL, NULL, "client certificate (PEM), for servers that ask for one");
    OPT("key", 0, OT_TEXT, &a->tls_key, "FILE", NULL, NULL, "its private key (PEM), if it is not in --cert's file");
    OPT("servername", 0, OT_TEXT, &a->tls_servername, "NAME", NULL, NULL, "name for SNI and the certificate check instead of HOST");
    OPT("insecure", 0, OT_FLAG, &a->tls_insecure, NULL, NULL, NULL, "accept any certificate (tests only: anyone can listen in)");
    GROUP("Session:");
    OPT("hello", 0, OT_TEXT, &a->hello_text, "TEXT", NULL, NULL,
        "send TEXT first on every connection, ahead of queued input (escapes as --heartbeat)");
    OPT("keep-sending", 0, OT_FLAG, &a->keep_sending, NULL, NULL, NULL,
        "when the server ends its side, keep sending input (stdout ends there)");
    GROUP("Reconnecting:");
    OPT("once", 0, OT_FLAG, &a->once, NULL, NULL, NULL, "no reconnect: exit when the connection ends or the attempt fails");
    OPT("max-attempts", 'n', OT_UINT, &k->max_attempts, "N", "max_attempts",
        "is out of range", "give up (exit 3) after N failed attempts in a row (0: never)");
    OPT("backoff-initial", 0, OT_TIME, &k->backoff_initial_ms, "TIME", "backoff_initial_ms",
        "must be at least 1ms and no more than --backoff-max", "delay before the first retry");
    OPT("backoff-max", 0, OT_TIME, &k->backoff_max_ms, "TIME", "backoff_max_ms",
        "must be at least --backoff-initial", "no retry delay exceeds this");
    OPT("backoff-multiplier", 0, OT_DOUBLE, &k->backoff_multiplier, "X", "backoff_multiplier",
        "must be within 1..1000", "each further retry waits X times longer");
    OPT("backoff-jitter", 0, OT_DOUBLE, &k->backoff_jitter, "X", "backoff_jitter",
        "must be within 0..1", "0..1: each delay is drawn from [d*(1-X), d]");
    OPT("backoff-reset", 0, OT_TIME, &k->backoff_reset_ms, "TIME", "backoff_reset_ms",
        "is out of range", "a connection up this long resets the attempt count");
    GROUP("Input and output:");
    OPT("send-buffer", 0, OT_SIZE, &k->send_buffer_size, "BYTES", "send_buffer_size",
        "must be within 1..1073741824 (1 GiB)", "size of the send queue; input waits while it is full");
    OPT("recv-buffer", 0, OT_SIZE, &k->recv_buffer_size, "BYTES", "recv_buffer_size",
        "must be within 1..1073741824 (1 GiB)", "largest chunk read from the server at once");
    OPT("linger", 0, OT_TIME, &a->linger_ms, "TIME", NULL, NULL, "at the end, wait this long for the server to close");
    OPT("exec", 'e', OT_TEXT, &a->exec_cmd, "CMD", NULL, NULL, "run CMD with " HOOK_SHELL " on every event (see below)");
    OPT("quiet", 'q', OT_FLAG, &a->quiet, NULL, NULL, NULL, "only warnings and errors on stderr (not nc's -q)");
    OPT("verbose", 'v', OT_FLAG, &a->verbose, NULL, NULL, NULL,
        "also the library's diagnostics, the link's health, and its round trip now and then");
    OPT("stats", 0, OT_FLAG, &a->stats, NULL, NULL, NULL, "print the connection's statistics at exit" STATUS_SIGNAL_WORDS);
    OPT("timestamps", 'T', OT_FLAG, &a->timestamps, NULL, NULL, NULL, "prefix status lines with the time of day");
    OPT("help", 'h', OT_HELP, NULL, NULL, NULL, NULL, "this text");
    OPT("version", 0, OT_VERSION, NULL, NULL, NULL, NULL, "kacat's and the library's version");
#undef GROUP
#undef OPT
    return n;
}

static void app_defaults(app *a)
{
    memset(a, 0, sizeof *a);
    ka_config_init(&a->cfg);
    a->linger_ms = 2000;
}

static void print_value(const opt *o)
{
    char b[32];
    switch (o->kind) {
    case OT_TIME:   printf("%s", time_text(b, sizeof b, *(unsigned *)o->dst)); break;
    case OT_UINT:   printf("%u", *(unsigned *)o->dst); break;
    case OT_DOUBLE: printf("%g", *(double *)o->dst); break;
    case OT_SIZE:   printf("%lu", (unsigned long)*(size_t *)o->dst); break;
    case OT_TEXT:   printf("%s", *(const char **)o->dst ? *(const char **)o->dst : "none"); break;
    default:        break;
    }
}

static int has_value(const opt *o)
{
    return o->kind == OT_TIME || o->kind == OT_UINT || o->kind == OT_DOUBLE || o->kind == OT_SIZE || o->kind == OT_TEXT;
}

static void usage(FILE *f)
{
    fputs("usage: kacat [options] HOST PORT\n"
          "       kacat [options] HOST:PORT | [IPV6]:PORT\n"
          "       kacat [options] SERVER SERVER...   (each in one of the forms above)\n"
          "Sends stdin to the server and prints what it sends back; reconnects when\n"
          "the connection drops and queues input meanwhile. Status goes to stderr.\n", f);
    if (f == stderr) fputs("Try 'kacat --help' for the options.\n", f);
}

static void help(void)
{
    app *d = (app *)malloc(sizeof *d);
    opt t[MAX_OPTS];
    size_t n, i;
    if (!d) exit(EXIT_FAILED);
    app_defaults(d);
    n = options_of(d, t);
    usage(stdout);
    printf("\nTIME is a duration: 250ms, 2s, 1.5s, 1m, 1h; a bare number is milliseconds.\n"
           "Short options combine (-qT, -qn3). Defaults in brackets.\n");
    for (i = 0; i < n; i++) {
        char left[64];
        if (t[i].kind == OT_GROUP) { printf("\n%s\n", t[i].help); continue; }
        if (t[i].letter) snprintf(left, sizeof left, "-%c, --%s%s%s", t[i].letter, t[i].name, t[i].arg ? " " : "", t[i].arg ? t[i].arg : "");
        else snprintf(left, sizeof left, "    --%s%s%s", t[i].name, t[i].arg ? " " : "", t[i].arg ? t[i].arg : "");
        printf("  %-30s %s", left, t[i].help);
        if (has_value(&t[i])) { printf(" ["); print_value(&t[i]); printf("]"); }
        printf("\n");
    }
    printf("\nEnd of input: once everything is sent (after a reconnect if need be), kacat\n"
           "half-closes the connection and prints what the server still sends, until\n"
           "it closes or --linger runs out. Empty input still waits for a connection.\n"
           "The last line on stderr says where the input went and who closed first.\n"
           "With --keep-sending, a server that ends its side first (FIN) is sent the\n"
           "rest of the input on the same connection; kacat's stdout ends at its FIN.\n"
           "\nSeveral servers (up to %d) are tried in turn: a failed attempt moves on\n"
           "to the next; after a connection that lasted --backoff-reset, the first\n"
           "comes first again. --once tries each of them once.\n"
           "\nExit status:\n"
           "  0  all input sent over one connection, and kacat closed first\n"
           "  1  no connection (--once), an I/O error, or the connection failed after\n"
           "     kacat's end of input (the server may not have the last bytes)\n"
           "  2  bad usage\n"
           "  3  gave up after --max-attempts; some input was never sent\n"
           "  4  the server closed first: the connection carrying the input ended before\n"
           "     all of it was sent and kacat had closed (with --once, kacat stops there)\n"
           "  5  all input sent, but split over more than one connection\n"
           "  6  input dropped: a connection died while a message was half sent\n"
           "  128+N  ended by signal N (SIGINT: 130)\n"
           "\n--exec CMD runs on connect, disconnect, retry, give_up and health (the link\n"
           "turned degraded, or good again), one at a time, in order, without holding\n"
           "up the connection; at exit kacat waits for the queued ones (a signal stops\n"
           "that wait). With %d events waiting, the oldest is folded into the next\n"
           "(KA_COALESCED counts them); give_up and the newest event are never folded.\n"
           "Its stdout goes to kacat's stderr. Environment:\n"
           "  KA_EVENT        connect | disconnect | retry | give_up | health\n"
           "  KA_REASON       peer_closed, peer_reset, timeout, refused, ... (none on connect, health)\n"
           "  KA_REASON_TEXT  the same in words; KA_REASON_CODE its ka_reason number\n"
           "  KA_ERRNO        the system error number, 0 if none; KA_ERROR_TEXT in words\n"
           "  KA_ATTEMPT      retry number (retry, give_up), else 0\n"
           "  KA_DELAY_MS     delay before the next attempt (retry), else 0\n"
           "  KA_COALESCED    how many earlier events were folded into this one\n"
           "  KA_HOST, KA_PORT  the server (an IPv6 address without brackets): with\n"
           "                  several, the one connected to, or tried last\n"
           "  KA_HEALTH       degraded | good (health only, like the next three)\n"
           "  KA_HEALTH_CAUSE unacked, retrans, stalled: comma-separated; empty if good\n"
           "  KA_RTT_US       the kernel's smoothed round trip in microseconds, 0 unknown\n"
           "  KA_RETRANS      retransmissions of the oldest data under way\n"
           "Example: kacat --exec 'logger \"kacat: $KA_EVENT $KA_REASON\"' 127.0.0.1 6379\n"
           "\nFor nc users: kacat is a TCP client that reconnects unless --once.\n"
           "  -q is --quiet, not nc's -q SECS (kacat half-closes at end of input and\n"
           "     waits --linger for the server, like nc -N / ncat).\n"
           "  -w is --connect-timeout, in milliseconds unless a unit is given: nc -w 5\n"
           "     is kacat -w 5s.\n"
           "  -e runs a hook on events; it does not attach a program to the socket.\n"
           "  -n is --max-attempts, not nc's \"no DNS\". No -l, -u, -z, -k.\n"
           "  -4, -6 and -s ADDR mean what they mean to nc.\n"
           "See kacat(1) (doc/kacat.1).\n", KA_MAX_ENDPOINTS, HOOK_QUEUE);
    free(d);
}

static void version(void)
{
    printf("kacat %s (ka_client demo), ka_client library %s\n", KA_VERSION_STRING, ka_version());
#ifdef KACAT_TLS
    printf("TLS: OpenSSL, through transport/ka_openssl (--tls)\n");
#else
    printf("TLS: not in this build\n");
#endif
}

static int bad_usage(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "kacat: %s\nTry 'kacat --help' for the options.\n", msg);
    return -1;
}

/* "250ms", "2s", "1.5s", "1m", "1h"; a bare number is whole milliseconds.
 * 0, -1 not a duration, -2 longer than UINT_MAX ms (49.7 days). */
static int parse_time(const char *s, unsigned *out)
{
    static const struct { const char *unit; unsigned long long ms; } units[] = {
        { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 }
    };
    unsigned long long whole = 0, frac = 0, fdiv = 1, mult = 0, v;
    const char *p = s;
    size_t i;
    if (!isdigit((unsigned char)*p)) return -1;
    for (; isdigit((unsigned char)*p); p++) {
        whole = whole * 10 + (unsigned long long)(*p - '0');
        if (whole > UINT_MAX) return -2;
    }
    if (*p == '.') {
        if (!isdigit((unsigned char)*++p)) return -1;
        for (; isdigit((unsigned char)*p); p++)
            if (fdiv < 1000000000ull) { frac = frac * 10 + (unsigned long long)(*p - '0'); fdiv *= 10; }
    }
    if (*p == 0) {
        if (fdiv > 1) return -1;        /* "1.5": a fraction of a millisecond, or seconds meant? */
        mult = 1;
    }
    for (i = 0; i < sizeof units / sizeof units[0] && !mult; i++)
        if (strcmp(p, units[i].unit) == 0) mult = units[i].ms;
    if (!mult) return -1;
    v = whole * mult + (frac * mult + fdiv / 2) / fdiv;
    if (v > UINT_MAX) return -2;
    *out = (unsigned)v;
    return 0;
}

static int parse_uint(const char *s, unsigned long long max, unsigned long long *out)
{
    unsigned long long v = 0;
    if (!isdigit((unsigned char)*s)) return -1;    /* strtoull would take "-1" */
    for (; isdigit((unsigned char)*s); s++) {
        v = v * 10 + (unsigned long long)(*s - '0');
        if (v > max) return -2;
    }
    if (*s) return -1;
    *out = v;
    return 0;
}

/* The value in o's type; a message naming the option when it is not one. */
static int set_value(const opt *o, const char *val)
{
    unsigned long long u;
    unsigned ms;
    double d;
    char *end;
    int rc;
    switch (o->kind) {
    case OT_TIME:
        rc = parse_time(val, &ms);
        if (rc == -2) return bad_usage("--%s: '%s' is too long (at most 49 days)", o->name, val);
        if (rc) return bad_usage("--%s: '%s' is not a duration (250ms, 2s, 1.5s, 1m, 1h; a bare number is milliseconds)", o->name, val);
        *(unsigned *)o->dst = ms;
        return 0;
    case OT_UINT:
        rc = parse_uint(val, UINT_MAX, &u);
        if (rc == -2) return bad_usage("--%s: '%s' is too large", o->name, val);
        if (rc) return bad_usage("--%s: '%s' is not a whole number", o->name, val);
        *(unsigned *)o->dst = (unsigned)u;
        return 0;
    case OT_SIZE:
        rc = parse_uint(val, (size_t)-1, &u);
        if (rc == -2) return bad_usage("--%s: '%s' is too large", o->name, val);
        if (rc) return bad_usage("--%s: '%s' is not a number of bytes", o->name, val);
        *(size_t *)o->dst = (size_t)u;
        return 0;
    case OT_DOUBLE:
        errno = 0;
        d = strtod(val, &end);
        if (errno || *end || end == val || d != d) return bad_usage("--%s: '%s' is not a number", o->name, val);
        *(double *)o->dst = d;
        return 0;
    case OT_TEXT:
        *(const char **)o->dst = val;
        return 0;
    case OT_FLAG:
        *(int *)o->dst = 1;
        return 0;
    default:
        return -1;
    }
}

/* What an option asks for once found: run, print help, print the version. */
enum { PARSE_RUN = 0, PARSE_HELP = 1, PARSE_VERSION = 2 };

static int take_option(app *a, const opt *t, const opt *o, const char *val)
{
    if (o->kind == OT_HELP) return PARSE_HELP;
    if (o->kind == OT_VERSION) return PARSE_VERSION;
    a->given[o - t] = val ? val : "";
    return set_value(o, val);
}

/* --name VALUE, --name=VALUE. *i moves past a separate value. */
static int parse_long(app *a, const opt *t, size_t n, int argc, char **argv, int *i)
{
    const char *arg = argv[*i] + 2, *eq = strchr(arg, '='), *val = NULL;
    size_t len = eq ? (size_t)(eq - arg) : strlen(arg), k;
    for (k = 0; k < n; k++)
        if (t[k].name && strlen(t[k].name) == len && strncmp(arg, t[k].name, len) == 0) break;
    if (k == n) return bad_usage("unknown option '%s'", argv[*i]);
    if (!has_value(&t[k])) {
        if (eq) return bad_usage("option '--%s' takes no value", t[k].name);
    } else if (eq) {
        val = eq + 1;
    } else if (*i + 1 < argc) {
        val = argv[++*i];
    } else {
        return bad_usage("option '--%s' needs a value", t[k].name);
    }
    return take_option(a, t, &t[k], val);
}

/* A cluster of short options, like getopt: "-qT", "-qn3", "-qn 3", "-w2s".
 * A letter that takes a value takes the rest of the cluster, or the next
 * argument. */
static int parse_short(app *a, const opt *t, size_t n, int argc, char **argv, int *i)
{
    const char *cluster = argv[*i], *p;
    for (p = cluster + 1; *p; p++) {
        const char *val = NULL;
        unsigned long long small;
        size_t k;
        int rc;
        for (k = 0; k < n && !(t[k].letter && t[k].letter == *p); k++) { }
        if (k == n) {
            if (p == cluster + 1 && !p[1]) return bad_usage("unknown option '%s'", cluster);
            return bad_usage("unknown option '-%c' in '%s'", *p, cluster);
        }
        if (has_value(&t[k])) {
            if (p[1]) val = p + 1;
            else if (*i + 1 < argc) val = argv[++*i];
            else return bad_usage("option '-%c' needs a value", *p);
            if (*p == 'w' && parse_uint(val, 99, &small) == 0) a->w_bare = val;
        }
        rc = take_option(a, t, &t[k], val);
        if (rc != 0 || val) return rc;
    }
    return 0;
}

/* Splits "host:port" and "[v6]:port" into host and the port it returns
 * (NULL: bad usage, reported). A bare IPv6 address has more than one
 * colon and no brackets, and then the port must come separately. */
static const char *split_endpoint(const char *arg, char *host, size_t hostcap)
{
    const char *colon;
    size_t hostlen;
    if (arg[0] == '[') {
        const char *close = strchr(arg, ']');
        if (!close) { bad_usage("'%s': no ']' after the IPv6 address", arg); return NULL; }
        if (close[1] != ':' || !close[2]) {
            bad_usage("'%s': the port is missing: write [ADDRESS]:PORT, or the port as a second argument", arg);
            return NULL;
        }
        colon = close + 1;
    } else {
        colon = strrchr(arg, ':');
        if (!colon) { bad_usage("PORT is missing: write HOST PORT or HOST:PORT"); return NULL; }
        if (strchr(arg, ':') != colon) {
            bad_usage("'%s' looks like an IPv6 address: write [ADDRESS]:PORT, or the port as a second argument", arg);
            return NULL;
        }
        if (!colon[1]) { bad_usage("'%s': the port is missing after the colon", arg); return NULL; }
    }
    hostlen = (size_t)(colon - arg);
    if (hostlen >= hostcap) { bad_usage("HOST is longer than %d characters", KA_MAX_HOST_LEN); return NULL; }
    memcpy(host, arg, hostlen);
    host[hostlen] = 0;
    return colon + 1;
}

/* Whether one argument is a whole server, HOST:PORT or [V6]:PORT, rather
 * than a HOST whose PORT follows: one colon, or brackets and a colon after
 * them. A bare IPv6 address has more than one colon, and its port follows. */
static int joined_form(const char *arg)
{
    const char *close = strchr(arg, ']');
    if (arg[0] == '[') return close && close[1] == ':';
    return strchr(arg, ':') && strchr(arg, ':') == strrchr(arg, ':');
}

static int all_digits(const char *s)
{
    if (!*s) return 0;
    for (; *s; s++) if (!isdigit((unsigned char)*s)) return 0;
    return 1;
}

/* Fills in one server from host and port as typed; the forms for people. */
static int set_server(server *sv, const char *host, const char *port)
{
    size_t n;
    if (strlen(host) >= sizeof sv->host) return bad_usage("HOST is longer than %d characters", KA_MAX_HOST_LEN);
    if (strlen(port) >= sizeof sv->port) return bad_usage("PORT '%s' must be a number 1..65535 or a service name", port);
    strcpy(sv->host, host);
    strcpy(sv->port, port);
    n = strlen(sv->host);
    if (sv->host[0] == '[' && n >= 2 && sv->host[n - 1] == ']') {
        memcpy(sv->host_plain, sv->host + 1, n - 2);
        sv->host_plain[n - 2] = 0;
    } else {
        snprintf(sv->host_plain, sizeof sv->host_plain, "%s", sv->host);
    }
    if (strchr(sv->host_plain, ':')) snprintf(sv->where, sizeof sv->where, "[%s]:%s", sv->host_plain, sv->port);
    else snprintf(sv->where, sizeof sv->where, "%s:%s", sv->host_plain, sv->port);
    return 0;
}

/* "a:1", or "a:1 (then b:2, c:3)" for several. */
static void describe_servers(app *a)
{
    size_t n = sizeof a->where_all, used;
    int i;
    snprintf(a->where_all, n, "%s", a->srv[0].where);
    for (i = 1; i < a->nsrv; i++) {
        used = strlen(a->where_all);
        snprintf(a->where_all + used, n - used, "%s%s", i == 1 ? " (then " : ", ", a->srv[i].where);
    }
    used = strlen(a->where_all);
    if (a->nsrv > 1) snprintf(a->where_all + used, n - used, ")");
}

/* The servers: each is HOST PORT, HOST:PORT, [V6]:PORT, [V6] PORT or V6
 * PORT, read left to right. The library takes "[::1]" and drops the
 * brackets; it rejects "host:port" in host, which is why "a:1 80" is
 * reported here as a port given twice. */
static int set_servers(app *a, const char *const *pos, int npos)
{
    char host[KA_MAX_HOST_LEN + 3];
    const char *port;
    int i = 0, k;
    if (npos == 0) { usage(stderr); return -1; }
    while (i < npos) {
        const char *arg = pos[i];
        if (a->nsrv == KA_MAX_ENDPOINTS) return bad_usage("at most %d servers (from '%s' on)", KA_MAX_ENDPOINTS, arg);
        if (joined_form(arg) && i + 1 < npos && all_digits(pos[i + 1]))
            return bad_usage("HOST '%s' has a port in it: write HOST PORT or HOST:PORT, not both", arg);
        if (!joined_form(arg) && i + 1 < npos) {
            if (set_server(&a->srv[a->nsrv], arg, pos[i + 1]) != 0) return -1;
            i += 2;
        } else {
            if (!joined_form(arg) && a->nsrv > 0 && !strchr(arg, ':'))
                return bad_usage("PORT is missing after '%s': each server is HOST PORT or HOST:PORT", arg);
            if (!(port = split_endpoint(arg, host, sizeof host))) return -1;
            if (set_server(&a->srv[a->nsrv], host, port) != 0) return -1;
            i++;
        }
        a->nsrv++;
    }
    for (k = 0; k < a->nsrv; k++) {
        a->eps[k].host = a->srv[k].host;
        a->eps[k].port = a->srv[k].port;
    }
    a->cfg.host = a->srv[0].host;
    a->cfg.port = a->srv[0].port;
    if (a->nsrv > 1) {
        a->cfg.endpoints = a->eps;
        a->cfg.endpoint_count = (size_t)a->nsrv;
    }
    describe_servers(a);
    return 0;
}

/* Returns PARSE_RUN, PARSE_HELP, PARSE_VERSION, or -1 on bad usage
 * (already reported). */
static int parse_args(app *a, int argc, char **argv)
{
    opt t[MAX_OPTS];
    size_t n = options_of(a, t);
    const char *pos[2 * KA_MAX_ENDPOINTS + 1];
    int i, npos = 0, rc;
    for (i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--") == 0) { i++; break; }
        if (arg[0] != '-' || arg[1] == 0) {
            if (npos < (int)(sizeof pos / sizeof pos[0])) pos[npos++] = arg;
            continue;
        }
        rc = arg[1] == '-' ? parse_long(a, t, n, argc, argv, &i) : parse_short(a, t, n, argc, argv, &i);
        if (rc != 0) return rc;
    }
    for (; i < argc; i++)
        if (npos < (int)(sizeof pos / sizeof pos[0])) pos[npos++] = argv[i];
    return set_servers(a, pos, npos);
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

/* The library names the first ka_config field it rejects; say which of
 * kacat's options or arguments that is, and what it accepts. */
static int config_error(app *a, const char *field)
{
    opt t[MAX_OPTS];
    size_t n = options_of(a, t), i;
    for (i = 0; i < n; i++) {
        if (!t[i].field || strcmp(t[i].field, field) != 0) continue;
        if (a->given[i]) return bad_usage("--%s %s (given: %s)", t[i].name, t[i].rule, a->given[i]);
        return bad_usage("--%s %s (it is left at its default)", t[i].name, t[i].rule);
    }
    return bad_usage("the library rejects the setting %s (see --help)", field);
}

static int option_given(app *a, const char *name)
{
    opt t[MAX_OPTS];
    size_t n = options_of(a, t), i;
    for (i = 0; i < n; i++)
        if (t[i].name && strcmp(t[i].name, name) == 0) return a->given[i] != NULL;
    return 0;
}

/* Each server on its own, so the message names the one that is wrong:
 * with several, the library only says "endpoints". */
static int check_servers(app *a)
{
    ka_config one = a->cfg;
    const char *field;
    int k;
    one.endpoints = NULL;
    one.endpoint_count = 0;
    for (k = 0; k < a->nsrv; k++) {
        const server *sv = &a->srv[k];
        one.host = sv->host;
        one.port = sv->port;
        field = ka_config_error(&one);
        if (field && strcmp(field, "host") == 0) {
            if (strchr(sv->host, ':') && sv->host[0] != '[')
                return bad_usage("HOST '%s' has a port in it: write HOST PORT or HOST:PORT, not both", sv->host);
            return bad_usage("HOST '%s' is not a host name or address (1..%d characters, no spaces)", sv->host, KA_MAX_HOST_LEN);
        }
        if (field && strcmp(field, "port") == 0)
            return bad_usage("PORT '%s' must be a number 1..65535 or a service name", sv->port);
    }
    return 0;
}

/* The bytes of a --heartbeat or --hello TEXT: 1..MAX_TEXT once decoded. */
static int decode_text(const char *name, const char *text, char *out, size_t *len)
{
    long n = unescape(text, out, MAX_TEXT);
    if (n <= 0) return bad_usage("--%s must be 1..%d bytes (given: '%s')", name, MAX_TEXT, text);
    *len = (size_t)n;
    return 0;
}

/* --hello goes out from on_connect; a fresh connection's socket buffer
 * takes it whole, but where it does not, it waits in the session's own
 * room (session_buffer_size, by default the smaller of --send-buffer and
 * 4096), which it must fit. */
static int check_hello(app *a)
{
    size_t room = a->cfg.send_buffer_size < 4096 ? a->cfg.send_buffer_size : 4096;
    if (!a->hello_text) return 0;
    if (decode_text("hello", a->hello_text, a->hello, &a->hello_len) != 0) return -1;
    if (a->hello_len > room)
        return bad_usage("--hello must fit the session queue, the smaller of --send-buffer and 4096 (%lu byte%s) (given: %lu bytes)",
                         (unsigned long)room, room == 1 ? "" : "s", (unsigned long)a->hello_len);
    return 0;
}

/* kacat's own rules first, then the library's (ka_config_error). */
static int check_config(app *a)
{
    const char *field;
    if (a->heartbeat_text) {
        if (decode_text("heartbeat", a->heartbeat_text, a->heartbeat, &a->cfg.heartbeat_len) != 0) return -1;
        a->cfg.heartbeat_data = a->heartbeat;
    }
    if (check_hello(a) != 0) return -1;
    if (a->cfg.heartbeat_interval_ms && !a->heartbeat_text)
        return bad_usage("--heartbeat-interval needs --heartbeat TEXT");
    if (a->heartbeat_text && !a->cfg.heartbeat_interval_ms)
        return bad_usage("--heartbeat needs --heartbeat-interval TIME");
    if (a->once && option_given(a, "max-attempts"))
        return bad_usage("--once makes a single attempt: it does not go with --max-attempts");
    if (a->once) a->cfg.max_attempts = (unsigned)a->nsrv;     /* each server once */
    if (a->only4 && a->only6) return bad_usage("-4 and -6 do not go together");
    a->cfg.family = a->only4 ? KA_FAMILY_IPV4 : a->only6 ? KA_FAMILY_IPV6 : KA_FAMILY_ANY;
    a->cfg.keep_writing_after_fin = a->keep_sending;
    if (check_servers(a) != 0) return -1;
    field = ka_config_error(&a->cfg);
    return field ? config_error(a, field) : 0;
}

/* ---- TLS ---------------------------------------------------------------------------
 *
 * --tls and its options become the transport the client uses, made by the
 * OpenSSL adapter from them as typed: it also says what is wrong with them
 * (--cafile without --tls, a file that does not load, a key that does not
 * fit). A build without the adapter refuses them.
 */

static int tls_setup(app *a)
{
#ifdef KACAT_TLS
    char msg[512];
    int rc = ka_openssl_from_args(&a->tls, a->tls_on, a->tls_cafile, a->tls_cert, a->tls_key,
                                  a->tls_servername, a->tls_insecure, msg, sizeof msg);
    if (rc < 0) return bad_usage("%s", msg);
    if (rc == KA_TLS_INSECURE) warn(a, "%s", msg);
    a->cfg.transport = a->tls;  /* NULL without --tls: plain TCP */
    return 0;
#else
    static const char *const names[] = { "tls", "cafile", "cert", "key", "servername", "insecure" };
    size_t i;
    for (i = 0; i < sizeof names / sizeof names[0]; i++)
        if (option_given(a, names[i])) return bad_usage("--%s: kacat was built without TLS", names[i]);
    return 0;
#endif
}

/* A TLS failure is told in the transport's words, which are only valid
 * until the next call into the client: kept for the lines and hooks that
 * come later. */
static void note_tls_error(app *a, ka_reason r)
{
    const char *text;
    if (r != KA_REASON_TLS) return;
    text = ka_client_transport_error(a->c);
    snprintf(a->tls_text, sizeof a->tls_text, "%s", text ? text : "");
}

/* ---- hooks (--exec) ------------------------------------------------------------
 *
 * Each event is queued and its hook runs when the one before has ended:
 * never two at once, always in event order, and a slow hook never holds up
 * the connection. The queue holds HOOK_QUEUE events; when it is full, the
 * oldest one is folded into the next (that hook sees KA_COALESCED), so a
 * flapping server cannot grow it without bound, and nothing disappears
 * without a count. give_up ends the run, so it is always the newest event
 * and is never folded; neither is the newest event of all.
 */

static void hook_warn(const app *a, const char *fmt, ...)
{
    va_list ap;
    if (a->quiet) return;       /* -q silences hook warnings */
    va_start(ap, fmt);
    vsay(a, fmt, ap);
    va_end(ap);
}

static int hook_is_final(const hook_event *h) { return strcmp(h->name, "give_up") == 0; }

static int hook_is_health(const hook_event *h) { return strcmp(h->name, "health") == 0; }

static proc_t hook_spawn(app *a, const hook_event *h)
{
    char num[7][24], token[48], causes[40], why[128];
    env_var env[15];
    int health = hook_is_health(h);
    proc_t p;
    snprintf(num[0], sizeof num[0], "%d", h->err);
    snprintf(num[1], sizeof num[1], "%u", h->attempt);
    snprintf(num[2], sizeof num[2], "%u", h->delay_ms);
    snprintf(num[3], sizeof num[3], "%u", h->coalesced);
    snprintf(num[4], sizeof num[4], "%d", (int)h->reason);
    snprintf(num[5], sizeof num[5], "%lu", h->health.rtt_us);
    snprintf(num[6], sizeof num[6], "%lu", h->health.retransmits);
    env[0].name = "KA_EVENT";       env[0].value = h->name;
    env[1].name = "KA_REASON";      env[1].value = reason_token(token, sizeof token, h->reason);
    env[2].name = "KA_REASON_TEXT"; env[2].value = ka_reason_str(h->reason);
    env[3].name = "KA_REASON_CODE"; env[3].value = num[4];
    env[4].name = "KA_ERRNO";       env[4].value = num[0];
    env[5].name = "KA_ERROR_TEXT";  env[5].value = h->err_text[0] ? h->err_text : ka_sys_strerror(h->reason, h->err);
    env[6].name = "KA_ATTEMPT";     env[6].value = num[1];
    env[7].name = "KA_DELAY_MS";    env[7].value = num[2];
    env[8].name = "KA_COALESCED";   env[8].value = num[3];
    env[9].name = "KA_HOST";        env[9].value = a->srv[h->server].host_plain;
    env[10].name = "KA_PORT";       env[10].value = a->srv[h->server].port;
    /* health's own: unset for the other events */
    env[11].name = "KA_HEALTH";       env[11].value = !health ? NULL : h->health.degraded ? "degraded" : "good";
    env[12].name = "KA_HEALTH_CAUSE"; env[12].value = health ? health_causes(causes, sizeof causes, h->health.cause) : NULL;
    env[13].name = "KA_RTT_US";       env[13].value = health ? num[5] : NULL;
    env[14].name = "KA_RETRANS";      env[14].value = health ? num[6] : NULL;
    p = proc_spawn(a->exec_cmd, env, sizeof env / sizeof env[0], why, sizeof why);
    if (!p) hook_warn(a, "hook not run for %s: %s", h->name, why);
    return p;
}

static void hook_report(const app *a, const hook_event *h, unsigned long code, int signo)
{
    if (signo)
        hook_warn(a, "hook for %s killed by signal %d", h->name, signo);
    else if (code == HOOK_NOT_FOUND)
        hook_warn(a, "hook for %s: exit status %lu (command not found, or %s could not run it)", h->name, code, HOOK_SHELL);
    else if (code != 0)
        hook_warn(a, "hook for %s failed: exit status %lu", h->name, code);
}

/* Makes room: the oldest event that is not final goes into the next one. */
static void hook_fold_oldest(app *a)
{
    size_t i;
    for (i = 0; i + 1 < a->hq_len && hook_is_final(&a->hq[i]); i++) { }
    if (i + 1 >= a->hq_len) return;
    if (!a->folded)
        hook_warn(a, "hooks are falling behind (%d events waiting): folding the oldest into the next; "
                  "its hook sees how many in KA_COALESCED", HOOK_QUEUE);
    a->hq[i + 1].coalesced += a->hq[i].coalesced + 1;
    memmove(&a->hq[i], &a->hq[i + 1], (a->hq_len - i - 1) * sizeof a->hq[0]);
    a->hq_len--;
    a->folded++;
}

/* Reaps the running hook if it ended and starts the next one. Returns
 * whether a hook is running or waiting. */
static int hook_pump(app *a)
{
    unsigned long code;
    int signo;
    if (a->hook_proc) {
        if (!proc_poll(a->hook_proc, &code, &signo)) return 1;
        hook_report(a, &a->hook_now, code, signo);
        a->hook_proc = 0;
    }
    while (!a->hook_proc && a->hq_len) {
        a->hook_now = a->hq[0];
        memmove(&a->hq[0], &a->hq[1], (a->hq_len - 1) * sizeof a->hq[0]);
        a->hq_len--;
        a->hook_proc = hook_spawn(a, &a->hook_now);
    }
    if (!a->hook_proc && a->folded) {
        hook_warn(a, "hooks caught up; %u event%s had been folded into later ones", a->folded, plural(a->folded));
        a->folded = 0;
    }
    return a->hook_proc != 0;
}

static void hook_push(app *a, const hook_event *h)
{
    if (a->hq_len == HOOK_QUEUE) hook_fold_oldest(a);
    a->hq[a->hq_len++] = *h;
    hook_pump(a);
}

static void hook_event_queue(app *a, const char *name, ka_reason r, int err, unsigned attempt, unsigned delay_ms)
{
    hook_event h;
    if (!a->exec_cmd) return;
    memset(&h, 0, sizeof h);
    h.server = strcmp(name, "connect") == 0 || strcmp(name, "disconnect") == 0 ? a->srv_conn : a->srv_try;
    h.name = name;
    h.reason = r;
    h.err = err;
    if (r == KA_REASON_TLS) snprintf(h.err_text, sizeof h.err_text, "%s", a->tls_text);
    h.attempt = attempt;
    h.delay_ms = delay_ms;
    hook_push(a, &h);
}

/* The link of the current connection turned degraded, or good again. */
static void hook_health_queue(app *a, const ka_health *hl)
{
    hook_event h;
    if (!a->exec_cmd) return;
    memset(&h, 0, sizeof h);
    h.server = a->srv_conn;
    h.name = "health";
    h.reason = KA_REASON_NONE;
    h.health = *hl;
    hook_push(a, &h);
}

/* At exit: every queued hook still runs, one at a time. stdout is closed
 * first, so whoever reads the server's bytes is not kept waiting. A signal
 * stops the wait; the running hook is left to finish on its own. */
static void hooks_finish(app *a)
{
    sig_atomic_t seen = signal_count;
    unsigned long long tell_at = now_ms() + 1000;
    if (!hook_pump(a)) return;
    if (!a->stdout_closed) {
        fflush(stdout);
        fclose(stdout);
        a->stdout_closed = 1;
    }
    while (hook_pump(a)) {
        if (signal_count != seen) {
            size_t i;
            char names[128] = "";
            for (i = 0; i < a->hq_len && strlen(names) + 10 < sizeof names; i++) {
                strcat(names, i ? ", " : "");
                strcat(names, a->hq[i].name);
            }
            hook_warn(a, "stopped waiting for hooks: the hook for %s is left running%s%s", a->hook_now.name,
                      a->hq_len ? "; not run: " : "", names);
            return;
        }
        if (now_ms() >= tell_at) {
            say(a, "waiting for the hook for %s (%lu more queued); a signal stops the wait",
                a->hook_now.name, (unsigned long)a->hq_len);
            tell_at = (unsigned long long)-1;
        }
        sleep_ms(HOOK_TICK_MS);
    }
}

/* ---- statistics (--stats, SIGUSR1, -v) ---------------------------------------------
 *
 * The counters are the library's (ka_client_stats). The kernel's view of a
 * connection (round trip, retransmissions, unacknowledged bytes) exists
 * only while it is up, so kacat keeps the last one it saw: on connect, at
 * most every SAMPLE_EVERY_MS on rounds that run anyway (an idle connection
 * is never woken for it), and just before kacat closes.
 */

static void stats_take(app *a, ka_stats *st)
{
    memset(st, 0, sizeof *st);
    st->size = sizeof *st;
    if (ka_client_stats(a->c, st) == 0 && st->valid) a->seen = *st;
}

/* Only to keep the kernel's view for later. */
static void stats_look(app *a)
{
    ka_stats st;
    stats_take(a, &st);
}

/* "rtt 0.05 ms (var 0.02 ms), retransmissions 0 now, 3 in all, 0 bytes
 * unacknowledged": the fields the OS gave, none made up. */
static void kernel_text(char *buf, size_t n, const ka_stats *st)
{
    char r[32], v[32], b[32];
    buf[0] = 0;
    if (st->valid & KA_STATS_RTT) {
        append(buf, n, "rtt %s", rtt_text(r, sizeof r, st->rtt_us));
        if (st->valid & KA_STATS_RTTVAR) append(buf, n, " (var %s)", rtt_text(v, sizeof v, st->rttvar_us));
    }
    if (st->valid & KA_STATS_RETRANS)
        append(buf, n, "%sretransmissions %lu now, %lu in all", buf[0] ? ", " : "", st->retransmits, st->total_retrans);
    if (st->valid & KA_STATS_UNACKED)
        append(buf, n, "%s%s unacknowledged", buf[0] ? ", " : "", bytes_text(b, sizeof b, st->unacked_bytes));
}

/* "3 attempts, 2 connections, 1 ended (1 peer closed)" */
static void connections_text(char *buf, size_t n, const ka_stats *st)
{
    char num[3][24], w[48];
    unsigned long long ended = 0;
    int r, first = 1;
    for (r = 0; r < KA_REASON_SLOTS; r++) ended += st->disconnects[r];
    snprintf(buf, n, "%s attempt%s, %s connection%s, %s ended", count_text(num[0], sizeof num[0], st->attempts),
             plural(st->attempts), count_text(num[1], sizeof num[1], st->connections), plural(st->connections),
             count_text(num[2], sizeof num[2], ended));
    for (r = 0; r < KA_REASON_SLOTS; r++) {
        if (!st->disconnects[r]) continue;
        append(buf, n, "%s%s %s", first ? " (" : ", ", count_text(num[0], sizeof num[0], st->disconnects[r]),
               reason_words(w, sizeof w, (ka_reason)r));
        first = 0;
    }
    if (!first) append(buf, n, ")");
}

/* --stats at exit and SIGUSR1: everything in one line, always shown. */
static void stats_say(app *a)
{
    ka_stats st;
    char line[900], part[400], b[2][32], m[2][24], t[32];
    stats_take(a, &st);
    connections_text(part, sizeof part, &st);
    snprintf(line, sizeof line, "stats: %s", part);
    append(line, sizeof line, "; sent %s in %s message%s, received %s in %s message%s, %s dropped",
           bytes_text(b[0], sizeof b[0], st.bytes_sent), count_text(m[0], sizeof m[0], st.messages_sent),
           plural(st.messages_sent), bytes_text(b[1], sizeof b[1], st.bytes_received),
           count_text(m[1], sizeof m[1], st.messages_received), plural(st.messages_received),
           bytes_text(t, sizeof t, st.bytes_dropped));
    append(line, sizeof line, "; connected %s", duration_text(t, sizeof t, st.connected_ms_total));
    if (st.valid) {
        kernel_text(part, sizeof part, &st);
        append(line, sizeof line, "; %s", part);
    } else if (a->seen.valid) {
        kernel_text(part, sizeof part, &a->seen);
        append(line, sizeof line, "; last seen: %s", part);
    }
    warn(a, "%s", line);
}

/* -v: how the link is, on connect and disconnect and every
 * STATUS_EVERY_MS while connected. */
static void status_say(app *a)
{
    ka_stats st;
    char k[200], b[2][32];
    if (!a->verbose) return;
    stats_take(a, &st);
    kernel_text(k, sizeof k, st.valid ? &st : &a->seen);
    say(a, "status%s: %s%ssent %s, received %s in all", st.valid ? "" : ", as last seen", k, k[0] ? "; " : "",
        bytes_text(b[0], sizeof b[0], st.bytes_sent), bytes_text(b[1], sizeof b[1], st.bytes_received));
}

/* Once a round: a look at the kernel's view now and then, and -v's line. */
static void stats_watch(app *a)
{
    unsigned long long now;
    if ((!a->stats && !a->verbose) || ka_client_state(a->c) != KA_STATE_CONNECTED) return;
    now = now_ms();
    if (a->verbose && now >= a->status_at) {
        status_say(a);
        a->status_at = now + STATUS_EVERY_MS;
        a->sample_at = now + SAMPLE_EVERY_MS;
    } else if (now >= a->sample_at) {
        stats_look(a);
        a->sample_at = now + SAMPLE_EVERY_MS;
    }
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
    char b[32];
    if (!a->inlen) return;
    rc = ka_client_send(a->c, a->in, a->inlen);
    if (rc == 0) {
        a->accepted += a->inlen;
        a->inlen = 0;
        if (!connected && !a->said_waiting) {
            say(a, "waiting for the connection; input is queued (%s so far)", bytes_text(b, sizeof b, ka_client_pending(a->c)));
            a->said_waiting = 1;
        }
    } else if (rc != KA_EAGAIN) {       /* KA_EAGAIN: keep the chunk for the next round */
        snprintf(a->fail_text, sizeof a->fail_text, "cannot queue input: %s", ka_strerror(rc));
        warn(a, "%s", a->fail_text);
        a->end = END_ERROR;
        a->done = 1;
    }
}

/* Input is paused while the queue is full; say so once per outage, since
 * then it is waiting on the reconnect, not just on a busy connection. */
static void note_backpressure(app *a)
{
    char b[32];
    if (a->said_full || a->in_eof || ka_client_state(a->c) == KA_STATE_CONNECTED) return;
    if (a->inlen == 0 && queue_room(a) > 0) return;
    say(a, "send queue full (%s); not reading input until the connection is back",
        bytes_text(b, sizeof b, ka_client_pending(a->c)));
    a->said_full = 1;
}

/* At the end, one look at stdin without waiting, so input that had in
 * fact ended is not reported as cut short. */
static void input_settle(app *a)
{
    fd_set rd;
    long n;
    if (a->in_eof || a->inlen) return;
    FD_ZERO(&rd);
    FD_SET(input_fd(), &rd);
    if (wait_sockets(sock_nfds(input_fd()), &rd, NULL, NULL, 0) <= 0) return;
    n = input_read(a->in, sizeof a->in);
    if (n > 0) a->inlen = (size_t)n;
    else if (n == 0) a->in_eof = 1;
}

/* ---- the end: where the input went, who closed first ------------------------------ */

static unsigned long long input_sent(const app *a)
{
    unsigned long long gone = a->accepted - ka_client_pending(a->c);
    return gone > a->dropped ? gone - a->dropped : 0;
}

static int input_all_sent(const app *a)
{
    return a->in_eof && !a->in_error && a->inlen == 0 && ka_client_pending(a->c) == 0 && a->dropped == 0;
}

/* Whether kacat's FIN had gone out when this connection ended: the library
 * half-closes as soon as a finishing client's queue is empty. */
static int kacat_closed_first(const app *a, const ka_disconnect_info *di)
{
    return a->half_closed || (a->finishing && ka_client_pending(a->c) == 0 && di->unsent_bytes == 0);
}

/* Every connection's end, kacat's own stop included: did it carry input,
 * and did it end before kacat was done with it? */
static void count_connection_end(app *a, const ka_disconnect_info *di)
{
    long long gone = (long long)(a->accepted - ka_client_pending(a->c));
    int carried = gone > a->left_at_connect;
    if (carried) a->carriers++;
    a->dropped += di->unsent_bytes;
    a->end_reason = di->reason;
    a->end_err = di->sys_error;
    if (carried && di->reason != KA_REASON_LOCAL && !kacat_closed_first(a, di)) a->lost_carrier = 1;
}

/* The first that applies wins; the last line tells the rest. */
static int exit_status(const app *a)
{
    if (a->end == END_SIGNAL) return 128 + a->signo;
    if (a->end == END_ERROR || a->end == END_CONNECT_FAILED || a->end == END_FINISH_FAILED || a->in_error) return EXIT_FAILED;
    if (a->dropped) return EXIT_DROPPED;
    if (a->end == END_GAVE_UP) return EXIT_GAVE_UP;
    if (a->carriers > 1) return EXIT_SPLIT;
    if (a->end == END_SERVER_FIRST || a->lost_carrier || !input_all_sent(a)) return EXIT_SERVER_FIRST;
    return EXIT_OK;
}

/* Input that did not all reach a connection: "none of the input sent (7
 * bytes)", "9 bytes sent, 7 bytes never sent, and kacat stopped before the
 * end of its input" (kacat stopped reading, whatever the pipe held). */
static void describe_shortfall(const app *a, char *buf, size_t n)
{
    unsigned long long unsent = ka_client_pending(a->c) + a->inlen, sent = input_sent(a);
    char s[32], u[32], d[32];
    const char *unread = a->in_eof ? "" : ", and kacat stopped before the end of its input";
    bytes_text(s, sizeof s, sent);
    bytes_text(u, sizeof u, unsent);
    bytes_text(d, sizeof d, a->dropped);
    if (a->dropped)
        snprintf(buf, n, "%s of input dropped (cut off when a connection died), %s sent over %u connection%s%s%s%s",
                 d, s, a->carriers, plural(a->carriers), unsent ? ", never sent: " : "", unsent ? u : "", unread);
    else if (sent && unsent)
        snprintf(buf, n, "%s sent, %s never sent%s", s, u, unread);
    else if (unsent)
        snprintf(buf, n, "none of the input sent (%s)%s", u, unread);
    else
        snprintf(buf, n, "%s sent%s", sent ? s : "nothing", unread);
}

/* "all input sent (14 bytes) over one connection", or the shortfall. */
static void describe_input(const app *a, char *buf, size_t n)
{
    char s[32];
    bytes_text(s, sizeof s, input_sent(a));
    if (!input_all_sent(a))
        describe_shortfall(a, buf, n);
    else if (input_sent(a) == 0)
        snprintf(buf, n, "no input");
    else if (a->carriers > 1)
        snprintf(buf, n, "all input sent (%s), split over %u connections", s, a->carriers);
    else if (a->lost_carrier)
        snprintf(buf, n, "all input sent (%s) over one connection, which ended before kacat's end of input", s);
    else
        snprintf(buf, n, "all input sent (%s) over one connection", s);
}

static void describe_end(const app *a, char *buf, size_t n)
{
    char cause[360], t[32];
    cause_text(a, cause, sizeof cause, a->end_reason, a->end_err);
    switch (a->end) {
    case END_INPUT_DONE:
        if (a->server_eof) snprintf(buf, n, "the server ended its side first; kacat sent the rest, then closed");
        else if (a->server_closed) snprintf(buf, n, "kacat closed first, then the server");
        else if (a->lingered_out) snprintf(buf, n, "kacat closed first; the server had not closed after --linger %s", time_text(t, sizeof t, a->linger_ms));
        else snprintf(buf, n, "kacat closed first; the wait for the server ended: %s", cause);
        break;
    case END_SERVER_FIRST:
        if (a->end_reason == KA_REASON_PEER_CLOSED) snprintf(buf, n, "the server closed first");
        else snprintf(buf, n, "the connection ended first: %s", cause);
        break;
    case END_FINISH_FAILED:
        snprintf(buf, n, "kacat closed first, then the connection failed: %s", cause);
        break;
    case END_GAVE_UP:
        snprintf(buf, n, "gave up after %u attempt%s: %s", a->attempts, plural(a->attempts), cause);
        break;
    case END_CONNECT_FAILED:
        snprintf(buf, n, "no connection (--once): %s", cause);
        break;
    case END_SIGNAL:
        snprintf(buf, n, "interrupted by signal %d while %s", a->signo, a->end_state);
        break;
    default:
        snprintf(buf, n, "%s", a->fail_text[0] ? a->fail_text : "stopped");
        break;
    }
}

/* The last line: shown unless -q and all went well. */
static void say_end(const app *a, int status)
{
    char input[256], end[480];
    describe_input(a, input, sizeof input);
    describe_end(a, end, sizeof end);
    if (status == EXIT_OK) say(a, "exit 0: %s; %s", input, end);
    else warn(a, "exit %d: %s; %s", status, input, end);
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
    if (strcmp(addr, a->srv[a->srv_conn].host_plain) != 0) snprintf(buf, n, " (%s)", addr);
}

/* Which server the client is at, while it is connecting or connected
 * (ka_client_endpoint says -1 in between): the one a retry concerns. */
static void note_server(app *a)
{
    int k = ka_client_endpoint(a->c);
    if (k >= 0 && k < a->nsrv) a->srv_try = k;
}

/* The hello goes first on every connection: sent from on_connect, it
 * is the session's, ahead of the backlog. A fresh connection's socket
 * buffer takes it whole, so it never counts as input (pending, dropped). */
static void send_hello(app *a)
{
    int rc;
    if (!a->hello_len) return;
    rc = ka_client_send(a->c, a->hello, a->hello_len);
    if (rc == 0) return;
    snprintf(a->fail_text, sizeof a->fail_text, "cannot send --hello: %s", ka_strerror(rc));
    warn(a, "%s", a->fail_text);
    a->end = END_ERROR;
    a->done = 1;
    ka_client_stop(a->c);
}

static void on_connect(ka_client *c, void *user)
{
    app *a = (app *)user;
    char peer[80], b[32];
    size_t pending = ka_client_pending(c);
    note_server(a);
    a->srv_conn = a->srv_try;
    peer_suffix(a, peer, sizeof peer);
    say(a, "connected to %s%s", a->srv[a->srv_conn].where, peer);
    if (pending) say(a, "sending %s queued while disconnected", bytes_text(b, sizeof b, pending));
    a->left_at_connect = (long long)(a->accepted - pending);
    a->said_waiting = a->said_full = a->just_lost = 0;
    a->server_eof = 0;
    a->sample_at = a->status_at = now_ms();     /* a first look, and -v's first line, now */
    stats_watch(a);
    hook_event_queue(a, "connect", KA_REASON_NONE, 0, 0, 0);
    send_hello(a);
}

/* --keep-sending: the server ended its side and everything it sent has
 * been written out. Its byte stream is over, so stdout ends here (a reader
 * sees EOF now, not when the upload is done); the input goes on. */
static void on_eof(ka_client *c, void *user)
{
    app *a = (app *)user;
    (void)c;
    a->server_eof = 1;
    say(a, "the server ended its side; still sending, stdout closed");
    if (!a->stdout_closed) {
        fflush(stdout);
        fclose(stdout);
        a->stdout_closed = 1;
    }
}

/* What a later connection sends after stdout was closed at a server's
 * end of stream has nowhere to go: counted and said once. */
static void discard_output(app *a, size_t len)
{
    char b[32];
    if (!a->discarded)
        warn(a, "the server sends again after its end of stream (a new connection); stdout is closed: discarding it");
    a->discarded += len;
    if (a->verbose) say(a, "%s discarded so far", bytes_text(b, sizeof b, a->discarded));
}

static void on_data(ka_client *c, const void *data, size_t len, void *user)
{
    app *a = (app *)user;
    if (a->stdout_closed) { discard_output(a, len); return; }
    if (fwrite(data, 1, len, stdout) != len || fflush(stdout) != 0) {
        snprintf(a->fail_text, sizeof a->fail_text, "writing stdout: %s", strerror(errno));
        warn(a, "%s", a->fail_text);
        a->end = END_ERROR;
        a->done = 1;
        ka_client_stop(c);
    }
}

/* The connection that ka_client_finish was ending is gone, and the client
 * stopped. After the half-close the server closing is the normal end; a
 * reset means it may not have taken the last bytes; an idle timeout
 * (--idle-timeout) just ends the wait early. */
static void finish_on_disconnect(app *a, const ka_disconnect_info *di)
{
    char cause[360], b[32];
    if (di->unsent_bytes)
        warn(a, "dropped %s of input: the connection died in the middle of a message",
             bytes_text(b, sizeof b, di->unsent_bytes));
    if (!kacat_closed_first(a, di)) {
        a->end = END_SERVER_FIRST;
    } else if (di->reason == KA_REASON_PEER_CLOSED || di->reason == KA_REASON_HEARTBEAT || di->reason == KA_REASON_LOCAL) {
        a->end = END_INPUT_DONE;
        a->server_closed = di->reason == KA_REASON_PEER_CLOSED;
        if (a->server_closed && a->verbose) say(a, "server closed the connection");
    } else {
        warn(a, "connection lost after kacat's end of input: %s; the server may not have received the last bytes",
             cause_text(a, cause, sizeof cause, di->reason, di->sys_error));
        a->end = END_FINISH_FAILED;
    }
    status_say(a);
    a->done = 1;
}

/* A stalled peer is alive but reads nothing: say what that means. */
static void explain_stall(const app *a)
{
    char t[32];
    say(a, "the server is alive but took no data for --stall-timeout %s (its receive window stayed closed)",
        time_text(t, sizeof t, a->cfg.stall_timeout_ms));
}

static void on_disconnect(ka_client *c, const ka_disconnect_info *di, void *user)
{
    app *a = (app *)user;
    char cause[360], b[32];
    note_tls_error(a, di->reason);
    count_connection_end(a, di);
    if (a->done) return;        /* our own ka_client_stop: nothing to tell */
    if (a->finishing && ka_client_state(c) == KA_STATE_STOPPED) {
        finish_on_disconnect(a, di);    /* the end; the client makes no retry */
        return;
    }
    say(a, "connection lost after %.1f s: %s", (double)di->connected_ms / 1000.0,
        cause_text(a, cause, sizeof cause, di->reason, di->sys_error));
    if (di->reason == KA_REASON_STALLED) explain_stall(a);
    status_say(a);
    if (di->unsent_bytes)
        warn(a, "dropped %s of input: the connection died in the middle of a message",
             bytes_text(b, sizeof b, di->unsent_bytes));
    hook_event_queue(a, "disconnect", di->reason, di->sys_error, 0, 0);
    if (a->once) {
        a->end = END_SERVER_FIRST;
        a->done = 1;
        ka_client_stop(c);      /* no retry: the library's own is not scheduled yet */
        return;
    }
    a->just_lost = 1;
}

static void on_retry(ka_client *c, const ka_retry_info *ri, void *user)
{
    app *a = (app *)user;
    char cause[360], delay[32];
    (void)c;
    note_tls_error(a, ri->reason);
    duration_text(delay, sizeof delay, ri->delay_ms);
    if (a->just_lost)
        say(a, "reconnecting in %s (attempt %u)", delay, ri->attempt);
    else
        say(a, "connect failed: %s; retrying in %s (attempt %u)",
            cause_text(a, cause, sizeof cause, ri->reason, ri->sys_error), delay, ri->attempt);
    a->just_lost = 0;
    hook_event_queue(a, "retry", ri->reason, ri->sys_error, ri->attempt, ri->delay_ms);
}

static void on_give_up(ka_client *c, const ka_retry_info *ri, void *user)
{
    app *a = (app *)user;
    char cause[360];
    (void)c;
    note_tls_error(a, ri->reason);
    cause_text(a, cause, sizeof cause, ri->reason, ri->sys_error);
    if (a->once) warn(a, "cannot connect to %s: %s", a->nsrv > 1 ? "any server" : a->where_all, cause);
    else warn(a, "gave up after %u attempt%s: %s", ri->attempt, plural(ri->attempt), cause);
    a->end = a->once ? END_CONNECT_FAILED : END_GAVE_UP;
    a->attempts = ri->attempt;
    a->end_reason = ri->reason;
    a->end_err = ri->sys_error;
    a->done = 1;
    hook_event_queue(a, "give_up", ri->reason, ri->sys_error, ri->attempt, 0);
}

/* -v's words for a health change: "link degraded (stalled): rtt 5.37 ms,
 * 0 retransmissions; the server takes no data (...)". */
static void health_text(char *buf, size_t n, const ka_health *h)
{
    char causes[40], rtt[32], t[32];
    if (h->rtt_us) rtt_text(rtt, sizeof rtt, h->rtt_us);
    else snprintf(rtt, sizeof rtt, "unknown");
    if (!h->degraded) {
        snprintf(buf, n, "link good again: rtt %s", rtt);
        return;
    }
    snprintf(buf, n, "link degraded (%s): rtt %s, %lu retransmission%s", health_causes(causes, sizeof causes, h->cause),
             rtt, h->retransmits, plural(h->retransmits));
    if (h->cause & KA_HEALTH_UNACKED)
        append(buf, n, "; data waiting %s for an acknowledgement", duration_text(t, sizeof t, h->unacked_ms));
    if (h->cause & KA_HEALTH_STALLED)
        append(buf, n, "; the server takes no data (its receive window is closed)");
    if (h->deadline_ms)
        append(buf, n, "; %s left before the connection is given up", duration_text(t, sizeof t, h->deadline_ms));
}

/* The link turned degraded, or good again (the library looks while data
 * is outstanding): -v says how, the hook hears it. */
static void on_health(ka_client *c, const ka_health *h, void *user)
{
    app *a = (app *)user;
    char line[400];
    (void)c;
    if (a->verbose) {
        health_text(line, sizeof line, h);
        say(a, "%s", line);
    }
    hook_health_queue(a, h);
}

/* The library logs each attempt as it starts: the moment to see which
 * server it goes to, even when it fails within the same call. */
static void on_log(ka_client *c, int level, const char *msg, void *user)
{
    app *a = (app *)user;
    (void)c;
    note_server(a);
    if (level >= KA_LOG_WARN) warn(a, "%s", msg);
    else if (a->verbose) say(a, "%s", msg);
}

/* ---- the loop ------------------------------------------------------------------------- */

/* End of input, once the last chunk is queued: when a live connection has
 * taken all of it, ka_client_finish half-closes, and kacat lingers for the
 * server's last words. Until then the client reconnects as usual, and
 * on_connect can still send the --hello, which a finishing client would
 * refuse (see the top of this file). */
static void finish_if_done(app *a)
{
    ka_state st = ka_client_state(a->c);
    size_t pending = ka_client_pending(a->c);
    char b[32];
    if (!a->in_eof || a->inlen || a->done) return;
    if (st != KA_STATE_CONNECTED && pending && !a->said_eof_wait) {
        say(a, "input ended; %s still to send, waiting for the connection", bytes_text(b, sizeof b, pending));
        a->said_eof_wait = 1;
    }
    if (!a->finishing) {
        int rc;
        if (st != KA_STATE_CONNECTED || pending) return;     /* still delivering */
        rc = ka_client_finish(a->c);
        if (rc != 0) {
            snprintf(a->fail_text, sizeof a->fail_text, "cannot finish: %s", ka_strerror(rc));
            warn(a, "%s", a->fail_text);
            a->end = END_ERROR;
            a->done = 1;
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
    if (now_ms() >= a->linger_until) {
        a->end = END_INPUT_DONE;
        a->lingered_out = 1;
        a->done = 1;
        ka_client_stop(a->c);
    }
}

/* How long the next wait may last: the client's next timer, the linger
 * deadline, a short tick while a hook runs so its end is seen, and where
 * signals do not interrupt select() (Windows), SIGNAL_CHECK_MS. */
static long wait_ms(const app *a, int hook_running)
{
    long t = ka_client_timeout_ms(a->c);
    if (a->half_closed) {
        unsigned long long now = now_ms();
        long d = a->linger_until > now ? (long)(a->linger_until - now) : 0;
        if (t < 0 || d < t) t = d;
    }
    if (hook_running && (t < 0 || t > HOOK_TICK_MS)) t = HOOK_TICK_MS;
    if (a->verbose && ka_client_state(a->c) == KA_STATE_CONNECTED) {
        unsigned long long now = now_ms();
        long d = a->status_at > now ? (long)(a->status_at - now) : 0;
        if (t < 0 || d < t) t = d;
    }
    if (SIGNAL_CHECK_MS >= 0 && (t < 0 || t > SIGNAL_CHECK_MS)) t = SIGNAL_CHECK_MS;
    return t;
}

static void fail_select(app *a, const char *what, int e)
{
    snprintf(a->fail_text, sizeof a->fail_text, "%s: %s", what, ka_sys_strerror(KA_REASON_ERROR, e));
    warn(a, "%s", a->fail_text);
    a->end = END_ERROR;
    a->done = 1;
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
        fail_select(a, "poll", sock_errno());
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
    long t = wait_ms(a, hook_pump(a));
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
        n = wait_sockets(nfds, &rd, &wr, &ex, t);
        if (n < 0) {
            int e = sock_errno();
            if (e != SOCK_EINTR) { fail_select(a, "select", e); return; }
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
    stats_watch(a);
}

/* SIGINT/SIGTERM end the loop so kacat can say what was left unsent; one
 * during the wait for hooks at exit ends that wait. */
static void on_signal(int sig)
{
    signal_rearm(sig, on_signal);
    got_signal = sig;
    signal_count++;
}

/* SIGUSR1: the loop prints the statistics (a handler may print nothing). */
static void on_status_signal(int sig)
{
    (void)sig;
    got_status = 1;
}

static void interrupted(app *a)
{
    char b[32];
    size_t unsent = ka_client_pending(a->c) + a->inlen;
    a->end = END_SIGNAL;
    a->signo = (int)got_signal;
    a->end_state = ka_state_str(ka_client_state(a->c));
    if (unsent) warn(a, "interrupted while %s; %s of input not sent", a->end_state, bytes_text(b, sizeof b, unsent));
}

static int run(app *a)
{
    int status;
    while (!a->done && !got_signal) {
        loop_once(a);
        if (got_status) {
            got_status = 0;
            stats_say(a);
        }
    }
    if (!a->done) interrupted(a);
    a->done = 1;                /* on_disconnect: no "connection lost" for our own stop */
    if (a->stats) stats_look(a);    /* the kernel's view, while a connection may still be up */
    ka_client_stop(a->c);
    input_settle(a);
    status = exit_status(a);
    hooks_finish(a);
    if (a->stats) stats_say(a);
    say_end(a, status);
    return status;
}

static void set_callbacks(app *a)
{
    a->cfg.cb.on_connect = on_connect;
    a->cfg.cb.on_data = on_data;
    a->cfg.cb.on_disconnect = on_disconnect;
    a->cfg.cb.on_retry = on_retry;
    a->cfg.cb.on_give_up = on_give_up;
    a->cfg.cb.on_log = on_log;
    a->cfg.cb.on_eof = on_eof;
    /* Only when someone listens: it makes the library look at a busy
     * connection every 250 ms. */
    if (a->verbose || a->exec_cmd) a->cfg.cb.on_health = on_health;
    a->cfg.user = a;
}

/* The client first: the transport must outlive it. */
static void app_free(app *a)
{
    ka_client_free(a->c);
#ifdef KACAT_TLS
    ka_openssl_free(a->tls);
#endif
    free(a);
}

int main(int argc, char **argv)
{
    app *a = (app *)malloc(sizeof *a);   /* holds a 64 KiB input chunk: not on the stack */
    int rc;
    if (!a) { fputs("kacat: out of memory\n", stderr); return EXIT_FAILED; }
    if (platform_init() != 0) { fputs("kacat: cannot start Winsock\n", stderr); free(a); return EXIT_FAILED; }
    app_defaults(a);
    rc = parse_args(a, argc, argv);
    if (rc == PARSE_HELP) { help(); free(a); return EXIT_OK; }
    if (rc == PARSE_VERSION) { version(); free(a); return EXIT_OK; }
    if (rc < 0 || check_config(a) != 0 || tls_setup(a) != 0) { free(a); return EXIT_USAGE; }
    if (a->w_bare && !a->quiet)
        warn(a, "-w %s is %s milliseconds (nc counts seconds there: write -w %ss for seconds)", a->w_bare, a->w_bare, a->w_bare);
    set_callbacks(a);
    rc = ka_client_new(&a->c, &a->cfg);
    if (rc != 0) {
        fprintf(stderr, "kacat: %s\n", ka_strerror(rc));
        app_free(a);
        return rc == KA_EINVAL ? EXIT_USAGE : EXIT_FAILED;
    }
    rc = input_start();
    if (rc < 0) {
        fputs("kacat: cannot start reading stdin\n", stderr);
        app_free(a);
        return EXIT_FAILED;
    }
    if (rc == 0) a->in_eof = 1;     /* stdin closed: nothing to send */
    catch_signals(on_signal);
    catch_status_signal(on_status_signal);
    say(a, "connecting to %s%s%s%s", a->where_all, a->tls ? " with " : "", a->tls ? a->tls->name : "",
        a->once ? " (once: no reconnect)" : "");
    ka_client_start(a->c);
    rc = run(a);
    app_free(a);
    return rc;
}
