# The network-namespace lab: dead-peer detection against real network
# faults. test/lab/run.sh builds the namespaces itself, runs the scenarios and
# ends with "N passed, N failed, N skipped"; without root, `ip netns` or nft
# it prints one line saying why and skips. dnsmasq-base gives the resolver
# rows a real DNS server (the binary only: no service is started).

SUITES    += lab lab-stress-asan lab-stress-tsan lab-stress-valgrind
DEPS_PKGS += iproute2 nftables tcpdump dnsmasq-base

LAB_STRESS = build/lab/lab_stress
LAB_PROGS  = test/lab/lab_client test/lab/lab_server test/lab/lab_relay $(LAB_STRESS)
CLEAN     += $(LAB_PROGS)
# The lab's programs are ours alone and stay warning-free on gcc and clang.
LAB_CFLAGS = $(KA_CFLAGS) -Werror
LAB_DEPS   = test/testlib.c test/testlib.h ka_client.h

# Not part of `all`: the lab programs are Linux-only and `suite-lab` builds
# them when it runs.

test/lab/lab_client: test/lab/lab_client.c $(LAB_DEPS) $(LIB)
	$(CC) $(LAB_CFLAGS) -Itest -o $@ test/lab/lab_client.c test/testlib.c $(LIB) $(LDFLAGS)

test/lab/lab_server: test/lab/lab_server.c $(LAB_DEPS) $(LIB)
	$(CC) $(LAB_CFLAGS) -Itest -o $@ test/lab/lab_server.c test/testlib.c $(LIB) $(LDFLAGS)

# The switch namespace's delay and loss (the kernel here has no netem); it
# needs neither the library nor the test helpers.
test/lab/lab_relay: test/lab/lab_relay.c
	$(CC) $(LAB_CFLAGS) -o $@ test/lab/lab_relay.c $(LDFLAGS)

# Start/stop cycles while lookups hang (the lab's two stress rows).
$(LAB_STRESS): test/lab/lab_stress.c $(LAB_DEPS) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(LAB_CFLAGS) -Itest -o $@ test/lab/lab_stress.c test/testlib.c $(LIB) $(LDFLAGS)

# The session rows run the telemetry demos (mk/sessions.mk builds them).
suite-lab: $(LAB_PROGS) demo/telemetry_client demo/telemetry_server
	@bash test/lab/run.sh

# The stress rows alone (1,000 start/stop cycles while lookups hang), with
# the library and lab_stress built under ASan+UBSan or ThreadSanitizer
# (clang), or run under valgrind: leaks and races of lookup threads that
# outlive their client. About 12 s, 12 s and 40 s. SAN_FLAGS, SAN_ENV and
# VG come from mk/harden.mk. The bound on each call widens under the tools:
# ASan and TSan make thread creation slow (200 ms); valgrind runs one thread at a
# time, so a call may wait behind the hanging lookups' threads (5 s: there
# it only catches a lookup in the caller's thread, which would hang for
# good). valgrind also needs room for one thread per hanging lookup.
build/lab/asan/lab_stress: test/lab/lab_stress.c ka_client.c $(LAB_DEPS)
	@mkdir -p $(@D)
	$(CLANG) $(WARN) $(PTHREAD) $(CFLAGS) $(SAN_FLAGS) -Werror -I. -Itest -o $@ test/lab/lab_stress.c test/testlib.c ka_client.c $(LDFLAGS)

suite-lab-stress-asan: test/lab/lab_client test/lab/lab_server test/lab/lab_relay build/lab/asan/lab_stress
	@$(SAN_ENV) KA_LAB_STRESS_PROG=$(CURDIR)/build/lab/asan/lab_stress KA_LAB_STRESS_MAX_MS=200 bash test/lab/run.sh stress_

build/lab/tsan/lab_stress: test/lab/lab_stress.c ka_client.c $(LAB_DEPS)
	@mkdir -p $(@D)
	$(CLANG) $(WARN) $(PTHREAD) $(CFLAGS) -fsanitize=thread -fno-omit-frame-pointer -Werror -I. -Itest -o $@ test/lab/lab_stress.c test/testlib.c ka_client.c $(LDFLAGS)

suite-lab-stress-tsan: test/lab/lab_client test/lab/lab_server test/lab/lab_relay build/lab/tsan/lab_stress
	@TSAN_OPTIONS=halt_on_error=1:exitcode=66 KA_LAB_STRESS_PROG=$(CURDIR)/build/lab/tsan/lab_stress KA_LAB_STRESS_MAX_MS=200 bash test/lab/run.sh stress_

suite-lab-stress-valgrind: $(LAB_PROGS)
	@if ! command -v $(VALGRIND) >/dev/null 2>&1; then echo "lab-stress-valgrind: valgrind not installed"; \
	echo "0 passed, 0 failed, 2 skipped"; else KA_LAB_STRESS_WRAP="$(VG) --max-threads=3000" \
	KA_LAB_STRESS_MAX_MS=5000 bash test/lab/run.sh stress_; fi

.PHONY: suite-lab suite-lab-stress-asan suite-lab-stress-tsan suite-lab-stress-valgrind
