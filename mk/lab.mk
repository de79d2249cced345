# The network-namespace lab (issue 3): dead-peer detection against real
# network faults. test/lab/run.sh builds the namespaces itself, runs the
# scenarios and ends with "N passed, N failed, N skipped"; without root,
# `ip netns` or nft it prints one line saying why and skips.

SUITES    += lab
DEPS_PKGS += iproute2 nftables tcpdump

LAB_PROGS = test/lab/lab_client test/lab/lab_server
CLEAN    += $(LAB_PROGS)

# Not part of `all`: the lab programs are POSIX-only and `suite-lab` builds
# them when it runs.

test/lab/lab_client: test/lab/lab_client.c test/testlib.c test/testlib.h ka_client.h $(LIB)
	$(CC) $(KA_CFLAGS) -Itest -o $@ test/lab/lab_client.c test/testlib.c $(LIB) $(LDFLAGS)

test/lab/lab_server: test/lab/lab_server.c test/testlib.c test/testlib.h ka_client.h $(LIB)
	$(CC) $(KA_CFLAGS) -Itest -o $@ test/lab/lab_server.c test/testlib.c $(LIB) $(LDFLAGS)

suite-lab: $(LAB_PROGS)
	@bash test/lab/run.sh

.PHONY: suite-lab
