/* ka_client.c as the library is built, plus a compile-time proof that its
 * Linux branches were taken: the keepalive options and TCP_INFO (the busy-
 * path deadline), which it tests with #if defined(), are visible after its
 * own feature macros and includes. */
#include "../../ka_client.c"

#if !defined(TCP_KEEPIDLE) || !defined(TCP_KEEPINTVL) || !defined(TCP_KEEPCNT)
#error "ka_client.c sees no TCP_KEEPIDLE/TCP_KEEPINTVL/TCP_KEEPCNT: keepalive tuning would be compiled out"
#endif
#if !defined(TCP_INFO)
#error "ka_client.c sees no TCP_INFO: the Linux busy-path deadline would be compiled out"
#endif
