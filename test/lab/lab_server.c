/* lab_server: the peer inside the lab's server namespace.
 *
 * Listens on ADDR:PORT and serves every connection in one of three modes:
 *   echo  sends back whatever arrives (an alive, healthy server)
 *   sink  reads and discards, never sends (an application that hangs while
 *         its kernel still answers keepalive probes)
 *   hold  never reads: what the client sends stays unread, so if this
 *         process is killed its kernel resets the connection (RST)
 * SIGUSR1 closes every accepted connection (an orderly close: FIN).
 *
 * Each event is one line, "<monotonic ms> <event> ...", on the same clock as
 * lab_client's. The program exits after -T milliseconds. */
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

#include "ka_client.h"
#include "testlib.h"

#define MAX_CONN 8

enum mode { ECHO, SINK, HOLD };

static volatile sig_atomic_t close_all;

static void on_usr1(int sig) { (void)sig; close_all = 1; }

static void usage(void)
{
    fprintf(stderr, "usage: lab_server -l ADDR -p PORT [-m echo|sink|hold] [-T lifetime_ms]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *addr = NULL, *port = NULL;
    enum mode mode = ECHO;
    unsigned long lifetime_ms = 60000;
    unsigned long long end;
    struct pollfd p[1 + MAX_CONN];
    int said_unread[1 + MAX_CONN];
    struct sigaction sa;
    int opt, i, n = 1;

    while ((opt = getopt(argc, argv, "l:p:m:T:")) != -1) {
        switch (opt) {
        case 'l': addr = optarg; break;
        case 'p': port = optarg; break;
        case 'm':
            if (strcmp(optarg, "echo") == 0) mode = ECHO;
            else if (strcmp(optarg, "sink") == 0) mode = SINK;
            else if (strcmp(optarg, "hold") == 0) mode = HOLD;
            else usage();
            break;
        case 'T': lifetime_ms = strtoul(optarg, NULL, 10); break;
        default: usage();
        }
    }
    if (!addr || !port) usage();
    setvbuf(stdout, NULL, _IOLBF, 0);
    t_net_init();
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);

    p[0].fd = t_listen_on(addr, port, 8);
    if (p[0].fd == KA_INVALID_SOCKET) {
        printf("%llu error listen errno=%d\n", t_now_ms(), errno);
        return 1;
    }
    p[0].events = POLLIN;
    printf("%llu listen\n", t_now_ms());

    end = t_now_ms() + lifetime_ms;
    while (t_now_ms() < end) {
        if (close_all) {
            close_all = 0;
            for (i = 1; i < n; i++) close(p[i].fd);
            printf("%llu close n=%d\n", t_now_ms(), n - 1);
            n = 1;
        }
        if (poll(p, (nfds_t)n, 50) < 0 && errno != EINTR) break;
        if ((p[0].revents & POLLIN) && n < 1 + MAX_CONN) {
            int s = accept(p[0].fd, NULL, NULL);
            if (s >= 0) {
                t_nonblock(s);
                p[n].fd = s;
                /* A held connection is watched only until it has unread
                 * data, which is reported once; then it is left alone. */
                p[n].events = POLLIN;
                said_unread[n] = 0;
                n++;
                printf("%llu accept\n", t_now_ms());
            }
        }
        for (i = 1; i < n; i++) {
            char buf[4096];
            long got;
            if (!(p[i].revents & (POLLIN | POLLERR | POLLHUP))) continue;
            if (mode == HOLD) {
                if (!said_unread[i]) printf("%llu unread\n", t_now_ms());
                said_unread[i] = 1;
                p[i].events = 0;
                continue;
            }
            got = (long)recv(p[i].fd, buf, sizeof buf, 0);
            if (got > 0) {
                printf("%llu data n=%ld\n", t_now_ms(), got);
                if (mode == ECHO) send(p[i].fd, buf, (size_t)got, 0);
                continue;
            }
            if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
            printf("%llu peer-gone errno=%d\n", t_now_ms(), got < 0 ? errno : 0);
            close(p[i].fd);
            p[i] = p[n - 1];
            said_unread[i] = said_unread[n - 1];
            n--;
            i--;
        }
    }
    printf("%llu exit\n", t_now_ms());
    return 0;
}
