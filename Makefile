# ftbridge build and test entry points. `make test` is the project's test
# command; .ci/run runs it on every submission.

GO ?= go
# Time each fuzz target gets in `make fuzz-smoke`.
FUZZTIME ?= 10s
STATICCHECK ?= $(shell command -v staticcheck 2>/dev/null || echo "$$($(GO) env GOPATH)/bin/staticcheck")

.PHONY: all build test fuzz-smoke vet staticcheck demo

all: build

# Build every command into bin/.
build:
	$(GO) build -o bin/ ./cmd/...

# Unit, hygiene and integration tests, then a short run of every fuzz target.
test:
	$(GO) test -count=1 -timeout 50m ./...
	@$(MAKE) --no-print-directory fuzz-smoke

# Run each fuzz target for FUZZTIME; see .ci/fuzz-smoke.
fuzz-smoke:
	@GO="$(GO)" FUZZTIME="$(FUZZTIME)" bash .ci/fuzz-smoke

vet:
	$(GO) vet ./...

staticcheck:
	$(STATICCHECK) ./...

# The lab with the built-in default configuration.
demo:
	$(GO) run ./cmd/ftbridge demo

# Appliance images (docs/images.md). `make image BOARD=x86_64|arm64` builds
# images/out/$(BOARD)/disk.img (root; Debian packages via apt); `make bundle`
# signs an update bundle of it; `make image-test` boots it in qemu.
BOARD ?= x86_64
.PHONY: image bundle image-test
image:
	bash images/build.sh $(BOARD)

bundle:
	bash images/bundle.sh $(BOARD)

image-test:
	FTB_IMAGE_TESTS=1 $(GO) test -count=1 -timeout 45m -v ./images/imagetest/

# Side-by-side benchmark (kernel routing, HAProxy, ftbridge with 1-3
# replicas) on the netns lab; needs root, takes under 15 minutes, writes
# docs/benchmarks.md and docs/bench/*.png. BENCHFLAGS=-quick for a short run.
.PHONY: bench
bench:
	$(GO) run ./cmd/ftbench $(BENCHFLAGS)
