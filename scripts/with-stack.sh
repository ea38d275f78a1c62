#!/usr/bin/env bash
# Run one command against the local test stack (moto + private dockerd + TLS registry):
#   scripts/with-stack.sh go test -count=1 ./...
# Brings the stack up if needed, sources its env, runs the command and exits with its status.
# On exit (also on Ctrl-C) the stack is taken down again if a with-stack.sh brought it up
# and no other with-stack.sh still uses it; a stack started by hand (stack.sh up) is left
# running. Several runs may share one stack at the same time.
set -euo pipefail

if [[ $# -eq 0 ]]; then
	echo "usage: $0 COMMAND [ARGS...]" >&2
	exit 2
fi

stack=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/stack.sh
# Same defaults as stack.sh.
state=${CONTAINERISE_STACK_DIR:-/tmp/containerise-stack}
cache=${CONTAINERISE_CACHE:-/var/cache/containerise}
users=$state/with-stack-users # one file per live with-stack.sh run
owned=$state/with-stack-owned # present when a with-stack.sh brought the stack up

# A run is identified by pid plus start time, so a recycled pid does not count as a user.
start_time() { cut -d' ' -f22 "/proc/$1/stat" 2>/dev/null; }
me="$$.$(start_time $$)"

# Registration and up/down happen under one lock so that a run starting while another
# takes the stack down cannot be left with a dead stack. fd 8 is closed for stack.sh, or the
# daemons it starts would inherit it and hold the lock for as long as they run.
lock() {
	mkdir -p "$cache"
	exec 8>"$cache/with-stack.lock"
	flock 8
}
unlock() { exec 8>&-; }

# shellcheck disable=SC2317 # called from cleanup, run by the EXIT trap
others_alive() {
	local f pid
	for f in "$users"/*; do
		[[ -e $f ]] || continue
		pid=${f##*/}
		pid=${pid%%.*}
		if [[ ${f##*/} != "$me" && ${f##*/} == "$pid.$(start_time "$pid")" ]]; then
			return 0
		fi
		[[ ${f##*/} == "$me" ]] || rm -f "$f" # a run that died without cleaning up
	done
	return 1
}

registered=0 claim=0
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	[[ $registered == 1 ]] || return 0
	lock
	rm -f "$users/$me"
	# claim covers a run stopped half-way through its own up, before it wrote $owned.
	if [[ -e $owned || $claim == 1 ]] && ! others_alive; then
		bash "$stack" down 8>&- || echo "with-stack: stack down failed" >&2
	fi
	unlock
}
trap cleanup EXIT
# Turn signals into a normal exit so the EXIT trap runs once, with the usual status codes.
trap 'exit 130' INT
trap 'exit 143' TERM

lock
bash "$stack" status >/dev/null 2>&1 || claim=1
registered=1 # from here on, cleanup may take down what up starts, even half-way
bash "$stack" up 8>&-
mkdir -p "$users"
: >"$users/$me"
[[ $claim == 0 ]] || : >"$owned"
unlock

# shellcheck disable=SC1090 # the env file is written by stack.sh up
source "$(bash "$stack" env)"

rc=0
"$@" || rc=$?
exit "$rc"
