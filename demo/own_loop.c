/* own_loop: ka_client inside an application's own select() loop.
 *
 *   own_loop HOST PORT
 *
 * The application waits on three things at once: stdin (each line is sent
 * to the server), a timer of its own (a status line every 5 s), and the
 * client. The client takes part through three calls:
 *
 *   ka_client_fdset_ex()    adds its socket to the sets (the socket changes
 *                           on every reconnect, so ask each round)
 *   ka_client_timeout_ms()  when its next timer (retry, heartbeat) is due
 *   ka_client_process_ex()  after every select(), timed out or not
 *
 * (The _ex variants take the exception set too, where Windows reports a
 * failed connect; on POSIX ka_client_fdset / ka_client_process do as well.)
 *
 * Callbacks run from inside ka_client_process_ex(). End of input: quit once
 * the queue is empty and replies had a second to come back, or after 5 s.
 */
/* ---- platform: the only part that differs on Windows ----------------------
 * demo_os.h has the clock and the select() that copes with empty sets.
 * Windows select() takes sockets only, so there stdin is read by a thread
 * that passes it on through a loopback socket (demo/win_stdin.h).
 * Elsewhere stdin is fd 0. */
#include "demo_os.h"
#include "ka_client.h"
#ifdef _WIN32
#include "win_stdin.h"

static int input_start(void)
{
    WSADATA wsa;
    return WSAStartup(MAKEWORD(2, 2), &wsa) == 0 && win_stdin_start() > 0 ? 0 : -1;
}
static ka_socket input_fd(void) { return win_stdin_socket; }
static long input_read(char *buf, size_t len) { return recv(win_stdin_socket, buf, (int)len, 0); }
#else
#include <unistd.h>

static int input_start(void) { return 0; }
static ka_socket input_fd(void) { return 0; }
/* read(), not fgets(): stdio could buffer lines select() never sees. */
static long input_read(char *buf, size_t len) { return (long)read(0, buf, len); }
#endif

#define TICK_MS 5000

static void on_connect(ka_client *c, void *user) { (void)c; (void)user; puts("* connected"); }

static void on_data(ka_client *c, const void *data, size_t len, void *user)
{
    (void)c; (void)user;
    printf("< %.*s", (int)len, (const char *)data);
}

static void on_disconnect(ka_client *c, const ka_disconnect_info *di, void *user)
{
    (void)c; (void)user;
    printf("* lost after %lu ms: %s\n", di->connected_ms, ka_reason_str(di->reason));
}

static void on_retry(ka_client *c, const ka_retry_info *ri, void *user)
{
    (void)c; (void)user;
    printf("* retry %u in %u ms\n", ri->attempt, ri->delay_ms);
}

/* The application's own periodic work. */
static void tick(ka_client *c)
{
    unsigned long n = (unsigned long)ka_client_pending(c);
    printf("* tick: %s, %lu byte%s queued\n", ka_state_str(ka_client_state(c)), n, n == 1 ? "" : "s");
}

/* A full queue (KA_EAGAIN) drops the input here; demo/kacat.c shows how to
 * hold it back instead (backpressure). */
static void send_input(ka_client *c, const char *buf, size_t len)
{
    int rc = ka_client_send(c, buf, len);
    if (rc != 0) printf("* %lu bytes not sent: %s\n", (unsigned long)len, ka_strerror(rc));
}

int main(int argc, char **argv)
{
    ka_config cfg;
    ka_client *c;
    char buf[1024];
    int input_open = 1;
    unsigned long long next_tick = now_ms() + TICK_MS, eof_at = 0;

    if (argc != 3) { fprintf(stderr, "usage: own_loop HOST PORT\n"); return 2; }
    setvbuf(stdout, NULL, _IONBF, 0);
    ka_config_init(&cfg);
    cfg.host = argv[1];
    cfg.port = argv[2];
    cfg.backoff_initial_ms = 500;
    cfg.cb.on_connect = on_connect;
    cfg.cb.on_data = on_data;
    cfg.cb.on_disconnect = on_disconnect;
    cfg.cb.on_retry = on_retry;
    if (ka_client_new(&c, &cfg) != 0) { fprintf(stderr, "own_loop: bad HOST or PORT\n"); return 2; }
    if (input_start() != 0) { fprintf(stderr, "own_loop: cannot read stdin\n"); return 1; }
    ka_client_start(c);

    for (;;) {
        fd_set rd, wr, ex;
        unsigned long long now = now_ms();
        long t = (long)(next_tick > now ? next_tick - now : 0), kt;
        int nfds, n;
        if (!input_open && t > 100) t = 100;    /* check the quit condition soon */

        FD_ZERO(&rd);
        FD_ZERO(&wr);
        FD_ZERO(&ex);
        nfds = ka_client_fdset_ex(c, &rd, &wr, &ex);
        if (nfds == KA_EFDSETSIZE) { fprintf(stderr, "own_loop: socket too large for select()\n"); break; }
        if (input_open) { FD_SET(input_fd(), &rd); if (nfds < (int)input_fd() + 1) nfds = (int)input_fd() + 1; }

        /* Sleep until our timer or the client's, whichever comes first. */
        kt = ka_client_timeout_ms(c);
        if (kt >= 0 && kt < t) t = kt;
        n = wait_sockets(nfds, &rd, &wr, &ex, t);
        if (n < 0 && sock_errno() == SOCK_EINTR) { FD_ZERO(&rd); FD_ZERO(&wr); FD_ZERO(&ex); }
        else if (n < 0) { fprintf(stderr, "own_loop: select failed\n"); break; }

        ka_client_process_ex(c, &rd, &wr, &ex);    /* socket events and due timers */

        if (input_open && FD_ISSET(input_fd(), &rd)) {
            long got = input_read(buf, sizeof buf);
            if (got > 0) send_input(c, buf, (size_t)got);
            else { input_open = 0; eof_at = now_ms(); }
        }
        if (now_ms() >= next_tick) { tick(c); next_tick += TICK_MS; }
        if (!input_open && now_ms() >= eof_at + (ka_client_pending(c) ? 5000 : 1000)) break;
    }
    if (ka_client_pending(c)) printf("* quitting with %lu bytes unsent\n", (unsigned long)ka_client_pending(c));
    ka_client_free(c);
    return 0;
}
