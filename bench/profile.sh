#!/usr/bin/env bash
# Profile one containerise command line with pprof, against whatever the environment points
# at (source the stack's env first, or run through scripts/with-stack.sh):
#   bench/profile.sh OUTDIR [containerise arguments...]
#   e.g. bench/profile.sh /tmp/prof --verbose push --context ctx
# Builds bench/pprof/main.go inside the product's module through a go build overlay (the
# product's own code, unchanged, with profiling around it), runs it once with a CPU profile
# (1 kHz), an allocation profile and an execution trace, and prints its stderr with each line
# stamped (ms since start: where the wall time goes) and the top of each profile.
set -euo pipefail

if [[ $# -lt 2 ]]; then
	echo "usage: $0 OUTDIR CONTAINERISE-ARGS..." >&2
	exit 2
fi
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
out=$1
shift
mkdir -p "$out"
out=$(cd "$out" && pwd)

# The overlay places the wrapper at cmd/containerise-pprof/main.go of the product's module,
# a path that does not exist on disk; nothing in the work tree is written.
cat >"$out/overlay.json" <<JSON
{"Replace": {"$root/cmd/containerise-pprof/main.go": "$here/pprof/main.go"}}
JSON
(cd "$root" && go build -overlay "$out/overlay.json" -tags containerise_pprof -trimpath \
	-o "$out/containerise-pprof" ./cmd/containerise-pprof)

rc=0
start=$(date +%s%N)
CONTAINERISE_STAMP=1 CONTAINERISE_CPUPROFILE=$out/cpu.pprof CONTAINERISE_MEMPROFILE=$out/mem.pprof CONTAINERISE_TRACE=$out/trace.out \
	"$out/containerise-pprof" "$@" >"$out/stdout" 2>"$out/stderr" || rc=$?
end=$(date +%s%N)
echo "profile: exit $rc, wall $(((end - start) / 1000000)) ms; stdout, stderr and profiles in $out" >&2

echo "== stderr, each line stamped with the milliseconds since start"
cat "$out/stderr"
echo
echo "== CPU (samples at 1 kHz)"
go tool pprof -top -nodecount=25 "$out/containerise-pprof" "$out/cpu.pprof" 2>/dev/null | sed -n '1,32p'
echo
echo "== allocations (alloc_space)"
go tool pprof -top -nodecount=15 -sample_index=alloc_space "$out/containerise-pprof" "$out/mem.pprof" 2>/dev/null | sed -n '1,22p'
exit "$rc"
