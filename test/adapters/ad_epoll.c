/* ad_epoll: the adapter test client (ad_test.h) on adapters/ka_epoll.
 * The registrations are read from the kernel: /proc/self/fdinfo of the
 * adapter's epoll descriptor lists each one with its events. */
#define _POSIX_C_SOURCE 200809L
#include <sys/epoll.h>
#include "ka_epoll.h"

#define AD_USER(user) ((ad_app *)((ka_epoll *)(user))->user)
#include "ad_test.h"

static ka_epoll *ad;

static int ad_registered(ka_socket s)
{
    char path[64], line[256];
    int fd, seen = -1;
    unsigned ev;
    FILE *f;
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", ad->epfd);
    if (!(f = fopen(path, "r"))) return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "tfd: %d events: %x", &fd, &ev) == 2 && fd == s)
            seen = ((ev & EPOLLIN) ? KA_READ : 0) | ((ev & EPOLLOUT) ? KA_WRITE : 0);
    fclose(f);
    return seen;
}

static void ad_free(void) { ka_epoll_free(ad); }

int main(int argc, char **argv)
{
    ka_config cfg;
    int rc;
    ad_setup(argc, argv, &cfg);
    if ((rc = ka_epoll_new(&ad, &cfg)) != 0 || (rc = ka_client_start(ad->c)) != 0) {
        printf("FAIL: start: %s\n", ka_strerror(rc));
        return 1;
    }
    while (!app.freed && !ad_expired()) {
        app.rounds++;
        rc = ka_epoll_run(ad, 100);
        if (rc != 0) ad_fail("ka_epoll_run: %s", ka_strerror(rc));
    }
    ad_stop();
    return ad_finish();
}
