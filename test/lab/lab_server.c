/* lab_server: the peer inside the lab's server namespace.
 *
 * Listens on ADDR:PORT (-l may be given up to MAX_LISTEN times, IPv4 or
 * IPv6) and serves every connection in one of four modes:
 *   echo    sends back whatever arrives (an alive, healthy server)
 *   sink    reads and discards, never sends (an application that hangs while
 *           its kernel still answers keepalive probes)
 *   hold    never reads: what the client sends stays unread, so if this
 *           process is killed its kernel resets the connection (RST)
 *   verify  reads lab_client's sequence pattern (records "%015llu\n",
 *           numbered from 0) and checks that it arrives complete, intact and
 *           in order, across connections: see verify_bytes
 * Options:
 *   -P AFTER:PAUSE  AFTER ms after the first accept, stop reading for PAUSE
 *                   ms (0: for good), then read again; the window closes and
 *                   the kernel answers the client's zero-window probes
 *   -r BYTES        SO_RCVBUF of every connection (a small, fixed window)
 *   -R MS           if the port is taken, keep trying to bind for up to MS
 *   -K MS           close each connection MS after accepting it (FIN): a
 *                   server that keeps sending its clients away
 * SIGUSR1 closes every accepted connection (an orderly close: FIN).
 * "accept" names the client's address and port as the server saw them.
 *
 * Each event is one line, "<monotonic ms> <event> key=value ...", on the
 * same clock as lab_client's. The program exits after -T milliseconds. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <signal.h>
#include <poll.h>
#include <unistd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include "ka_client.h"
#include "testlib.h"

#define MAX_CONN 8
#define MAX_LISTEN 4
#define REC_LEN 16                          /* 15 digits and '\n' */
#define SEEN_BITS (1u << 24)                /* duplicate detection for the first 16 M records */

enum mode { ECHO, SINK, HOLD, VERIFY };

static volatile sig_atomic_t close_all;

static void on_usr1(int sig) { (void)sig; close_all = 1; }

/* ---- the sequence verifier ---------------------------------------------------
 * One stream of records across every connection, as the application sees
 * it. A record whose number is the next one expected is in order; a higher
 * number leaves a gap (records missing); a lower one is a duplicate if it
 * was seen before, else a late record (reordered), which fills part of a
 * gap. Anything that is not 15 digits and a newline is bad, and the reader
 * resynchronises after the next newline. */

static struct {
    unsigned long long bytes, records, next, gaps, dups, reorders, bad;
    unsigned char *seen;
    char rec[REC_LEN];
    size_t have;                            /* bytes of rec collected */
    int skipping;                           /* resynchronising: drop up to '\n' */
    int dirty;                              /* changed since the last report */
} v;

static void verify_record(const char *r)
{
    unsigned long long n = 0;
    int i;
    for (i = 0; i < REC_LEN - 1; i++) {
        if (r[i] < '0' || r[i] > '9') { v.bad++; return; }
        n = n * 10 + (unsigned)(r[i] - '0');
    }
    v.records++;
    if (n >= v.next) {
        v.gaps += n - v.next;
        v.next = n + 1;
    } else if (n < SEEN_BITS && (v.seen[n / 8] & (1u << (n % 8)))) {
        v.dups++;
    } else {
        v.reorders++;
        if (v.gaps) v.gaps--;
    }
    if (n < SEEN_BITS) v.seen[n / 8] |= (unsigned char)(1u << (n % 8));
}

static void verify_bytes(const char *p, size_t n)
{
    v.bytes += n;
    v.dirty = 1;
    while (n > 0) {
        char ch = *p++;
        n--;
        if (v.skipping) { v.skipping = ch != '\n'; continue; }
        v.rec[v.have++] = ch;
        if (ch == '\n' && v.have < REC_LEN) { v.bad++; v.have = 0; continue; }   /* short record */
        if (v.have < REC_LEN) continue;
        v.have = 0;
        if (ch != '\n') { v.bad++; v.skipping = 1; continue; }                    /* long record */
        verify_record(v.rec);
    }
}

static void verify_report(void)
{
    printf("%llu verify bytes=%llu records=%llu next=%llu gaps=%llu dups=%llu reorders=%llu bad=%llu\n",
           t_now_ms(), v.bytes, v.records, v.next, v.gaps, v.dups, v.reorders, v.bad);
    v.dirty = 0;
}

/* ---- options ---- */

static void usage(void)
{
    fprintf(stderr, "usage: lab_server -l ADDR [-l ADDR]... -p PORT [-m echo|sink|hold|verify]\n"
                    "                  [-P after_ms:pause_ms] [-r rcvbuf_bytes] [-R bind_retry_ms]\n"
                    "                  [-K close_after_ms] [-T lifetime_ms]\n");
    exit(2);
}

static unsigned long num(const char *s, char stop, const char **rest)
{
    char *end;
    unsigned long val = strtoul(s, &end, 10);
    if (end == s || *end != stop) usage();
    if (rest) *rest = end + 1;
    return val;
}

/* The address and port of a peer, as "ADDR port=N". */
static const char *peer_text(const struct sockaddr_storage *ss, char *out, size_t len)
{
    char a[64] = "-";
    unsigned port = 0;
    if (ss->ss_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, a, sizeof a);
        port = ntohs(((const struct sockaddr_in *)ss)->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, a, sizeof a);
        port = ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
    }
    snprintf(out, len, "%s port=%u", a, port);
    return out;
}

/* Binds, retrying while the port is taken until retry_ms have passed. */
static ka_socket listen_retry(const char *addr, const char *port, unsigned long retry_ms)
{
    unsigned long long t0 = t_now_ms();
    unsigned tries = 0;
    ka_socket s;
    while ((s = t_listen_on(addr, port, 8)) == KA_INVALID_SOCKET && errno == EADDRINUSE &&
           t_now_ms() - t0 < retry_ms) {
        tries++;
        t_sleep_ms(20);
    }
    if (tries) printf("%llu bind-wait tries=%u ms=%llu\n", t_now_ms(), tries, t_now_ms() - t0);
    return s;
}

int main(int argc, char **argv)
{
    const char *addr[MAX_LISTEN], *port = NULL, *rest;
    enum mode mode = ECHO;
    unsigned long lifetime_ms = 60000, pause_after = 0, pause_ms = 0, retry_ms = 0, close_after = 0;
    unsigned long long end, first_accept = 0, last_report = 0;
    unsigned long long accepted_at[MAX_LISTEN + MAX_CONN];
    int pausing = 0, paused = 0, resumed = 0, rcvbuf = 0;
    struct pollfd p[MAX_LISTEN + MAX_CONN];
    int said_unread[MAX_LISTEN + MAX_CONN];
    struct sigaction sa;
    int opt, i, nl = 0, n;

    while ((opt = getopt(argc, argv, "l:p:m:P:r:R:K:T:")) != -1) {
        switch (opt) {
        case 'l':
            if (nl == MAX_LISTEN) usage();
            addr[nl++] = optarg;
            break;
        case 'p': port = optarg; break;
        case 'm':
            if (strcmp(optarg, "echo") == 0) mode = ECHO;
            else if (strcmp(optarg, "sink") == 0) mode = SINK;
            else if (strcmp(optarg, "hold") == 0) mode = HOLD;
            else if (strcmp(optarg, "verify") == 0) mode = VERIFY;
            else usage();
            break;
        case 'P':
            pause_after = num(optarg, ':', &rest);
            pause_ms = num(rest, '\0', NULL);
            pausing = 1;
            break;
        case 'r': rcvbuf = (int)num(optarg, '\0', NULL); break;
        case 'R': retry_ms = num(optarg, '\0', NULL); break;
        case 'K': close_after = num(optarg, '\0', NULL); break;
        case 'T': lifetime_ms = num(optarg, '\0', NULL); break;
        default: usage();
        }
    }
    if (!nl || !port) usage();
    setvbuf(stdout, NULL, _IOLBF, 0);
    t_net_init();
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    if (mode == VERIFY && !(v.seen = calloc(SEEN_BITS / 8, 1))) return 1;

    for (i = 0; i < nl; i++) {
        p[i].fd = listen_retry(addr[i], port, retry_ms);
        if (p[i].fd == KA_INVALID_SOCKET) {
            printf("%llu error listen addr=%s errno=%d\n", t_now_ms(), addr[i], errno);
            return 1;
        }
        /* Accepted sockets inherit it; set before any SYN, so the window
         * scale offered matches. */
        if (rcvbuf > 0) t_set_rcvbuf(p[i].fd, rcvbuf);
        p[i].events = POLLIN;
    }
    n = nl;
    printf("%llu listen\n", t_now_ms());

    end = t_now_ms() + lifetime_ms;
    while (t_now_ms() < end) {
        unsigned long long now = t_now_ms();
        if (close_all) {
            close_all = 0;
            for (i = nl; i < n; i++) close(p[i].fd);
            printf("%llu close n=%d\n", now, n - nl);
            n = nl;
        }
        for (i = nl; close_after && i < n; i++) {
            if (now < accepted_at[i] + close_after) continue;
            close(p[i].fd);
            printf("%llu close n=1\n", now);
            p[i] = p[n - 1];
            said_unread[i] = said_unread[n - 1];
            accepted_at[i] = accepted_at[n - 1];
            n--;
            i--;
        }
        /* The reading pause: a window that closes and later opens again. */
        if (pausing && first_accept && !paused && now >= first_accept + pause_after) {
            paused = 1;
            printf("%llu pause ms=%lu\n", now, pause_ms);
        }
        if (paused && !resumed && pause_ms && now >= first_accept + pause_after + pause_ms) {
            resumed = 1;
            printf("%llu resume\n", now);
        }
        for (i = nl; i < n; i++)
            p[i].events = (paused && !resumed) || (mode == HOLD && said_unread[i]) ? 0 : POLLIN;
        if (mode == VERIFY && v.dirty && now >= last_report + 100) {
            verify_report();
            last_report = now;
        }
        if (poll(p, (nfds_t)n, mode == VERIFY ? 20 : 50) < 0 && errno != EINTR) break;
        for (i = 0; i < nl; i++) {
            struct sockaddr_storage ss;
            socklen_t sl = sizeof ss;
            char who[96];
            int s;
            if (!(p[i].revents & POLLIN) || n == nl + MAX_CONN) continue;
            if ((s = accept(p[i].fd, (struct sockaddr *)&ss, &sl)) < 0) continue;
            t_nonblock(s);
            p[n].fd = s;
            p[n].events = POLLIN;
            p[n].revents = 0;
            said_unread[n] = 0;
            accepted_at[n] = t_now_ms();
            n++;
            if (!first_accept) first_accept = t_now_ms();
            printf("%llu accept peer=%s\n", t_now_ms(), peer_text(&ss, who, sizeof who));
        }
        for (i = nl; i < n; i++) {
            char buf[65536];
            long got;
            if (!(p[i].revents & (POLLIN | POLLERR | POLLHUP))) continue;
            if (p[i].events == 0 && !(p[i].revents & (POLLERR | POLLHUP))) continue;
            if (mode == HOLD) {
                /* Watched only until it has unread data, reported once;
                 * then left alone. */
                if (!said_unread[i]) printf("%llu unread\n", t_now_ms());
                said_unread[i] = 1;
                continue;
            }
            got = (long)recv(p[i].fd, buf, sizeof buf, 0);
            if (got > 0) {
                if (mode == VERIFY) { verify_bytes(buf, (size_t)got); continue; }
                printf("%llu data n=%ld\n", t_now_ms(), got);
                if (mode == ECHO) send(p[i].fd, buf, (size_t)got, 0);
                continue;
            }
            if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
            if (mode == VERIFY) verify_report();
            printf("%llu peer-gone errno=%d\n", t_now_ms(), got < 0 ? errno : 0);
            close(p[i].fd);
            p[i] = p[n - 1];
            said_unread[i] = said_unread[n - 1];
            accepted_at[i] = accepted_at[n - 1];
            n--;
            i--;
        }
    }
    if (mode == VERIFY) verify_report();
    printf("%llu exit\n", t_now_ms());
    free(v.seen);
    return 0;
}
