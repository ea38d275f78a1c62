#!/usr/bin/env bash
# make bench: containerise measured side by side with its peers on the local stack.
# Run through scripts/with-stack.sh (as `make bench` does), which exports the stack's
# environment (AWS_ENDPOINT_URL, DOCKER_HOST, STACK_*). Figures go to stdout, progress
# to stderr. Knobs: BENCH_RUNS=N, BENCH_QUICK=1, BENCH_ONLY=push,setup,context,startup,scale,cold,builders,multistage,
# BENCH_KEEP=1.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)

if [[ ! -x $root/bin/containerise ]]; then
	echo "bench: no $root/bin/containerise; run make build (make bench does)" >&2
	exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/containerise-bench-bin.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# Built, not `go run`, so the bench's own compile time is not inside anything it measures
# and a signal reaches the bench itself.
(cd "$here" && go build -trimpath -o "$tmp/bench" .)
"$tmp/bench" -repo "$root" -bin "$root/bin/containerise" "$@"
