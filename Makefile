# isola — one Makefile for the VMM, its tests, guests and benchmarks.
#   make            build build/isola
#   make check      run the whole suite (unit, unit under ASan+UBSan, guests, system)
#   make asan       build everything with AddressSanitizer + UBSan into build/asan/
#   make guests     build the test guests (tests/guest/)
#   make linux      boot Debian's kernel + a busybox initramfs interactively (real KVM)
#   make linux-nested  Linux on isola in nested KVM under QEMU TCG (tests/system/linux_nested.sh)
#   make bench      boot benchmark (bench/boot); make bench-blk: block benchmark (bench/blk)
#   make bench-linux  Linux boot, isola vs QEMU, in nested KVM (bench/linux; RUNS=N, default 10)
#   make bench-net  frames through isola-net vs DPDK testpmd, straight-to-tap limit (bench/net; RUNS=N rounds)
#   make bench-vsock  bytes and connections/s through isola-vsock vs a Unix-socket pair (bench/vsock; RUNS=N)
#   make bench-linux-net  L2 TCP throughput, isola vs QEMU, in nested KVM (bench/linux/net.sh; RUNS=N, default 5)
#   make bench-fs   virtio-fs in L2, isola vs QEMU, same virtiofsd, in nested KVM (bench/fs; RUNS=N, default 3)
#   make bench-ratelimit  isola-blk --rate: the cost of no limiter, how limits hold (bench/blk/ratelimit.sh)
#   make soak       fault injection: 10,000 kills of isola-blk under a writing guest
#   make mutants    mutation testing: the suite must catch each bug in tests/mutants.sh (slow)

CC      ?= gcc
BUILD   ?= build
SAN     ?=
WARN    := -Wall -Wextra -Werror -Wshadow -Wvla
CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 $(WARN) -fstack-protector-strong -D_FORTIFY_SOURCE=2 -I. -Iinclude \
           -MMD -MP $(SAN)
LDFLAGS += $(SAN)
LDLIBS  += -lseccomp -lpthread
# The control API (core/api/): HTTP server and JSON.
API_LIBS := -lmicrohttpd -ljson-c

ifeq ($(BUILD),build/asan)
SAN := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
CFLAGS := $(filter-out -D_FORTIFY_SOURCE=2,$(CFLAGS)) -O1
endif

LIB_SRCS  := $(wildcard lib/*.c) $(wildcard arch/x86/*.c) $(wildcard devices/*.c) \
             $(filter-out core/main.c,$(wildcard core/*.c)) $(wildcard core/api/*.c)
LIB_OBJS  := $(LIB_SRCS:%.c=$(BUILD)/%.o)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/unit/%)

SERVERS   := $(notdir $(patsubst %/,%,$(dir $(wildcard servers/*/main.c))))
SERVER_BINS := $(SERVERS:%=$(BUILD)/isola-%)

.PHONY: all check asan unit guests clean linux linux-nested bench bench-blk bench-ratelimit bench-linux bench-linux-net bench-fs bench-net bench-vsock soak mutants format fuzz fuzz-build
all: $(BUILD)/isola $(SERVER_BINS) $(BUILD)/bench/blk-loadgen $(BUILD)/bench/net-loadgen $(BUILD)/nettest \
     $(BUILD)/vsockpeer $(BUILD)/kvm-keeper $(BUILD)/bench/vsock-loadgen

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/libisola.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

# The VMM links statically (not under ASan): ~0.8 MiB less RSS per VM, since
# no shared-library pages are touched at start.
STATIC  := $(if $(SAN),,-static)
# Debian's static libmicrohttpd.a references GnuTLS, which has no complete
# static build here; isola never enables MHD's TLS, so the static link takes
# aborting stand-ins for those symbols (core/api/mhd_notls.c).
$(BUILD)/isola: $(BUILD)/core/main.o $(BUILD)/libisola.a $(if $(STATIC),$(BUILD)/core/api/mhd_notls.o)
	$(CC) $(LDFLAGS) $(STATIC) -o $@ $^ $(API_LIBS) $(LDLIBS)

# Device servers: servers/NAME/*.c -> $(BUILD)/isola-NAME, static like the
# VMM (not under ASan): less RSS, and they run inside --jail, which has no
# shared libraries.
.SECONDEXPANSION:
# (no % inside the prerequisite text: make would replace it by the stem)
$(BUILD)/isola-%: $$(addprefix $(BUILD)/,$$(subst .c,.o,$$(wildcard servers/$$*/*.c))) $(BUILD)/libisola.a
	$(CC) $(LDFLAGS) $(STATIC) -o $@ $^ -luring $(LDLIBS)

# The vhost-user-blk load generator (bench/blk): a front-end on lib/vhost_user.
$(BUILD)/bench/blk-loadgen: $(BUILD)/bench/blk/loadgen.o $(BUILD)/bench/blk/frontend.o $(BUILD)/libisola.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The nested network cases' traffic (tests/system/nested): static, as it
# runs in L1's and L2's initramfs, which have no libc (not under ASan).
$(BUILD)/nettest: $(BUILD)/tests/system/nested/nettest.o
	$(CC) $(LDFLAGS) $(STATIC) -o $@ $^

# The vsock checks' traffic (issue 14): the guest's AF_VSOCK end and the
# host's hybrid (CONNECT) end, static for the same reason.
$(BUILD)/vsockpeer: $(BUILD)/tests/system/nested/vsockpeer.o
	$(CC) $(LDFLAGS) $(STATIC) -o $@ $^

# L1's keeper of KVM's APIC static keys (nested/kvm-keeper.c), static too.
$(BUILD)/kvm-keeper: $(BUILD)/tests/system/nested/kvm-keeper.o
	$(CC) $(LDFLAGS) $(STATIC) -o $@ $^

# The vhost-user-net load generator (bench/net): the same, for virtio-net.
$(BUILD)/bench/net-loadgen: $(BUILD)/bench/net/loadgen.o $(BUILD)/bench/net/frontend.o $(BUILD)/libisola.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The vsock benchmark's fake guest and host side (bench/vsock).
$(BUILD)/bench/vsock-loadgen: $(BUILD)/bench/vsock/loadgen.o $(BUILD)/libisola.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/unit/%: $(BUILD)/tests/unit/%.o $(BUILD)/libisola.a
	$(CC) $(LDFLAGS) -o $@ $^ -lcmocka $(API_LIBS) $(LDLIBS)

# compiles servers/blk/blk.c in, to drive isola-blk's device without a process
$(BUILD)/tests/unit/test_vhost_user_backend: LDLIBS += -luring

# links isola-net's device (servers/net/ without main.c) to drive it without a
# process; its own rule, so the objects come before libisola.a on the line
NET_DEVICE_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(filter-out servers/net/main.c,\
		   $(wildcard servers/net/*.c)))
# --wrap: the test stands between the device and its tap's read, readv and
# ioctl (what tun returns that a socket cannot: the untruncated length,
# EBADFD, EINVAL; TUNSETOFFLOAD's flags)
$(BUILD)/tests/unit/test_net: $(BUILD)/tests/unit/test_net.o $(NET_DEVICE_OBJS) $(BUILD)/libisola.a
	$(CC) $(LDFLAGS) -Wl,--wrap=read,--wrap=readv,--wrap=ioctl -o $@ $^ -lcmocka $(API_LIBS) $(LDLIBS)

# links isola-vsock's device (servers/vsock/ without main.c): the packet logic
# on real Unix sockets, without a process
VSOCK_DEVICE_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(filter-out servers/vsock/main.c,\
		     $(wildcard servers/vsock/*.c)))
$(BUILD)/tests/unit/test_vsock: $(BUILD)/tests/unit/test_vsock.o $(VSOCK_DEVICE_OBJS) $(BUILD)/libisola.a
	$(CC) $(LDFLAGS) -o $@ $^ -lcmocka $(API_LIBS) $(LDLIBS)

# the golden allowlists (docs/security-allowlists.txt), wherever the test runs from
$(BUILD)/tests/unit/test_seccomp.o: CFLAGS += -DISOLA_SRCDIR='"$(CURDIR)"'
# each device kind's server folder, wherever the test runs from
$(BUILD)/tests/unit/test_device_kind.o: CFLAGS += -DISOLA_SRCDIR='"$(CURDIR)"'

unit: $(UNIT_BINS)

asan:
	$(MAKE) BUILD=build/asan all unit

include tests/guest/guest.mk

check:
	@scripts/deps.sh
	@$(MAKE) -j2 all unit asan guests
	@tests/run.sh

linux: all
	@tests/system/linux_boot.sh --interactive

linux-nested: all
	@tests/system/linux_nested.sh

bench: all guests
	@bench/boot/run.sh

bench-blk: all
	@bench/blk/run.sh

bench-ratelimit: all
	@bench/blk/ratelimit.sh $(RUNS)

bench-linux: all
	@bench/linux/run.sh $(RUNS)

bench-net: all
	@bench/net/run.sh $(RUNS)

bench-vsock: all
	@bench/vsock/run.sh $(RUNS)

bench-linux-net: all
	@bench/linux/net.sh $(RUNS)

bench-fs: all
	@bench/fs/run.sh $(RUNS)

# Fault injection with 10,000 SIGKILLs of isola-blk (the suite runs 1,000).
soak: all guests
	@KILLS=10000 tests/system/fault_injection.sh

# Mutation testing: one-line bugs applied one at a time to a copy of the
# tree (with this build), each caught by its part of the suite or reported.
mutants: all unit guests
	@tests/mutants.sh

# libFuzzer targets (clang): one binary per tests/fuzz/fuzz_*.c, linked with
# the modules each one exercises.  `make fuzz FUZZ_SECONDS=N` runs each for N
# seconds on its committed corpus (new inputs go to build/fuzz/corpus-*).
FUZZ_SECONDS ?= 60
FUZZ_CFLAGS  := -g -O1 -std=gnu11 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
                -I. -Iinclude
FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,build/fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_DEPS_fuzz_boot        := arch/x86/boot.c arch/x86/boot_bzimage.c arch/x86/boot_pvh.c \
                              arch/x86/e820.c lib/gmem.c lib/log.c
FUZZ_DEPS_fuzz_virtq       := lib/virtq.c lib/gmem.c lib/log.c
FUZZ_DEPS_fuzz_vhost_user  := lib/vhost_user.c lib/log.c
FUZZ_DEPS_fuzz_api         := core/api/handlers.c core/api/router.c core/api/schema.c \
                              core/api/json.c core/api/metrics.c core/api/config_json.c \
                              core/api/net.c core/config_net.c lib/rate_limiter.c \
                              core/api/vsock.c core/api/fs.c core/config_vsock.c core/config_fs.c \
                              core/config.c lib/log.c
FUZZ_LIBS_fuzz_api         := -ljson-c -lpthread
FUZZ_DEPS_fuzz_pci         := devices/pci.c devices/virtio_pci.c
FUZZ_DEPS_fuzz_snapshot_state := core/snapshot_check.c lib/snapshot_file.c lib/log.c \
                              devices/device_kind.c
FUZZ_DEPS_fuzz_platform    := arch/x86/serial.c arch/x86/ioapic.c arch/x86/i8042.c \
                              arch/x86/rtc.c arch/x86/acpi_pm.c lib/bus.c lib/rate_limiter.c
FUZZ_DEPS_fuzz_vhost_user_backend := lib/vhost_user_backend.c lib/vhost_user_backend_queue.c \
                              lib/vhost_user.c lib/virtq.c lib/gmem.c lib/log.c
FUZZ_LIBS_fuzz_vhost_user_backend := -lpthread
FUZZ_DEPS_fuzz_snapshot    := lib/snapshot_file.c lib/log.c

build/fuzz/%: tests/fuzz/%.c $$(FUZZ_DEPS_%)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -o $@ $^ $(FUZZ_LIBS_$*)

fuzz-build: $(FUZZ_TARGETS)
fuzz: fuzz-build
	@for t in $(FUZZ_TARGETS); do n=$${t##*/fuzz_}; mkdir -p build/fuzz/corpus-$$n; \
		echo "== $$t ($(FUZZ_SECONDS) s)"; \
		$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 build/fuzz/corpus-$$n tests/fuzz/corpus/$$n \
			2>&1 | grep -E 'stat::number_of_executed_units|stat::peak_rss|cov:|ERROR|SUMMARY' | tail -4; \
	done

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
