/* race_raw.c: the baseline. Plain blocking sockets: send() then recv(),
 * setsockopt for keepalive, poll() as the only timer. What every library
 * is measured against. */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "race.h"

const char race_name[] = "plain";
const char race_keepalive_note[] =
    "no keepalive unless the program asks; setsockopt gives every knob: idle, interval and count, whole seconds";

const char *race_version(void) { return "blocking send()/recv()"; }

static int dial(const char *host, int port, int keepalive)
{
    unsigned char sa[32];
    unsigned len;
    int fd;
    if (race_addr(host, port, sa, &len) != 0) return -1;
    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    if (keepalive && race_set_keepalive(fd, RACE_KEEPALIVE_IDLE_S, RACE_KEEPALIVE_INTVL_S, RACE_KEEPALIVE_CNT) != 0) {
        close(fd);
        return -1;
    }
    if (connect(fd, (struct sockaddr *)sa, len) != 0) { close(fd); return -1; }
    return fd;
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int recv_all(int fd, char *p, size_t n)
{
    while (n > 0) {
        ssize_t r = recv(fd, p, n, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

int race_rtt(const char *host, int port, size_t size, long n, double *us)
{
    static char msg[65536], back[65536];
    long i;
    long long t0;
    int fd = dial(host, port, 1);
    if (fd < 0 || size > sizeof msg) return -1;
    memset(msg, 'p', size);
    t0 = race_now_us();
    for (i = 0; i < n; i++)
        if (send_all(fd, msg, size) != 0 || recv_all(fd, back, size) != 0) break;
    *us = (double)(race_now_us() - t0) / (double)n;
    close(fd);
    return i == n ? 0 : -1;
}

int race_bulk(const char *host, int port, long long bytes, double *secs)
{
    static char buf[65536];
    long long sent = 0, t0;
    char c;
    int fd = dial(host, port, 1);
    if (fd < 0) return -1;
    memset(buf, 'z', sizeof buf);
    t0 = race_now_us();
    while (sent < bytes) {
        size_t n = bytes - sent < (long long)sizeof buf ? (size_t)(bytes - sent) : sizeof buf;
        if (send_all(fd, buf, n) != 0) break;
        sent += (long long)n;
    }
    shutdown(fd, SHUT_WR);
    /* the server closes once it has read everything */
    while (recv(fd, &c, 1, 0) > 0) { }
    *secs = (double)(race_now_us() - t0) / 1e6;
    close(fd);
    return sent == bytes ? 0 : -1;
}

int race_hold(const char *host, int port, int n, int all)
{
    int i;
    (void)all;                  /* a blocking connect: one at a time */
    for (i = 0; i < n; i++)
        if (dial(host, port, 1) < 0) return -1;
    return 0;
}

int race_reconnect(const char *host, int port, int n, int delay_ms, long long *late_us)
{
    int i, fd = dial(host, port, 1);
    for (i = 0; i < n && fd >= 0; i++) {
        long long due;
        close(fd);
        due = race_now_us() + (long long)delay_ms * 1000;
        poll(NULL, 0, delay_ms);
        fd = dial(host, port, 1);
        late_us[i] = race_now_us() - due;
    }
    if (fd >= 0) close(fd);
    return i == n ? 0 : -1;
}

int race_idle(const char *host, int port, int secs)
{
    struct pollfd p;
    long long end;
    int fd = dial(host, port, 1);
    if (fd < 0) return -1;
    p.fd = fd;
    p.events = POLLIN;
    race_idle_begin();
    end = race_now_us() + (long long)secs * 1000000;
    while (race_now_us() < end) poll(&p, 1, (int)((end - race_now_us()) / 1000) + 1);
    race_idle_end();
    close(fd);
    return 0;
}

int race_detect(const char *host, int port, int tight, int bound_ms)
{
    unsigned char sa[32];
    unsigned len;
    char buf[64];
    struct pollfd p;
    long long end;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || race_addr(host, port, sa, &len) != 0) return -1;
    /* setsockopt takes whole seconds, at least 1, and at least 1 probe */
    if (tight && race_set_keepalive(fd, 1, 1, 1) != 0) return -1;
    if (connect(fd, (struct sockaddr *)sa, len) != 0 || send_all(fd, "hello\n", 6) != 0 || recv_all(fd, buf, 6) != 0)
        return -1;
    race_ready(fd);
    p.fd = fd;
    p.events = POLLIN;
    end = race_now_us() + (long long)bound_ms * 1000;
    while (race_now_us() < end) {
        if (poll(&p, 1, (int)((end - race_now_us()) / 1000) + 1) <= 0) continue;
        if (recv(fd, buf, sizeof buf, 0) <= 0) {
            race_detected(strerror(errno));
            break;
        }
    }
    close(fd);
    return 0;
}
