# Plexus: everything a developer or CI runs. `make test` is the whole suite
# (root: real network namespaces and real CNI plugins).
SHELL       := /bin/bash
GO          ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
BIN         := $(CURDIR)/bin
CNI_BIN     := $(BIN)/cni
TEST_BIN    := $(BIN)/test
VERSION     ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS     := -s -w -X github.com/plexus-cni/plexus/pkg/buildinfo.Version=$(VERSION)
# grpcnotrace: gRPC (the kubelet's and the runtime's sockets) without
# golang.org/x/net/trace, whose html/template keeps every exported method
# of every linked type: plexusd is 22.5 MB instead of 26.8 MB, and its
# resident set 2.5 MiB smaller at 2,000 NADs (docs/architecture.md, Clients).
TAGS        := grpcnotrace
PLUGINS_VERSION = $(shell $(GO) list -m -f '{{.Version}}' github.com/containernetworking/plugins)
PLUGINS     := main/bridge main/macvlan main/ipvlan main/host-device main/loopback main/ptp \
               meta/tuning meta/portmap meta/bandwidth ipam/host-local ipam/static
GOTEST      := $(GO) test -race -count=1
# The flannel CNI meta plugin: v0.9.1 is the last plugins release that
# ships it (the flannel-io/cni-plugin module is not served by the proxy).
FLANNEL_CNI_VERSION := v0.9.1

# The real node (make e2e-node: API server, kubelet, controller-manager,
# scheduler, DRA) runs KUBE_VERSION; the API-level e2e tests and the bench
# run their API server at KUBE_API_VERSION, the oldest release Plexus
# supports (docs/install.md#supported-kubernetes-versions), so both ends of
# the support matrix are exercised by every `make test`.
KUBE_VERSION     ?= v1.34.12
KUBE_API_VERSION ?= v1.33.13

.PHONY: all build plugins testbins kube-bins test test-unit demo bench fuzz lint verify clean image e2e-node

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/plexus ./cmd/thin-plugin
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/plexus-replay ./cmd/thin-plugin/replay
	CGO_ENABLED=0 $(GO) build -trimpath -tags $(TAGS) -ldflags '$(LDFLAGS)' -o $(BIN)/plexusd ./cmd/thick-daemon

# The reference plugins, at the version go.mod pins, from the module proxy.
plugins:
	@mkdir -p $(CNI_BIN)
	@set -e; for p in $(PLUGINS); do \
		if [ ! -x $(CNI_BIN)/$$(basename $$p) ] || [ "$$(cat $(CNI_BIN)/.version 2>/dev/null)" != "$(PLUGINS_VERSION)" ]; then \
			echo "building $$p@$(PLUGINS_VERSION)"; \
			GOBIN=$(CNI_BIN) CGO_ENABLED=0 GOFLAGS=-mod=mod $(GO) install github.com/containernetworking/plugins/plugins/$$p@$(PLUGINS_VERSION); \
		fi; \
	done; echo $(PLUGINS_VERSION) > $(CNI_BIN)/.version
	@if [ ! -x $(CNI_BIN)/flannel ]; then \
		echo "building meta/flannel@$(FLANNEL_CNI_VERSION)"; \
		GOBIN=$(CNI_BIN) CGO_ENABLED=0 GOFLAGS=-mod=mod $(GO) install github.com/containernetworking/plugins/plugins/meta/flannel@$(FLANNEL_CNI_VERSION); \
	fi

# Test-only binaries: a race-enabled daemon, the recording plugin, the
# SR-IOV CNI stand-in (vfplugin), a kubelet device plugin, a DRA driver,
# and the shim as
# Multus's passthru plugin beside the reference plugins (where
# install_multus puts it, under the name the image gives it).
testbins:
	@mkdir -p $(TEST_BIN)
	$(GO) build -race -tags $(TAGS) -o $(TEST_BIN)/plexusd ./cmd/thick-daemon
	CGO_ENABLED=0 $(GO) build -o $(TEST_BIN)/recorder ./e2e/testplugins/recorder
	CGO_ENABLED=0 $(GO) build -o $(TEST_BIN)/vfplugin ./e2e/testplugins/vfplugin
	CGO_ENABLED=0 $(GO) build -o $(TEST_BIN)/deviceplugin ./e2e/testplugins/deviceplugin
	CGO_ENABLED=0 $(GO) build -o $(TEST_BIN)/dradriver ./e2e/testplugins/dradriver
	@mkdir -p $(CNI_BIN) && ln -sf ../plexus $(CNI_BIN)/passthru

# kube-apiserver and kubectl from the Go module proxy, cached under .cache/
# (about 7 minutes the first time on 2 cores, seconds afterwards).
kube-bins:
	KUBE_VERSION=$(KUBE_API_VERSION) TARGETS="kube-apiserver kubectl" hack/kube-build.sh

# The container image (bin/plexus-image.tar): an OCI image index for
# IMAGE_PLATFORMS, built with go-containerregistry (hack/image) from static
# binaries cross-compiled into bin/linux_<arch>/, without a Docker engine;
# an OCI layout plus a docker-archive manifest.json for this machine's
# platform, for `ctr -n k8s.io images import`, `docker load`, `podman
# load`. It carries the entry points Multus thick's manifest calls, so that
# swapping its image for this one is the whole switch
# (docs/migrate-from-multus.md). The Dockerfile builds the same image for
# those who have Docker (docker buildx --platform linux/amd64,linux/arm64).
TAG             ?= dev
IMAGE           ?= plexus:$(TAG)
IMAGE_TAR       ?= $(BIN)/plexus-image.tar
IMAGE_PLATFORMS ?= linux/amd64,linux/arm64
image:
	@set -e; for p in $$(echo $(IMAGE_PLATFORMS) | tr , ' '); do arch=$${p#linux/}; \
		CGO_ENABLED=0 GOOS=linux GOARCH=$$arch $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/linux_$$arch/plexus ./cmd/thin-plugin; \
		CGO_ENABLED=0 GOOS=linux GOARCH=$$arch $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/linux_$$arch/plexus-replay ./cmd/thin-plugin/replay; \
		CGO_ENABLED=0 GOOS=linux GOARCH=$$arch $(GO) build -trimpath -tags $(TAGS) -ldflags '$(LDFLAGS)' -o $(BIN)/linux_$$arch/plexusd ./cmd/thick-daemon; \
	done
	$(GO) run ./hack/image -o $(IMAGE_TAR) -name $(IMAGE) -platforms $(IMAGE_PLATFORMS) -entrypoint /usr/bin/plexusd \
		-label org.opencontainers.image.version=$(VERSION) \
		-label org.opencontainers.image.source=https://github.com/plexus-cni/plexus \
		-label org.opencontainers.image.title=plexus \
		-add '$(BIN)/linux_{arch}/plexus:/usr/bin/plexus' -add '$(BIN)/linux_{arch}/plexus-replay:/usr/bin/plexus-replay' \
		-add '$(BIN)/linux_{arch}/plexusd:/usr/bin/plexusd' \
		-link /usr/src/multus-cni/bin/multus-daemon=/usr/bin/plexusd \
		-link /usr/src/multus-cni/bin/install_multus=/usr/bin/plexusd \
		-link /usr/src/multus-cni/bin/multus-shim=/usr/bin/plexus \
		-link /usr/src/multus-cni/bin/passthru=/usr/bin/plexus \
		-link /install_multus=/usr/bin/plexusd

# Plexus deployed from deployments/ on a real single node built here
# (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, a private
# containerd + runc, kubelet), everything on loopback and in
# /tmp/plexus-e2e-node. Root; needs etcd-server, containerd and runc from apt.
KUBE_NODE_BINS := kube-apiserver kubectl kubelet kube-controller-manager kube-scheduler
E2E_NODE_TIMEOUT ?= 40m
e2e-node: build plugins testbins image
	@if [ "$$(id -u)" != 0 ]; then echo "make e2e-node needs root (containerd, kubelet, netns)"; exit 1; fi
	KUBE_VERSION=$(KUBE_VERSION) TARGETS="$(KUBE_NODE_BINS)" hack/kube-build.sh
	hack/flannel-build.sh
	hack/calico-build.sh
	hack/multus-build.sh
	PLEXUS_E2E_NODE=1 $(GO) test -count=1 -v -timeout $(E2E_NODE_TIMEOUT) ./e2e/node

# Everything: unit, fuzz seeds, real netns + real plugins end to end, a
# real kube-apiserver + etcd, and Plexus deployed on a real node
# (e2e-node; its package skips in the `go test ./...` below). Root.
test: verify build plugins testbins kube-bins e2e-node
	@if [ "$$(id -u)" != 0 ]; then echo "make test needs root (real network namespaces)"; exit 1; fi
	$(GOTEST) ./...

# Fast loop without root: privileged tests skip.
test-unit:
	$(GO) test -short -count=1 ./...

# Fuzz every target for FUZZTIME each.
FUZZTIME ?= 30s
fuzz:
	@set -e; for t in $$($(GO) test -list '^Fuzz' ./pkg/... | grep '^Fuzz'); do \
		pkg=$$(grep -rl "func $$t(" pkg --include='*_test.go' | xargs -n1 dirname | head -1); \
		echo "== $$t ($$pkg) for $(FUZZTIME)"; \
		$(GO) test -run='^$$' -fuzz="^$$t$$" -fuzztime=$(FUZZTIME) ./$$pkg; \
	done

# Plexus against the floor (the delegates run directly), interleaved in one
# run, plus Go micro-benchmarks. Root. BENCH_PODS, BENCH_REPEATS, BENCH_API=0,
# BENCH_SCALE=0 shrink it.
bench: build plugins kube-bins
	@command -v etcd >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server)
	$(GO) test -run '^$$' -bench . -benchmem -count=1 ./pkg/netselect ./pkg/netstatus
	$(GO) build -o $(TEST_BIN)/bench ./bench
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o $(TEST_BIN)/gostart ./bench/gostart
	$(TEST_BIN)/bench -root $(CURDIR)

demo: build plugins
	@hack/demo.sh

# golangci-lint at the version hack/tools/go.mod pins (the one place tools
# are pinned), built once into .cache/bin (about 3 minutes on 2 cores).
GOLANGCI_LINT := $(CURDIR)/.cache/bin/golangci-lint
$(GOLANGCI_LINT): hack/tools/go.mod hack/tools/go.sum
	@mkdir -p $(dir $@)
	$(GO) build -modfile=hack/tools/go.mod -o $@ github.com/golangci/golangci-lint/v2/cmd/golangci-lint

lint: $(GOLANGCI_LINT)
	$(GOLANGCI_LINT) run ./...

# Every check, each reporting all it finds, failing at the end if any did:
# gofmt, go vet, golangci-lint (.golangci.yml), go.mod tidiness, and the
# tools module's Go version matching go.mod's (the one Go pin).
verify: $(GOLANGCI_LINT)
	@fail=0; \
	out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; fail=1; fi; \
	$(GO) vet ./... || fail=1; \
	$(GOLANGCI_LINT) run ./... || fail=1; \
	$(GO) mod tidy -diff >/dev/null || { echo "go.mod/go.sum need go mod tidy"; fail=1; }; \
	if [ "$$(sed -n 's/^go //p' go.mod)" != "$$(sed -n 's/^go //p' hack/tools/go.mod)" ]; then \
		echo "hack/tools/go.mod's go line differs from go.mod's"; fail=1; fi; \
	exit $$fail

clean:
	rm -rf $(BIN)
