# containerise: build, test, demo and benchmarks.
# `make demo` and `make test` install and start what they need (moto, a Docker
# engine, a TLS registry) through scripts/with-stack.sh and stop it afterwards.

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
BIN     := bin/containerise

.PHONY: build test test-unit demo bench stack-up stack-down fmt vet clean

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

clean:
	rm -rf bin
