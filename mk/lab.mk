# The network-namespace lab: dead-peer detection against real network
# faults. test/lab/run.sh builds the namespaces itself, runs the scenarios and
# ends with "N passed, N failed, N skipped"; without root, `ip netns` or nft
# it prints one line saying why and skips.

SUITES    += lab
DEPS_PKGS += iproute2 nftables tcpdump

LAB_PROGS = test/lab/lab_client test/lab/lab_server test/lab/lab_relay
CLEAN    += $(LAB_PROGS)
# The lab's programs are ours alone and stay warning-free on gcc and clang.
LAB_CFLAGS = $(KA_CFLAGS) -Werror

# Not part of `all`: the lab programs are Linux-only and `suite-lab` builds
# them when it runs.

test/lab/lab_client: test/lab/lab_client.c test/testlib.c test/testlib.h ka_client.h $(LIB)
	$(CC) $(LAB_CFLAGS) -Itest -o $@ test/lab/lab_client.c test/testlib.c $(LIB) $(LDFLAGS)

test/lab/lab_server: test/lab/lab_server.c test/testlib.c test/testlib.h ka_client.h $(LIB)
	$(CC) $(LAB_CFLAGS) -Itest -o $@ test/lab/lab_server.c test/testlib.c $(LIB) $(LDFLAGS)

# The switch namespace's delay and loss (the kernel here has no netem); it
# needs neither the library nor the test helpers.
test/lab/lab_relay: test/lab/lab_relay.c
	$(CC) $(LAB_CFLAGS) -o $@ test/lab/lab_relay.c $(LDFLAGS)

suite-lab: $(LAB_PROGS)
	@bash test/lab/run.sh

.PHONY: suite-lab
