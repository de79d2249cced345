/* ka_client.c as the library is built, plus a compile-time proof that its
 * Linux keepalive branch was taken: the options it tests with #if defined()
 * are visible after its own feature macros and includes. */
#include "../../ka_client.c"

#if !defined(TCP_KEEPIDLE) || !defined(TCP_KEEPINTVL) || !defined(TCP_KEEPCNT) || !defined(TCP_USER_TIMEOUT)
#error "ka_client.c sees no TCP_KEEPIDLE/TCP_KEEPINTVL/TCP_KEEPCNT/TCP_USER_TIMEOUT: keepalive tuning would be compiled out"
#endif
