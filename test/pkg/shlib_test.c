/* Loaded from the installed shared library: the library that answers must
 * be the one this program was compiled against, and must work (a config is
 * checked, a client created and freed, through the .so's own allocator).
 * Ends with "N passed, N failed, N skipped". */
#include <stdio.h>
#include <string.h>
#include "ka_client.h"

static int passed, failed;

static void expect(int cond, const char *what)
{
    printf("%s %s\n", cond ? "ok  " : "FAIL", what);
    if (cond) passed++; else failed++;
}

int main(void)
{
    ka_config cfg;
    ka_client *c = NULL;

    printf("    library %s, header %s\n", ka_version(), KA_VERSION_STRING);
    expect(strcmp(ka_version(), KA_VERSION_STRING) == 0, "ka_version() is the header's KA_VERSION_STRING");
    expect(ka_version_num() == KA_VERSION_NUM, "ka_version_num() is the header's KA_VERSION_NUM");

    ka_config_init(&cfg);
    expect(ka_config_error(&cfg) != NULL, "ka_config_error names a field of a config without host and port");
    cfg.host = "127.0.0.1";
    cfg.port = "7000";
    expect(ka_config_error(&cfg) == NULL, "ka_config_error accepts host 127.0.0.1, port 7000");
    expect(ka_client_new(&c, &cfg) == 0 && c != NULL, "ka_client_new creates a client");
    expect(ka_client_state(c) == KA_STATE_IDLE, "the new client is idle");
    ka_client_free(c);

    printf("%d passed, %d failed, 0 skipped\n", passed, failed);
    return failed != 0;
}
