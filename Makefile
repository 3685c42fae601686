# Coxswain: Kubernetes components in Go. See README.md and ../shared/DESIGN.md.
SHELL := /bin/bash
MODULES := proto pkg apiserver scheduler controller-manager kubelet kube-proxy deploy/guestbook
BIN := $(CURDIR)/_output/bin
GO ?= go
# Each fuzz target runs this long in `make test`.
FUZZTIME ?= 10s

.PHONY: all build test unit fuzz lint verify proto bench run down clean e2e e2e-cluster-up

all: build

build:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./apiserver/cmd/... ./scheduler/cmd/... ./controller-manager/cmd/... ./kube-proxy/cmd/... ./kubelet/cmd/... ./deploy/guestbook/cmd/...

# The end-to-end suite on a master and three workers in network namespaces
# (about three minutes) needs root, as the kubelet and kube-proxy tests do.
test: lint build unit fuzz
	@if [ "$$(id -u)" = 0 ]; then $(MAKE) --no-print-directory e2e; else echo "make e2e skipped: it needs root"; fi

unit:
	$(GO) test -race -count=1 -timeout 20m $(addprefix ./,$(addsuffix /...,$(MODULES)))

fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeObject$$' -fuzztime $(FUZZTIME) ./apiserver/internal/grpcapi/
	$(GO) test -run '^$$' -fuzz '^FuzzCreate$$' -fuzztime $(FUZZTIME) ./apiserver/internal/registry/generic/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeJSONTyped$$' -fuzztime $(FUZZTIME) ./apiserver/internal/rest/

lint:
	$(GO) vet $(addprefix ./,$(addsuffix /...,$(MODULES)))
	$(GO) vet -tags e2e ./test/e2e/...
	@out=$$(gofmt -l $(MODULES) hack test 2>/dev/null | grep -v '\.pb\.go$$' || true); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# Regenerates the checked-in protobuf code (needs protoc, protoc-gen-go, protoc-gen-go-grpc).
proto:
	cd proto && protoc -I . --go_out=. --go_opt=paths=source_relative \
	  --go-grpc_out=. --go-grpc_opt=paths=source_relative resource/v1/resource.proto

verify: proto
	git diff --exit-code -- proto/
	./hack/update-go-workspace.sh && git diff --exit-code -- go.work

bench: build
	$(GO) run ./apiserver/cmd/apiserver-bench -out docs/benchmarks.md
	$(GO) run ./scheduler/cmd/scheduler-bench -out docs/benchmarks.md
	$(GO) run ./controller-manager/cmd/controller-manager-bench -out docs/benchmarks.md
	$(GO) run ./kubelet/cmd/kubelet-bench -out docs/benchmarks.md
	$(GO) run ./kube-proxy/cmd/proxy-bench -out docs/benchmarks.md

clean:
	rm -rf _output

# A one-node cluster on this machine with the guestbook (root; see README).
run:
	./hack/local-up.sh

down:
	./hack/local-down.sh

# The end-to-end suite (test/e2e, build tag e2e) on a master and 3 workers in
# network namespaces (hack/netns-cluster.sh), torn down afterwards (root; see README).
e2e:
	./hack/e2e.sh

# hack/cluster-up and hack/cluster-down over the netns transport: one master
# and two workers brought up, brought up again (nothing may change) and taken
# down (nothing may be left); TestClusterUp of test/e2e (root; see README).
e2e-cluster-up:
	./hack/e2e-cluster-up.sh
