/* The loopback suite exactly as test/unit.c has it, plus a compile-time
 * proof that its keepalive read-back test is really in the binary: that test
 * sits under #ifdef TCP_KEEPIDLE / TCP_USER_TIMEOUT, so headers that hid the
 * options (a libc that wants _GNU_SOURCE for them, say) would skip it
 * silently and the suite would still pass. Here the build fails instead. */
#include "../unit.c"

#if !defined(TCP_KEEPIDLE) || !defined(TCP_KEEPINTVL) || !defined(TCP_KEEPCNT)
#error "test/unit.c sees no TCP_KEEPIDLE/TCP_KEEPINTVL/TCP_KEEPCNT: its keepalive read-back would be compiled out"
#endif
#ifndef TCP_USER_TIMEOUT
#error "test/unit.c sees no TCP_USER_TIMEOUT: its read-back would be compiled out"
#endif
