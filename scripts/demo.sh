#!/usr/bin/env bash
# The quick start, end to end, on the local stack (run by `make demo` through
# scripts/with-stack.sh, which starts moto, a Docker engine and a TLS registry
# at the ECR host name, and stops them afterwards): setup with a repository
# setting, push, the scan gate, teardown. Against a real account the same
# containerise commands are all a user runs.
set -euo pipefail

cd "$(dirname "$0")/.."
bin=${CONTAINERISE_BIN:-bin/containerise}
[ -x "$bin" ] || { echo "demo: $bin is missing; run 'make build' first" >&2; exit 1; }

# The CI variables setup prints go to a private file (0600), removed at exit,
# so the push step can read them as CircleCI would from its settings.
workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT
envfile=$workdir/circleci.env

show() {
  printf '\n\033[1m$ %s\033[0m\n' "$*" >&2
  "$@"
}

echo "demo: AWS is emulated by moto at ${AWS_ENDPOINT_URL:?run through scripts/with-stack.sh}; Docker at ${DOCKER_HOST:-default}" >&2

# The stack is shared with the end-to-end tests and make bench, which reset the
# emulator too: take their lock (the one e2e/harness_test.go takes) for the whole demo.
exec 7>"${TMPDIR:-/tmp}/containerise-e2e.lock"
if ! flock -n 7; then
  echo "demo: waiting for the end-to-end tests or make bench using the stack" >&2
  flock 7
fi

# The emulator may still hold an earlier, interrupted demo's user and key,
# whose secret nobody can read again: start from an empty account.
curl -fsS -X POST "${STACK_MOTO_URL:?}/moto-api/reset" >/dev/null

# 1. The admin's one-time setup: repository (scanning every push, keeping its
#    20 newest images), policy, user, role, variables.
show "$bin" setup --env-file "$envfile" --scan-on-push --keep-images 20

# 2. What the CI job runs, with only the variables CircleCI would hold.
set -a
# shellcheck disable=SC1090
. "$envfile"
set +a
ci=(env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_PROFILE)
show "${ci[@]}" "$bin" push --context examples/hello --tag v1 --tag demo | tee "$workdir/pushed"
digest=$(sed -n 's/.*:v1@//p' "$workdir/pushed")

# 3. The scan gate. ECR scanned the image on push; the emulator's scan reports
#    what it is told (moto's API for tests): here one MEDIUM and two LOW findings.
echo "demo: telling the emulator what its scan of the image found: 1 MEDIUM and 2 LOW findings" >&2
curl -fsS -X POST -H 'Content-Type: application/json' "${STACK_MOTO_URL}/moto-api/static/ecr/scan-finding-results" --data \
  '{"region": "'"${AWS_REGION:-us-east-1}"'", "results": [{"repositoryName": "circleci-ecr-test", "imageId": {"imageDigest": "'"$digest"'"},
    "imageScanStatus": {"status": "COMPLETE", "description": "The scan was completed successfully."},
    "imageScanFindings": {"findingSeverityCounts": {"MEDIUM": 1, "LOW": 2}, "findings": [
      {"name": "CVE-2099-0001", "severity": "MEDIUM", "attributes": [{"key": "package_name", "value": "busybox"}, {"key": "package_version", "value": "1.35"}]},
      {"name": "CVE-2099-0002", "severity": "LOW"}, {"name": "CVE-2099-0003", "severity": "LOW"}]}}]}' >/dev/null
show "${ci[@]}" "$bin" scan --tag v1 --fail-on HIGH
if show "${ci[@]}" "$bin" scan --tag v1 --fail-on MEDIUM; then
  echo "demo: the gate should have failed on the MEDIUM finding" >&2
  exit 1
fi
echo "demo: with --fail-on MEDIUM the gate exits 1 and fails the CI job" >&2

# 4. Clean up, as the blog's last section does: the image push made goes too.
show "$bin" teardown --yes
