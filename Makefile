# gilprobe — the one entry point: build, test, demo, bench, layouts.
CC      ?= gcc
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c17 -D_GNU_SOURCE -Wall -Wextra -Werror -Iinclude -Ibuild
LDLIBS  := -pthread -lmicrohttpd -lprotobuf-c -lz -lelf -ljson-c -lbpf -lncurses -lunwind-ptrace -lunwind-generic -lunwind -ldw -lm

# eBPF programs (bpf/*.bpf.c): compiled with clang against the running
# kernel's BTF, turned into skeleton headers by bpftool. Without kernel BTF
# gilprobe is built without them and uses its /proc fallbacks.
VMLINUX_BTF := /sys/kernel/btf/vmlinux
BPF_SRC := $(wildcard bpf/*.bpf.c)
BPF_SKEL:= $(BPF_SRC:bpf/%.bpf.c=build/%.skel.h)
ifeq ($(wildcard $(VMLINUX_BTF)),)
CFLAGS  += -DGILPROBE_NO_BPF
BPF_SKEL:=
endif
PYTHON  := /usr/bin/python3

SRC     := $(filter-out src/cli/main.c,$(wildcard src/*/*.c))
# The pprof format's messages (proto/profile.proto), compiled by protoc-c.
PROTO_GEN := build/profile.pb-c.c
OBJ     := $(SRC:src/%.c=build/obj/%.o) build/obj/gen/profile.pb-c.o
ASAN_OBJ:= $(SRC:src/%.c=build/asan/%.o) build/asan/gen/profile.pb-c.o
ASAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

# Debian packages the build and the tests need; installed only when missing.
DEB_PKGS := gcc clang make libelf-dev libdw-dev libjson-c-dev libcmocka-dev \
            libbpf-dev bpftool linux-libc-dev \
            python3 python3-pytest python3-pytest-xdist python3-uvloop python3-yaml \
            libncurses-dev tmux libunwind-dev libfuzzer-14-dev valgrind \
            libpython3.11-testsuite groff-base man-db mmdebstrap python3-jsonschema \
            chromium python3-pil libmicrohttpd-dev prometheus python3-prometheus-client \
            openssl wrk python3-seccomp protobuf-c-compiler libprotobuf-c-dev \
            zlib1g-dev golang-go
STAMP   := build/.deps-ok

# Keep generated BPF objects and skeletons (intermediate files).
.SECONDARY:

.PHONY: all deps test test-binaries testenv check-asan unit integration demo bench layouts layouts-check clean fuzz fuzz-seeds install uninstall deb lint

all: gilprobe

$(STAMP):
	@mkdir -p build
	@missing=""; for p in $(DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null || exit 1; \
	fi
	@touch $@

deps: $(STAMP)

build/vmlinux.h: | $(STAMP)
	bpftool btf dump file $(VMLINUX_BTF) format c > $@.tmp && mv $@.tmp $@

# Every object gets a dependency file (-MMD -MP): it is rebuilt when a
# header it includes changes, and only then.
DEPFLAGS := -MMD -MP

build/%.bpf.o: bpf/%.bpf.c build/vmlinux.h
	clang -g -O2 -target bpf -D__TARGET_ARCH_x86 -Wall -Werror $(DEPFLAGS) -Ibuild -Iinclude -c $< -o $@

build/%.skel.h: build/%.bpf.o
	bpftool gen skeleton $< name $*_bpf > $@.tmp && mv $@.tmp $@

build/profile.pb-c.c: proto/profile.proto | $(STAMP)
	protoc-c --c_out=build --proto_path=proto $<
build/profile.pb-c.h: build/profile.pb-c.c

build/obj/%.o: src/%.c $(BPF_SKEL) build/profile.pb-c.h | $(STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(DEPFLAGS) -c $< -o $@

build/asan/%.o: src/%.c $(BPF_SKEL) build/profile.pb-c.h | $(STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -O2,$(CFLAGS)) $(ASAN_FLAGS) $(DEPFLAGS) -c $< -o $@

build/obj/gen/%.o: build/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

build/asan/gen/%.o: build/%.c
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -O2,$(CFLAGS)) $(ASAN_FLAGS) -c $< -o $@

gilprobe: $(OBJ) build/obj/cli/main.o
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

build/gilprobe-asan: $(ASAN_OBJ) build/asan/cli/main.o
	$(CC) $(ASAN_FLAGS) $^ -o $@ $(LDLIBS)

# C unit tests (cmocka), under ASan+UBSan.
build/unit_tests: tests/unit/*.c $(ASAN_OBJ)
	$(CC) $(filter-out -O2,$(CFLAGS)) $(ASAN_FLAGS) \
	  tests/unit/*.c $(ASAN_OBJ) -o $@ $(LDLIBS) -lcmocka

unit: build/unit_tests testenv
	$(PYTHON) tests/unit/make_linetable_fixtures.py build/fixtures
	build/unit_tests build/fixtures

# Interpreters the tests need beyond pyenv's and Debian's: CPython 3.14 in a
# Debian unstable chroot and the free-threaded builds (FREE_THREADED_MINORS
# in tests/interpreters.py), made once and cached under $(GILPROBE_CACHE)
# (default /var/cache/gilprobe).
testenv: $(STAMP)
	tests/setup/unstable_chroot.sh
	tests/setup/bookworm_chroot.sh
	tests/setup/freethreaded.sh 3.13

layouts-check: testenv
	$(PYTHON) tools/gen_layouts.py --check
	$(PYTHON) tools/gen_asyncio_layouts.py --check

layouts: testenv
	$(PYTHON) tools/gen_layouts.py
	$(PYTHON) tools/gen_asyncio_layouts.py

# The integration tests run both the normal and the sanitized binary. The
# binaries are built two at a time first (the suite's time limit counts the
# build too).
test: test-binaries unit layouts-check deb lint
	$(PYTHON) -m pytest -n 2 --dist loadgroup -q --durations=25 tests/integration

# Code-shape checks: no include against the layer order (src/ folders);
# no function over 120 lines (generated code aside); docs/layout.md lists
# every source file.
test-binaries:
	$(MAKE) -j2 gilprobe build/gilprobe-asan build/fuzz_remote build/replay_image build/unit_tests

lint:
	$(PYTHON) tools/check_layers.py
	$(PYTHON) tools/long_functions.py 120 src/*/*.c
	$(PYTHON) tools/check_layout_doc.py

check-asan: build/gilprobe-asan build/unit_tests
	GILPROBE=build/gilprobe-asan $(PYTHON) -m pytest -n 2 --dist loadgroup -q tests/integration

demo: gilprobe
	@$(PYTHON) examples/demo.py ./gilprobe

build/sleep_floor: bench/sleep_floor.c | $(STAMP)
	$(CC) -O2 -std=c17 -D_GNU_SOURCE -Wall -Wextra -Werror $< -o $@

# The watch soak's length; the issue's figure is an hour (WATCH_SOAK_MIN=60).
WATCH_SOAK_MIN ?= 10
bench: gilprobe build/sleep_floor
	$(PYTHON) bench/bench_dump.py ./gilprobe
	$(PYTHON) bench/bench_tasks.py ./gilprobe
	$(PYTHON) bench/bench_sampler.py ./gilprobe
	$(PYTHON) bench/bench_bpf.py ./gilprobe
	$(PYTHON) bench/bench_blame.py ./gilprobe
	$(PYTHON) bench/bench_native.py ./gilprobe
	$(PYTHON) bench/bench_cpython_suite.py ./gilprobe
	$(PYTHON) bench/bench_tachyon.py ./gilprobe
	$(PYTHON) bench/bench_watch.py ./gilprobe --minutes $(WATCH_SOAK_MIN)
	$(PYTHON) bench/bench_serve.py ./gilprobe --rates 1

# libFuzzer target for the code that parses remote memory (README.md,
# "Fuzzing"): seeds in fuzz/corpus, new inputs in build/fuzz-corpus,
# crashes in build/fuzz-artifacts. FUZZ_TIME bounds the run (seconds).
FUZZ_TIME  ?= 60
FUZZ_FLAGS := -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_OBJ   := $(SRC:src/%.c=build/fuzz/%.o) build/fuzz/gen/profile.pb-c.o

build/fuzz/gen/%.o: build/%.c
	@mkdir -p $(dir $@)
	clang $(filter-out -O2,$(CFLAGS)) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

build/fuzz/%.o: src/%.c $(BPF_SKEL) build/profile.pb-c.h | $(STAMP)
	@mkdir -p $(dir $@)
	clang $(filter-out -O2,$(CFLAGS)) $(FUZZ_FLAGS) $(DEPFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

build/fuzz_remote: fuzz/fuzz_remote.c fuzz/image.c fuzz/image.h $(FUZZ_OBJ)
	clang $(filter-out -O2,$(CFLAGS)) $(FUZZ_FLAGS) -fsanitize=fuzzer -Ifuzz \
	  fuzz/fuzz_remote.c fuzz/image.c $(FUZZ_OBJ) -o $@ $(LDLIBS)

build/replay_image: fuzz/replay_image.c fuzz/image.c fuzz/image.h $(OBJ)
	$(CC) $(CFLAGS) -Ifuzz fuzz/replay_image.c fuzz/image.c $(OBJ) -o $@ $(LDLIBS)

build/record_seed: fuzz/record_seed.c fuzz/image.h $(OBJ)
	$(CC) $(CFLAGS) -Ifuzz fuzz/record_seed.c $(OBJ) -o $@ $(LDLIBS)

fuzz: build/fuzz_remote
	@mkdir -p build/fuzz-corpus build/fuzz-artifacts
	build/fuzz_remote -max_total_time=$(FUZZ_TIME) -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
	  -artifact_prefix=build/fuzz-artifacts/ -print_final_stats=1 build/fuzz-corpus fuzz/corpus

# Re-records fuzz/corpus/seed-* from live interpreters (one per version).
fuzz-seeds: build/record_seed
	$(PYTHON) fuzz/make_seeds.py build/record_seed fuzz/corpus

# Installing: the binary and the man page, under $(DESTDIR)$(PREFIX).
PREFIX  ?= /usr/local
BINDIR  := $(PREFIX)/bin
MANDIR  := $(PREFIX)/share/man/man1
VERSION := $(shell sed -n 's/^\#define GILPROBE_VERSION "\(.*\)"/\1/p' include/util/version.h)

install: gilprobe gilprobe.1
	install -D -m 755 gilprobe $(DESTDIR)$(BINDIR)/gilprobe
	install -D -m 644 gilprobe.1 $(DESTDIR)$(MANDIR)/gilprobe.1

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/gilprobe $(DESTDIR)$(MANDIR)/gilprobe.1

# A Debian package of this build (tools/mkdeb.sh: Depends from the
# libraries the binary links, found with dpkg -S).
deb: build/gilprobe_$(VERSION).deb

build/gilprobe_$(VERSION).deb: gilprobe gilprobe.1 tools/mkdeb.sh
	tools/mkdeb.sh $(VERSION) $@

clean:
	rm -rf build gilprobe

-include $(wildcard build/obj/*/*.d build/asan/*/*.d build/fuzz/*/*.d build/*.bpf.d)
# An object built before it had a dependency file depends on every header
# until it is rebuilt with one (an old build tree must not link objects
# compiled against an old struct layout).
ALL_OBJ := $(OBJ) $(ASAN_OBJ) $(FUZZ_OBJ) build/obj/cli/main.o build/asan/cli/main.o
$(foreach o,$(ALL_OBJ),$(if $(wildcard $(o:.o=.d)),,$(eval $(o): $(wildcard include/*/*.h src/*/*.h))))
