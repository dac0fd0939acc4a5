# ngx_dashstream: entry points.
#   make          build the dynamic module (prints the .so path)
#   make test     every test: unit, integration (real Kafka + nginx), monitoring
#   make demo     the main job on an embedded Kafka endpoint (BROKERS=host:port for a real one)
#   make bench    benchmarks (prints figures, writes docs/performance.md)
# Each target installs what a fresh Debian 12 machine lacks and is safe to run twice.

SHELL    := /bin/bash
BUILD    ?= build
NGX_SRC  ?= /usr/share/nginx/src
MODULE   := $(BUILD)/nginx/objs/ngx_http_dashstream_module.so
PYTHON   := /usr/bin/python3

# Pure C: no nginx types, unit-tested and fuzzed on their own.
PURE_SRCS := $(wildcard $(addprefix src/ngx_http_dashstream_, \
                 ring.c wsframe.c json.c dashflow.c decode.c expo.c seq.c \
                 lagmath.c dlqrec.c))
GEN_DIR   := $(BUILD)/gen
GEN_C     := $(GEN_DIR)/dashstream.pb-c.c
GEN_PY    := $(GEN_DIR)/dashstream_pb2.py

UNIT_CFLAGS := -std=gnu11 -O1 -g -W -Wall -Wpointer-arith \
               -Wno-unused-parameter -Werror -fno-omit-frame-pointer \
               -fsanitize=address,undefined -Isrc -I$(GEN_DIR) -It/unit
UNIT_LIBS   := -lprotobuf-c -lzstd -lcrypto -lpthread -lm
UNIT_TESTS  := $(patsubst t/unit/%.c,$(BUILD)/unit/%,$(wildcard t/unit/test_*.c))

# libFuzzer: each t/fuzz/fuzz_*.c runs FUZZ_SECONDS with the pure sources;
# make test gives each target TEST_FUZZ_SECONDS.
FUZZ_SECONDS      ?= 20
TEST_FUZZ_SECONDS ?= 10
FUZZ_CFLAGS  := -std=gnu11 -O1 -g -W -Wall -Wpointer-arith \
                -Wno-unused-parameter -Werror -fno-omit-frame-pointer \
                -fsanitize=fuzzer,address,undefined \
                -fno-sanitize-recover=undefined -Isrc -I$(GEN_DIR)
FUZZ_LIBS    := -lprotobuf-c -lzstd -lcrypto -lpthread -lm
FUZZ_TARGETS := $(patsubst t/fuzz/%.c,$(BUILD)/fuzz/%,$(wildcard t/fuzz/fuzz_*.c))

.PHONY: all module deps-build deps-test unit integration test demo bench \
        deps-fuzz fuzz clean deps-demo demo-tools monitoring deps-bench \
        bench-tools

all: module

deps-build:
	@tools/install-deps.sh build

deps-test:
	@tools/install-deps.sh test

module: deps-build
	@tools/build-module.sh "$(NGX_SRC)" "$(BUILD)"

$(GEN_C): proto/dashstream.proto
	@mkdir -p $(GEN_DIR)
	protoc-c --c_out=$(GEN_DIR) -Iproto proto/dashstream.proto

$(GEN_PY): proto/dashstream.proto
	@mkdir -p $(GEN_DIR)
	protoc --python_out=$(GEN_DIR) -Iproto proto/dashstream.proto

$(BUILD)/unit/%: t/unit/%.c $(PURE_SRCS) $(GEN_C) $(wildcard src/*.h) t/unit/unit.h
	@mkdir -p $(BUILD)/unit
	@echo "  CC      $@"
	@$(CC) $(UNIT_CFLAGS) -o $@ $< $(PURE_SRCS) $(GEN_C) $(UNIT_LIBS)

unit: deps-build $(GEN_C)
	@$(MAKE) --no-print-directory $(UNIT_TESTS)
	@t/unit/run.sh $(UNIT_TESTS)

# librdkafka >= 2.6.1 for the SCRAM test only (tools/fetch-librdkafka.sh)
integration: deps-test module $(GEN_PY)
	@rdk=$$(tools/fetch-librdkafka.sh) || { rdk=; \
	    echo "integration: no newer librdkafka: the SCRAM test skips" >&2; }; \
	cd t && DASHSTREAM_MODULE=$(abspath $(MODULE)) \
	    DASHSTREAM_GEN=$(abspath $(GEN_DIR)) \
	    DASHSTREAM_LIBRDKAFKA_DIR=$$rdk \
	    $(PYTHON) -m pytest -p no:cacheprovider -q $(PYTEST_ARGS)

test: deps-test
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(TEST_FUZZ_SECONDS)
	@$(MAKE) --no-print-directory integration

# monitoring/kubernetes/ from monitoring/alert_rules.yml (the test run
# fails when they differ: t/test_monitoring_rules.py)
monitoring: deps-test
	@$(PYTHON) tools/monitoring/generate.py

# The demo: librdkafka's mock cluster as the Kafka endpoint (no download),
# the traffic generator and nginx; BROKERS=host:port uses a real cluster,
# secured with KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*, KAFKA_SSL_*.
# PORT, RATE, TOPIC, DEMO_MODE and those: see tools/demo/run.sh.
DEMO_MOCK := $(BUILD)/demo-bin/mock_cluster
DEMO_CFLAGS := -std=gnu11 -O2 -g -W -Wall -Wpointer-arith \
               -Wno-unused-parameter -Werror

deps-demo:
	@tools/install-deps.sh demo

$(DEMO_MOCK): tools/demo/mock_cluster.c
	@mkdir -p $(dir $@)
	$(CC) $(DEMO_CFLAGS) -o $@ $< -lrdkafka -lpthread

demo-tools: deps-demo $(GEN_PY)
	@$(MAKE) --no-print-directory -s $(DEMO_MOCK)

demo: deps-demo module demo-tools
	@BUILD="$(abspath $(BUILD))" BROKERS="$(BROKERS)" PORT="$(PORT)" \
	    RATE="$(RATE)" TOPIC="$(TOPIC)" DEMO_MODE="$(DEMO_MODE)" \
	    KAFKA_SECURITY_PROTOCOL="$(KAFKA_SECURITY_PROTOCOL)" \
	    KAFKA_SASL_MECHANISM="$(KAFKA_SASL_MECHANISM)" \
	    KAFKA_SASL_USERNAME="$(KAFKA_SASL_USERNAME)" \
	    KAFKA_SASL_PASSWORD_FILE="$(KAFKA_SASL_PASSWORD_FILE)" \
	    KAFKA_SSL_CA="$(KAFKA_SSL_CA)" \
	    KAFKA_SSL_CERTIFICATE="$(KAFKA_SSL_CERTIFICATE)" \
	    KAFKA_SSL_KEY="$(KAFKA_SSL_KEY)" \
	    MODULE="$(abspath $(MODULE))" tools/demo/run.sh

# Benchmarks (bench/run.py; docs/performance.md): the load client, the
# publisher, the plain consumer, the ring micro-benchmark and the mock
# cluster, then the run.  BENCH_QUICK=1 for a short one; see bench/run.py
# for BENCH_SECTIONS, BENCH_MODULE, BENCH_OUT.  Not part of make test,
# which only builds the tools and runs the load client briefly
# (t/test_bench_tools.py).
BENCH_BIN    := $(BUILD)/bench
BENCH_CFLAGS := -std=gnu11 -O2 -g -W -Wall -Wpointer-arith \
                -Wno-unused-parameter -Werror
BENCH_TOOLS  := $(addprefix $(BENCH_BIN)/, loadclient producer \
                    plain_consumer ring_bench mock_cluster)

deps-bench:
	@tools/install-deps.sh bench

$(BENCH_BIN)/loadclient: bench/loadclient.c bench/bench_payload.c \
                         bench/bench_payload.h
	@mkdir -p $(dir $@)
	$(CC) $(BENCH_CFLAGS) -o $@ bench/loadclient.c bench/bench_payload.c \
	    -lpthread

$(BENCH_BIN)/producer: bench/producer.c bench/bench_payload.c \
                       bench/bench_payload.h
	@mkdir -p $(dir $@)
	$(CC) $(BENCH_CFLAGS) -o $@ bench/producer.c bench/bench_payload.c \
	    -lrdkafka

$(BENCH_BIN)/plain_consumer: bench/plain_consumer.c
	@mkdir -p $(dir $@)
	$(CC) $(BENCH_CFLAGS) -o $@ $< -lrdkafka

$(BENCH_BIN)/ring_bench: bench/ring_bench.c src/ngx_http_dashstream_ring.c \
                         src/ngx_http_dashstream_ring.h
	@mkdir -p $(dir $@)
	$(CC) $(BENCH_CFLAGS) -Isrc -o $@ bench/ring_bench.c \
	    src/ngx_http_dashstream_ring.c -lpthread

$(BENCH_BIN)/mock_cluster: tools/demo/mock_cluster.c
	@mkdir -p $(dir $@)
	$(CC) $(BENCH_CFLAGS) -o $@ $< -lrdkafka -lpthread

bench-tools: deps-build
	@$(MAKE) --no-print-directory -s $(BENCH_TOOLS)

bench: deps-bench $(if $(BENCH_MODULE),,module)
	@$(MAKE) --no-print-directory bench-tools
	@BENCH_BIN="$(abspath $(BENCH_BIN))" \
	    BENCH_MODULE="$${BENCH_MODULE:-$(abspath $(MODULE))}" \
	    $(PYTHON) bench/run.py

deps-fuzz:
	@tools/install-deps.sh fuzz

$(BUILD)/fuzz/fuzz_%: t/fuzz/fuzz_%.c $(PURE_SRCS) $(GEN_C) $(wildcard src/*.h)
	@mkdir -p $(BUILD)/fuzz
	@echo "  CLANG   $@"
	@clang $(FUZZ_CFLAGS) -o $@ $< $(PURE_SRCS) $(GEN_C) $(FUZZ_LIBS)

fuzz: deps-fuzz $(GEN_C)
	@$(MAKE) --no-print-directory $(FUZZ_TARGETS)
	@FUZZ_SECONDS=$(FUZZ_SECONDS) t/fuzz/run.sh $(FUZZ_TARGETS)

clean:
	rm -rf $(BUILD)
