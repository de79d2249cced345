/* lab_relay: a two-port frame relay for the lab's switch namespace that
 * delays, and optionally drops, frames in each direction.
 *
 * The lab's kernel has no netem qdisc, so delay cannot come from tc. In its
 * place the driver takes the switch's two ports out of the bridge and runs
 * this program on them: one AF_PACKET socket per port receives every frame
 * that arrives there; each frame waits its direction's delay in a bounded
 * FIFO and is then sent, unchanged, out of the other port. A constant delay
 * per direction keeps every frame in order, as a long cable would. With a
 * loss rate, frames are dropped at random as they arrive (our own xorshift
 * generator, seeded, so a run can be repeated); with -u the losses begin
 * only at the first SIGUSR1, so a connection can be set up on a clean path
 * and then suffer. SIGUSR2 ends the losses (SIGUSR1 starts them again), so
 * a path can also heal while a connection goes on.
 *
 * It relays frames, it parses nothing. Each frame travels with its
 * virtio_net_hdr (PACKET_VNET_HDR): a TCP sender on a veth hands over
 * segments whose checksum is still to be filled in and, with TSO, super
 * frames of up to 64 KiB; the header carries both facts to the sending
 * socket, whose kernel then completes the checksum or segments the frame as
 * the sender's NIC would have. (For per-segment loss the driver also limits
 * the endpoints to one segment per frame: see run.sh.)
 *
 * Output, one line per event on CLOCK_MONOTONIC in ms like the other lab
 * programs: "relay-up ...", "loss-on" when the losses begin and "loss-off"
 * when they end, then at exit one
 * "relay dir=A>B ..." line per direction with its counters, then "exit". It
 * exits on SIGTERM or SIGINT, or after -T milliseconds.
 *
 * Linux only: AF_PACKET, PACKET_VNET_HDR (2.6.36), PACKET_IGNORE_OUTGOING
 * (4.20), ppoll. */
#define _GNU_SOURCE

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <sys/socket.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>

#define MAX_FRAME   (256 * 1024)    /* a vnet header and a 64 KiB GSO frame fit with room */
#define BURST       64              /* frames read from one port per wake-up */

struct frame {
    unsigned long long due_us;      /* when it leaves */
    size_t len;
    unsigned char *data;            /* vnet header + frame */
};

/* One direction: frames arriving on port `in` leave on port `out`. */
struct lane {
    const char *name_in, *name_out;
    int in, out;
    unsigned long long delay_us;
    unsigned loss_pct;
    struct frame *q;                /* ring of cap frames */
    size_t cap, head, count, bytes, max_bytes;
    unsigned long frames, sent, lost, full, errors, truncated;
};

static volatile sig_atomic_t stop_now, start_loss, end_loss;
static unsigned rng;
static int losing = 1;                  /* 0 while -u holds the losses back */

static void on_stop(int sig) { (void)sig; stop_now = 1; }
static void on_usr1(int sig) { (void)sig; start_loss = 1; }
static void on_usr2(int sig) { (void)sig; end_loss = 1; }

static unsigned long long now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000u + (unsigned long long)ts.tv_nsec / 1000u;
}

static unsigned xorshift32(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: lab_relay -a IFACE -b IFACE [-d delay_ms] [-D delay_ms_b_to_a]\n"
            "                 [-l loss_pct] [-L loss_pct_b_to_a] [-q max_frames]\n"
            "                 [-s seed] [-T lifetime_ms] [-u]\n"
            "Relays frames between the two ports, delaying (and dropping) them per\n"
            "direction; -D and -L default to -d and -l; -u: no loss before SIGUSR1.\n"
            "SIGUSR2 ends the losses, SIGUSR1 starts them again.\n");
    exit(2);
}

static unsigned num(const char *s, unsigned max)
{
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v > max) usage();
    return (unsigned)v;
}

/* A raw socket that sees every frame arriving on ifname (and none that this
 * host sends out of it), in promiscuous mode, non-blocking. The protocol is
 * given at bind time, not at socket(): a socket opened with ETH_P_ALL would
 * see every interface until it is bound. */
static int open_port(const char *ifname)
{
    struct sockaddr_ll sll;
    struct packet_mreq mr;
    int s, one = 1, rcvbuf = 4 * 1024 * 1024;
    unsigned idx = if_nametoindex(ifname);

    if (idx == 0) { fprintf(stderr, "lab_relay: no interface %s\n", ifname); return -1; }
    s = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s < 0) { perror("lab_relay: socket(AF_PACKET)"); return -1; }
    if (setsockopt(s, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof one) < 0 ||
        setsockopt(s, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one) < 0) {
        perror("lab_relay: setsockopt(SOL_PACKET)");
        close(s);
        return -1;
    }
    /* A burst must wait in our queue, not be dropped by the socket. */
    if (setsockopt(s, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) < 0)
        setsockopt(s, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    memset(&sll, 0, sizeof sll);
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(ETH_P_ALL);
    sll.sll_ifindex = (int)idx;
    if (bind(s, (struct sockaddr *)&sll, sizeof sll) < 0) {
        perror("lab_relay: bind");
        close(s);
        return -1;
    }
    /* Frames for the host behind the other port carry its MAC, not ours. */
    memset(&mr, 0, sizeof mr);
    mr.mr_ifindex = (int)idx;
    mr.mr_type = PACKET_MR_PROMISC;
    if (setsockopt(s, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof mr) < 0) {
        perror("lab_relay: promiscuous mode");
        close(s);
        return -1;
    }
    return s;
}

/* ---- the queue of one direction ---- */

static void enqueue(struct lane *l, const unsigned char *buf, size_t len, unsigned long long now)
{
    struct frame *f;
    if (l->count == l->cap || l->bytes + len > l->max_bytes) { l->full++; return; }
    f = &l->q[(l->head + l->count) % l->cap];
    f->data = malloc(len);
    if (!f->data) { l->full++; return; }
    memcpy(f->data, buf, len);
    f->len = len;
    f->due_us = now + l->delay_us;
    l->count++;
    l->bytes += len;
}

static void dequeue(struct lane *l)
{
    struct frame *f = &l->q[l->head];
    l->bytes -= f->len;
    free(f->data);
    f->data = NULL;
    l->head = (l->head + 1) % l->cap;
    l->count--;
}

/* Sends every frame that is due. A send that fails (port down, socket
 * buffer full) loses the frame, as a switch would. */
static void release_due(struct lane *l, unsigned long long now)
{
    while (l->count > 0 && l->q[l->head].due_us <= now) {
        struct frame *f = &l->q[l->head];
        if (send(l->out, f->data, f->len, 0) == (ssize_t)f->len) l->sent++;
        else l->errors++;
        dequeue(l);
    }
}

/* Reads up to BURST frames from the lane's input port. */
static void receive(struct lane *l, unsigned char *buf)
{
    int i;
    for (i = 0; i < BURST; i++) {
        ssize_t n = recv(l->in, buf, MAX_FRAME, MSG_TRUNC);
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) l->errors++;  /* e.g. ENETDOWN */
            return;
        }
        l->frames++;
        if ((size_t)n > MAX_FRAME) { l->truncated++; continue; }
        if (losing && l->loss_pct && xorshift32() % 100 < l->loss_pct) { l->lost++; continue; }
        enqueue(l, buf, (size_t)n, now_us());
    }
}

/* Microseconds until the first frame of either lane is due, or -1. */
static long long next_due(const struct lane *l, int n, unsigned long long now)
{
    long long best = -1;
    int i;
    for (i = 0; i < n; i++) {
        long long d;
        if (l[i].count == 0) continue;
        d = l[i].q[l[i].head].due_us > now ? (long long)(l[i].q[l[i].head].due_us - now) : 0;
        if (best < 0 || d < best) best = d;
    }
    return best;
}

static void report(const struct lane *l)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    printf("%llu relay dir=%s>%s frames=%lu sent=%lu lost=%lu full=%lu errors=%lu truncated=%lu queued=%lu\n",
           (unsigned long long)ts.tv_sec * 1000u + (unsigned long long)ts.tv_nsec / 1000000u,
           l->name_in, l->name_out, l->frames, l->sent, l->lost, l->full, l->errors, l->truncated,
           (unsigned long)l->count);
}

int main(int argc, char **argv)
{
    const char *a = NULL, *b = NULL;
    long delay_ab = 0, delay_ba = -1, loss_ab = 0, loss_ba = -1;
    unsigned cap = 4096, lifetime_ms = 60000, seed = 1;
    struct lane lane[2];
    struct pollfd p[2];
    struct sigaction sa;
    sigset_t block, during_poll;
    unsigned char *buf;
    unsigned long long end;
    int opt, i, pa, pb;

    while ((opt = getopt(argc, argv, "a:b:d:D:l:L:q:s:T:u")) != -1) {
        switch (opt) {
        case 'a': a = optarg; break;
        case 'b': b = optarg; break;
        case 'd': delay_ab = num(optarg, 60000); break;
        case 'D': delay_ba = num(optarg, 60000); break;
        case 'l': loss_ab = num(optarg, 100); break;
        case 'L': loss_ba = num(optarg, 100); break;
        case 'q': cap = num(optarg, 1000000); break;
        case 's': seed = num(optarg, 0xFFFFFFFFu); break;
        case 'T': lifetime_ms = num(optarg, 0xFFFFFFFFu); break;
        case 'u': losing = 0; break;
        default: usage();
        }
    }
    if (!a || !b || cap == 0) usage();
    if (delay_ba < 0) delay_ba = delay_ab;
    if (loss_ba < 0) loss_ba = loss_ab;
    rng = seed ? seed : 1;          /* xorshift must not start at 0 */
    setvbuf(stdout, NULL, _IOLBF, 0);

    /* The signals are blocked except inside ppoll, so none can fall between
     * the check of its flag and the wait. */
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    sa.sa_handler = on_usr2;
    sigaction(SIGUSR2, &sa, NULL);
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGUSR1);
    sigaddset(&block, SIGUSR2);
    sigprocmask(SIG_BLOCK, &block, &during_poll);
    sigdelset(&during_poll, SIGTERM);
    sigdelset(&during_poll, SIGINT);
    sigdelset(&during_poll, SIGUSR1);
    sigdelset(&during_poll, SIGUSR2);

    if ((pa = open_port(a)) < 0 || (pb = open_port(b)) < 0) return 1;
    buf = malloc(MAX_FRAME);
    memset(lane, 0, sizeof lane);
    lane[0].name_in = a; lane[0].name_out = b; lane[0].in = pa; lane[0].out = pb;
    lane[0].delay_us = (unsigned long long)delay_ab * 1000u; lane[0].loss_pct = (unsigned)loss_ab;
    lane[1].name_in = b; lane[1].name_out = a; lane[1].in = pb; lane[1].out = pa;
    lane[1].delay_us = (unsigned long long)delay_ba * 1000u; lane[1].loss_pct = (unsigned)loss_ba;
    for (i = 0; i < 2; i++) {
        lane[i].cap = cap;
        lane[i].max_bytes = 32u * 1024 * 1024;
        lane[i].q = calloc(cap, sizeof *lane[i].q);
        if (!lane[i].q) return 1;
    }
    if (!buf) return 1;
    p[0].fd = pa; p[0].events = POLLIN;
    p[1].fd = pb; p[1].events = POLLIN;
    printf("%llu relay-up a=%s b=%s delay_ms=%ld/%ld loss_pct=%ld/%ld\n", now_us() / 1000u,
           a, b, delay_ab, delay_ba, loss_ab, loss_ba);

    end = now_us() + (unsigned long long)lifetime_ms * 1000u;
    while (!stop_now) {
        unsigned long long now = now_us();
        long long wait_us;
        struct timespec ts;
        if (now >= end) break;
        if (start_loss) {
            start_loss = 0;
            if (!losing) printf("%llu loss-on\n", now / 1000u);
            losing = 1;
        }
        if (end_loss) {
            end_loss = 0;
            if (losing) printf("%llu loss-off\n", now / 1000u);
            losing = 0;
        }
        for (i = 0; i < 2; i++) release_due(&lane[i], now);
        wait_us = next_due(lane, 2, now);
        if (wait_us < 0 || wait_us > (long long)(end - now)) wait_us = (long long)(end - now);
        ts.tv_sec = (time_t)(wait_us / 1000000);
        ts.tv_nsec = (long)(wait_us % 1000000) * 1000L;
        if (ppoll(p, 2, &ts, &during_poll) < 0) {
            if (errno == EINTR) continue;
            perror("lab_relay: ppoll");
            break;
        }
        for (i = 0; i < 2; i++)
            if (p[i].revents & (POLLIN | POLLERR)) receive(&lane[i], buf);
    }
    for (i = 0; i < 2; i++) {
        report(&lane[i]);
        while (lane[i].count) dequeue(&lane[i]);
        free(lane[i].q);
    }
    free(buf);
    close(pa);
    close(pb);
    printf("%llu exit\n", now_us() / 1000u);
    return 0;
}
