# containerise: build, test, demo and benchmarks.
# `make demo` and `make test` install and start what they need (moto, a Docker
# engine, a TLS registry) through scripts/with-stack.sh and stop it afterwards.

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  := $(shell git rev-parse HEAD 2>/dev/null)
DATE    := $(shell git log -1 --format=%cI 2>/dev/null)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.date=$(DATE)
BIN     := bin/containerise

# The release tools (goreleaser, cyclonedx-gomod) are pinned in their own
# module, tools/go.mod, not in go.mod: goreleaser alone brings hundreds of
# modules that containerise never runs, and they would otherwise sit in the
# product's dependency graph, its go.sum and every `go mod` and SBOM of it.
TOOLS := $(CURDIR)/bin/tools

.PHONY: build test test-unit demo bench stack-up stack-down fmt vet clean release tools docs

build:
	go build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/containerise

# All unit and end-to-end tests, against a real engine, registry and moto.
test: build
	scripts/with-stack.sh go test -count=1 -timeout 40m ./...

# Unit tests only: no stack, a fast local loop.
test-unit:
	go test -short -count=1 ./...

demo: build
	scripts/with-stack.sh scripts/demo.sh

bench: build
	scripts/with-stack.sh bench/run.sh

stack-up:
	scripts/stack.sh up

stack-down:
	scripts/stack.sh down

fmt:
	gofmt -w $$(git ls-files '*.go')

vet:
	go vet ./...

# Release archives, checksums and SBOMs in dist/, for VERSION=vX.Y.Z (see
# .goreleaser.yaml). Reproducible: dates are the commit's. Publishing dist/
# is a separate step (README, "Releasing").
release: tools
	@case "$(VERSION)" in v[0-9]*.[0-9]*.[0-9]*) ;; *) echo "make release needs VERSION=vX.Y.Z (got '$(VERSION)')" >&2; exit 2 ;; esac
	$(RELEASE_GIT) PATH="$(TOOLS):$$PATH" GORELEASER_CURRENT_TAG=$(VERSION) goreleaser release --snapshot --clean $(RELEASE_FLAGS)

# goreleaser asks git for the remote's URL and, in a checkout without one
# (a worktree, a local clone), falls back to placeholder commit facts: give
# it the project's URL then, through git's own environment configuration.
RELEASE_GIT := $(if $(shell git remote 2>/dev/null),,GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=remote.origin.url GIT_CONFIG_VALUE_0=https://github.com/containerise/containerise.git)

tools: $(TOOLS)/goreleaser

# One recipe builds both tools.
$(TOOLS)/goreleaser: tools/go.mod tools/go.sum
	cd tools && go build -o $(TOOLS)/ github.com/goreleaser/goreleaser/v2 github.com/CycloneDX/cyclonedx-gomod/cmd/cyclonedx-gomod

# The command reference in docs/commands, generated from the commands'
# own help (a test fails when it is stale).
docs:
	go run ./internal/docgen docs/commands

clean:
	rm -rf bin dist
