/* The smallest ka_client program: which library it runs with, and what the
 * library says about a config. Built by cmake/example against an installed
 * package, and by the consumer projects in cmake/consumers/. Prints the
 * version it was compiled with and the one it runs with; exits 1 if they
 * differ or the config checks do not answer as documented. */
#include <stdio.h>
#include <string.h>
#include "ka_client.h"

int main(void)
{
    ka_config cfg;
    const char *bad;
    int ok;

    printf("ka_client %s (built against %s)\n", ka_version(), KA_VERSION_STRING);
    ok = strcmp(ka_version(), KA_VERSION_STRING) == 0 && ka_version_num() == KA_VERSION_NUM;

    ka_config_init(&cfg);                   /* host and port not set yet */
    bad = ka_config_error(&cfg);
    printf("an empty config: %s\n", bad ? bad : "valid");
    ok = ok && bad != NULL;

    cfg.host = "127.0.0.1";
    cfg.port = "7000";
    bad = ka_config_error(&cfg);
    printf("with host and port: %s\n", bad ? bad : "valid");
    ok = ok && bad == NULL;

    return ok ? 0 : 1;
}
