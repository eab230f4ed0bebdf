# HyperFlow AMQP executor and hyperflow-top. `make` lists the targets.
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
BIN := bin
CMDS := $(notdir $(wildcard cmd/*))

.DEFAULT_GOAL := help

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

build: ## build every command into bin/
	@mkdir -p $(BIN)
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

image: ## build bin/image.oci.tar, an OCI image of the static commands, without a container daemon
	@mkdir -p $(BIN)/static
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/static/ ./cmd/...
	$(GO) run ./scripts/mkimage -bin $(BIN)/static -version '$(VERSION)' -o $(BIN)/image.oci.tar

demo: build ## start a private broker, executors and sample jobs, and watch them
	scripts/demo.sh

test: ## run every test against real servers started privately on loopback
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }
	scripts/with-servers.sh --rabbitmq --rabbitmq4 --rabbitmq-cluster --s3 --gridftp --redis -- env GO=$(GO) scripts/test.sh

bench: build ## measure the executor against a bare baseline on the real broker
	scripts/with-servers.sh --rabbitmq --s3 -- scripts/bench.sh

clean: ## remove built binaries
	rm -rf $(BIN)

.PHONY: help build image demo test bench clean
