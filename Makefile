# fedgpu — developer entry points. `make help` lists them.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
export PATH := $(CURDIR)/bin:$(CURDIR)/node_modules/.bin:$(PATH)

.PHONY: help deps tools generate generate-crds generate-proto generate-contracts check-generated \
        typecheck bundle test test-unit test-integration test-e2e test-rules bench sandbox sandbox-down chaos

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-20s %s\n", $$1, $$2}'

deps: ## Install Debian packages and npm modules this project needs (idempotent)
	@bash hack/install-deps.sh

tools: ## Build kube-apiserver, scheduler, controller-manager, kubectl, kubelet, etcd, kwok, helm (cached by version)
	@bash hack/build-tools.sh

generate: generate-crds generate-proto generate-contracts ## Regenerate every committed generated file

generate-crds: ## CRD YAML and TypeScript types from operator/src/api/schema
	@tsx hack/generate-crds.ts

generate-proto: ## ts-proto output from proto/
	@bash hack/generate-proto.sh

generate-contracts: ## ABIs and bytecode from contracts/ with the pinned solc-js
	@tsx hack/compile-contracts.ts

GENERATED := crds operator/src/gen charts/fedgpu/crds docs/api-reference.md
check-generated: generate ## Fail when committed generated files are stale
	@if [ -n "$$(git status --porcelain -- $(GENERATED))" ]; then \
	  git status --short -- $(GENERATED) >&2; \
	  echo "generated files are stale: run 'make generate' and commit the result" >&2; exit 1; fi

typecheck: ## TypeScript strict type check
	@tsc -p tsconfig.json --noEmit

bundle: deps ## The fedgpu binary the image runs: dist/fedgpu.mjs, one file (hack/bundle.mjs)
	@node hack/bundle.mjs dist/fedgpu.mjs

test-unit: ## Pure unit tests
	@vitest run --project unit

test-integration: tools ## Integration tests against a real kube-apiserver and anvil
	@vitest run --project integration

test-e2e: tools ## End-to-end tests across several real clusters
	@vitest run --project e2e

test-rules: ## promtool checks of the alert rules
	@bash hack/test-rules.sh

# The three projects run one after another: on two cores, control planes of the integration and
# e2e suites starting side by side only slow each other down and make timing windows flaky.
test: deps tools check-generated typecheck test-rules ## The whole suite, as CI runs it
	@vitest run --project unit
	@vitest run --project integration
	@vitest run --project e2e

bench: deps tools ## Benchmarks; prints numbers, asserts nothing
	@for f in bench/*.bench.ts; do echo "== $$f"; tsx "$$f"; done

SEED ?= 1
JOBS ?= 200
MINUTES ?= 20
chaos: deps tools ## Chaos soak: SEED, JOBS, MINUTES (also KINDS, PROVIDERS, FAULT_RATE); checks every invariant, exits 1 on any violation
	@SEED=$(SEED) JOBS=$(JOBS) MINUTES=$(MINUTES) tsx operator/src/chaos/main.ts

sandbox: deps tools ## Start the local federation and run the demo jobs
	@tsx operator/src/cli/main.ts sandbox up

sandbox-down: ## Stop everything the sandbox started
	@tsx operator/src/cli/main.ts sandbox down
