# examples/: retry policies for next_delay (decorrelated jitter, a fixed
# schedule) and a server's "retry after" through ka_client_retry_in, as two
# small programs and the module they share, built into build/examples/.
# Suite `examples` runs the policies through real clients on loopback and
# the programs as a user would (a few seconds; no root, no packages).

EX_DIR   = build/examples
EX_PROGS = $(EX_DIR)/reconnect $(EX_DIR)/retry_after
EX_TEST  = $(EX_DIR)/test_examples
DEMOS   += $(EX_PROGS)
CLEAN   += $(EX_PROGS) $(EX_TEST)
SUITES  += examples
EX_DEPS  = examples/retry.c examples/retry.h ka_client.h $(LIB)

$(EX_DIR)/%: examples/%.c $(EX_DEPS)
	@mkdir -p $(EX_DIR)
	$(CC) $(KA_CFLAGS) -Iexamples -o $@ $< examples/retry.c $(LIB) $(LDFLAGS)

# The test is ours alone: warning-free on gcc and clang. It runs the
# programs from EX_DIR.
$(EX_TEST): examples/test_examples.c test/testlib.c test/testlib.h $(EX_DEPS)
	@mkdir -p $(EX_DIR)
	$(CC) $(KA_CFLAGS) -Werror -Itest -Iexamples -DEX_DIR='"$(EX_DIR)"' -o $@ \
		examples/test_examples.c examples/retry.c test/testlib.c $(LIB) $(LDFLAGS)

suite-examples: $(EX_PROGS) $(EX_TEST)
	@./$(EX_TEST)

.PHONY: suite-examples
