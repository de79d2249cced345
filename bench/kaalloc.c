/* kaalloc: heap allocations per reconnect cycle, counted three ways, and the
 * size of a client with the default configuration.
 *
 *   1. the allocator hooks (cfg.mem_alloc / mem_free): what the library asks
 *      its hooks for;
 *   2. -Wl,--wrap=malloc,calloc,realloc,free: every call ka_client.o makes to
 *      the C allocator directly (a hook bypass would show up here);
 *   3. malloc/calloc/realloc/free defined in this executable, forwarding to
 *      glibc's __libc_* entry points: the dynamic linker binds libc's own
 *      calls to them too, so this counts everything in the process,
 *      getaddrinfo() inside libc included, and the hooks of 1 (which call
 *      __libc_malloc themselves) add theirs. No LD_PRELOAD.
 *
 * A cycle is: connected, ka_client_disconnect, the retry (backoff 0 ms),
 * connected again. Warm-up cycles run first; then counts are per cycle.
 * Prints "RESULT key value" lines. */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ka_client.h"

/* ---- 3: the whole process ---- */
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);

static unsigned long all_allocs, lib_allocs, hook_allocs;

void *malloc(size_t n) { all_allocs++; return __libc_malloc(n); }
void *calloc(size_t a, size_t b) { all_allocs++; return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { if (!p) all_allocs++; return __libc_realloc(p, n); }
void free(void *p) { __libc_free(p); }

/* ---- 2: ka_client.o's direct calls (linked with --wrap) ---- */
void *__real_malloc(size_t);
void *__real_calloc(size_t, size_t);
void *__real_realloc(void *, size_t);
void __real_free(void *);
void *__wrap_malloc(size_t n) { lib_allocs++; return __real_malloc(n); }
void *__wrap_calloc(size_t a, size_t b) { lib_allocs++; return __real_calloc(a, b); }
void *__wrap_realloc(void *p, size_t n) { if (!p) lib_allocs++; return __real_realloc(p, n); }
void __wrap_free(void *p) { __real_free(p); }

/* ---- 1: the hooks ---- */
static size_t hook_last;         /* size of the last allocation through the hooks */
static void *hook_alloc(size_t n, void *u) { (void)u; hook_allocs++; all_allocs++; hook_last = n; return __libc_malloc(n); }
static void hook_free(void *p, void *u) { (void)u; __libc_free(p); }

static int connects;
static void on_connect(ka_client *c, void *u) { (void)c; (void)u; connects++; }

static int listen_any(int *port)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 64) != 0) return -1;
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    *port = ntohs(sa.sin_port);
    return fd;
}

/* The server's side of the current connection stays open until the next
 * one arrives, so the client is never dropped by the server. */
static int srv_fd = -1;
static void drain_accepts(int l)
{
    struct pollfd p;
    p.fd = l; p.events = POLLIN; p.revents = 0;
    while (poll(&p, 1, 0) > 0) {
        int fd = accept(l, NULL, NULL);
        if (fd < 0) break;
        if (srv_fd >= 0) close(srv_fd);
        srv_fd = fd;
    }
}

/* one connect-disconnect cycle; 0 when the client came back */
static int cycle(ka_client *c, int l)
{
    int want = connects + 1, i;
    ka_client_disconnect(c);
    for (i = 0; i < 2000 && connects < want; i++) { ka_client_poll(c, 5); drain_accepts(l); }
    return connects >= want ? 0 : -1;
}

static int run(const char *host, const char *tag, int warm, int n)
{
    ka_config cfg;
    ka_client *c;
    int port, l = listen_any(&port), i;
    char portstr[16];
    unsigned long a0, l0, h0;
    if (l < 0) return 1;
    snprintf(portstr, sizeof portstr, "%d", port);
    ka_config_init(&cfg);
    cfg.host = host;
    cfg.port = portstr;
    cfg.backoff_initial_ms = 1;
    cfg.backoff_max_ms = 1;
    cfg.cb.on_connect = on_connect;
    cfg.mem_alloc = hook_alloc;
    cfg.mem_free = hook_free;
    connects = 0;
    if (ka_client_new(&c, &cfg) != 0 || ka_client_start(c) != 0) return 1;
    for (i = 0; i < 2000 && connects < 1; i++) { ka_client_poll(c, 5); drain_accepts(l); }
    for (i = 0; i < warm; i++) if (cycle(c, l) != 0) return 1;
    a0 = all_allocs; l0 = lib_allocs; h0 = hook_allocs;
    for (i = 0; i < n; i++) if (cycle(c, l) != 0) return 1;
    printf("RESULT alloc_hooks_per_cycle_%s %.2f\n", tag, (double)(hook_allocs - h0) / n);
    printf("RESULT alloc_lib_per_cycle_%s %.2f\n", tag, (double)(lib_allocs - l0) / n);
    printf("RESULT alloc_process_per_cycle_%s %.2f\n", tag, (double)(all_allocs - a0) / n);
    /* steady state: messages out while connected */
    a0 = all_allocs; l0 = lib_allocs; h0 = hook_allocs;
    {
        int before = connects;
        char sink[4096];
        for (i = 0; i < 1000; i++) {
            ka_client_send(c, "0123456789abcdef", 16);
            ka_client_poll(c, 0);
            if (srv_fd >= 0 && recv(srv_fd, sink, sizeof sink, MSG_DONTWAIT) < 0) { }
        }
        printf("RESULT alloc_steady_per_1000_msgs_%s %lu\n", tag, (all_allocs - a0) + (lib_allocs - l0) + (hook_allocs - h0));
        if (connects != before || ka_client_state(c) != KA_STATE_CONNECTED) printf("INFO steady phase was not one connection\n");
    }
    ka_client_free(c);
    if (srv_fd >= 0) close(srv_fd);
    srv_fd = -1;
    close(l);
    return 0;
}

int main(int argc, char **argv)
{
    ka_config cfg;
    size_t total;
    int n = argc > 1 ? atoi(argv[1]) : 200;
    ka_config_init(&cfg);
    cfg.host = "127.0.0.1";
    cfg.port = "1";
    total = ka_client_size(&cfg);
    printf("RESULT client_default_block_bytes %lu\n", (unsigned long)total);
    {
        /* self-check of method 2: ka_client_new without hooks is one malloc */
        ka_client *c;
        unsigned long l0 = lib_allocs, a0 = all_allocs;
        if (ka_client_new(&c, &cfg) == 0) ka_client_free(c);
        printf("RESULT alloc_client_new_lib %lu\n", lib_allocs - l0);
        printf("RESULT alloc_client_new_process %lu\n", all_allocs - a0);
    }
    {
        /* the heap block of a client: the first one made with these
         * settings carries them, the next ones share them */
        ka_client *c1, *c2;
        size_t first = 0, next = 0;
        cfg.mem_alloc = hook_alloc;
        cfg.mem_free = hook_free;
        if (ka_client_new(&c1, &cfg) == 0) {
            first = hook_last;
            if (ka_client_new(&c2, &cfg) == 0) {
                next = hook_last;
                ka_client_free(c2);
            }
            ka_client_free(c1);
        }
        printf("RESULT client_heap_block_first_bytes %lu\n", (unsigned long)first);
        printf("RESULT client_heap_block_bytes %lu\n", (unsigned long)next);
        cfg.mem_alloc = NULL;
        cfg.mem_free = NULL;
    }
    if (run("127.0.0.1", "numeric", 20, n) != 0) { printf("INFO alloc run failed (numeric)\n"); return 1; }
    if (run("localhost", "localhost", 20, n) != 0) { printf("INFO alloc run failed (localhost)\n"); return 1; }
    return 0;
}
