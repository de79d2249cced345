# Embedded and portability: the loopback suite built with musl and
# with Debian's cross compilers, run under qemu-user (32-bit ARM, 64-bit ARM,
# big-endian s390x). Each suite builds into build/TARGET/ with the target's
# own compiler (CROSS_CFLAGS, not CFLAGS, which may hold host-only flags) and
# ends with "N passed, N failed, N skipped"; a missing compiler or qemu
# skips it with one line saying why. About 7 s each. `make size` prints the
# size of ka_client.o per target; SIZE_DEFS="-DKA_..." measures a build option.

SUITES    += musl qemu-arm qemu-aarch64 qemu-s390x
DEPS_PKGS += musl-tools qemu-user-static \
             gcc-arm-linux-gnueabihf libc6-dev-armhf-cross \
             gcc-aarch64-linux-gnu libc6-dev-arm64-cross \
             gcc-s390x-linux-gnu libc6-dev-s390x-cross

CROSS_CFLAGS ?= -O2 -g
SIZE_DEFS    ?=

suite-musl:
	@CROSS_CFLAGS="$(CROSS_CFLAGS)" sh test/cross/run.sh musl

suite-qemu-arm:
	@CROSS_CFLAGS="$(CROSS_CFLAGS)" sh test/cross/run.sh arm

suite-qemu-aarch64:
	@CROSS_CFLAGS="$(CROSS_CFLAGS)" sh test/cross/run.sh aarch64

suite-qemu-s390x:
	@CROSS_CFLAGS="$(CROSS_CFLAGS)" sh test/cross/run.sh s390x

size:
	@sh test/cross/size.sh . $(SIZE_DEFS)

.PHONY: suite-musl suite-qemu-arm suite-qemu-aarch64 suite-qemu-s390x size
