#!/usr/bin/env bash
# The quick start, end to end, on the local stack (run by `make demo` through
# scripts/with-stack.sh, which starts moto, a Docker engine and a TLS registry
# at the ECR host name, and stops them afterwards). Against a real account
# the same three containerise commands are all a user runs.
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

# The emulator may still hold an earlier, interrupted demo's user and key,
# whose secret nobody can read again: start from an empty account.
curl -fsS -X POST "${STACK_MOTO_URL:?}/moto-api/reset" >/dev/null

# 1. The admin's one-time setup: repository, policy, user, role, variables.
show "$bin" setup --env-file "$envfile"

# 2. What the CI job runs, with only the variables CircleCI would hold.
set -a
# shellcheck disable=SC1090
. "$envfile"
set +a
show env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_PROFILE \
  "$bin" push --context examples/hello --tag v1 --tag demo

# 3. Clean up, as the blog's last section does.
echo "demo: (moto has no registry of its own, so it does not see the images pushed to the local one: teardown counts none here; real ECR counts them)" >&2
show "$bin" teardown --yes
