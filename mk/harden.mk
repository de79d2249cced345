# Hardening: the loopback suites under ASan+UBSan (clang and gcc)
# and valgrind, static analysis, libFuzzer targets, a soak run, and the
# hardening tests (bad-input matrix, signals, byte integrity).
#
#   make suite-asan-clang suite-asan-gcc suite-valgrind suite-static
#   make suite-fuzz suite-soak suite-harden
#
# Sanitizer builds name their own compiler (CLANG, GCC) and add their flags
# to CFLAGS/LDFLAGS; plain builds use CC. Everything built here goes under
# build/ except the two native test programs, which sit beside test/unit.

SUITES    += harden soak asan-clang asan-gcc valgrind tsan static fuzz
DEPS_PKGS += clang gcc valgrind cppcheck clang-tidy libclang-rt-14-dev binutils

CLANG     ?= clang
GCC       ?= gcc
CPPCHECK  ?= cppcheck
CLANG_TIDY ?= clang-tidy
VALGRIND  ?= valgrind
NM        ?= nm
HB        = build/harden

HARDEN_PROGS = test/harden test/soak
TESTS    += $(HARDEN_PROGS)
CLEAN    += $(HARDEN_PROGS)

SAN_FLAGS  = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_FLAGS = -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
# detect_leaks is on by default on Linux x86-64; said anyway so it stays on.
SAN_ENV    = ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1 \
             UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
VG         = $(VALGRIND) -q --error-exitcode=1 --leak-check=full \
             --errors-for-leak-kinds=definite,indirect,possible --show-leak-kinds=definite,indirect,possible

HARDEN_DEPS = test/testlib.c test/testlib.h ka_client.h

test/harden: test/harden.c $(HARDEN_DEPS) $(LIB)
	$(CC) $(KA_CFLAGS) -Itest -o $@ test/harden.c test/testlib.c $(LIB) $(LDFLAGS)

test/soak: test/soak.c $(HARDEN_DEPS) $(LIB)
	$(CC) $(KA_CFLAGS) -Itest -o $@ test/soak.c test/testlib.c $(LIB) $(LDFLAGS)

# Sanitizer builds compile ka_client.c into each program (no shared .o, so
# the library itself is instrumented too).
$(HB)/clang/%: test/%.c ka_client.c $(HARDEN_DEPS)
	@mkdir -p $(@D)
	$(CLANG) $(WARN) $(PTHREAD) $(CFLAGS) $(SAN_FLAGS) -I. -Itest -o $@ $< test/testlib.c ka_client.c $(LDFLAGS)

$(HB)/gcc/%: test/%.c ka_client.c $(HARDEN_DEPS)
	@mkdir -p $(@D)
	$(GCC) $(WARN) $(PTHREAD) $(CFLAGS) $(SAN_FLAGS) -I. -Itest -o $@ $< test/testlib.c ka_client.c $(LDFLAGS)

SAN_PROGS = unit harden soak

# Each program prints "N passed, N failed, N skipped"; test/sumrun.sh adds
# them up and counts a crash, a sanitizer report or a non-zero exit as a
# failure. The soak runs 500 cycles under the tools (leaks, not RSS).
# ThreadSanitizer: the name-lookup thread against the client's own, over
# the loopback suite (its 200..1,000 start/stop cycles during lookups).
$(HB)/tsan/unit: test/unit.c ka_client.c $(HARDEN_DEPS)
	@mkdir -p $(@D)
	$(CLANG) $(WARN) $(PTHREAD) $(CFLAGS) -fsanitize=thread -fno-omit-frame-pointer -I. -Itest -o $@ $< test/testlib.c ka_client.c $(LDFLAGS)

suite-tsan: $(HB)/tsan/unit
	@TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 KA_TEST_QUICK=1 sh test/sumrun.sh ./$(HB)/tsan/unit

suite-asan-clang: $(SAN_PROGS:%=$(HB)/clang/%)
	@$(SAN_ENV) KA_HARDEN_QUICK=1 KA_TEST_QUICK=1 KA_SOAK_CYCLES=1000 sh test/sumrun.sh $(^:%=./%)

suite-asan-gcc: $(SAN_PROGS:%=$(HB)/gcc/%)
	@$(SAN_ENV) KA_HARDEN_QUICK=1 KA_TEST_QUICK=1 KA_SOAK_CYCLES=1000 sh test/sumrun.sh $(^:%=./%)

suite-valgrind: test/unit $(HARDEN_PROGS)
	@if ! command -v $(VALGRIND) >/dev/null 2>&1; then echo "valgrind: not installed"; echo "0 passed, 0 failed, 1 skipped"; \
	else KA_HARDEN_QUICK=1 KA_TEST_QUICK=1 KA_SOAK_CYCLES=500 sh test/sumrun.sh "$(VG) ./test/unit" "$(VG) ./test/harden" "$(VG) ./test/soak"; fi

suite-harden: test/harden
	@./test/harden

suite-soak: test/soak
	@KA_SOAK_CYCLES=10000 ./test/soak

suite-static: ka_client.o
	@CPPCHECK="$(CPPCHECK)" CLANG_TIDY="$(CLANG_TIDY)" NM="$(NM)" sh test/static.sh

# ---- libFuzzer ----
FUZZ_TARGETS = fuzz_session fuzz_config
FUZZ_TIME   ?= 15

$(HB)/fuzz/%: fuzz/%.c ka_client.c $(HARDEN_DEPS)
	@mkdir -p $(@D)
	$(CLANG) $(WARN) $(PTHREAD) $(CFLAGS) $(FUZZ_FLAGS) -I. -Itest -o $@ $< test/testlib.c ka_client.c $(LDFLAGS)

fuzz-build: $(FUZZ_TARGETS:%=$(HB)/fuzz/%)

suite-fuzz:
	@CLANG="$(CLANG)" MAKE="$(MAKE)" FUZZ_TIME="$(FUZZ_TIME)" sh fuzz/run.sh $(FUZZ_TARGETS)

.PHONY: suite-tsan suite-asan-clang suite-asan-gcc suite-valgrind suite-harden suite-soak suite-static suite-fuzz fuzz-build
