#!/usr/bin/env bash
# A local stand-in for AWS + ECR so containerise can be tested end to end with no network:
#   - moto (IAM, STS, ECR APIs) on 127.0.0.1:5000, in its auth mode: signatures and policies
#     are checked as AWS does (scripts/moto_strict.py)
#   - a private dockerd (own socket, data root and exec root, so it never meets another engine)
#   - a registry answering over TLS at the ECR host name that moto hands out, via an /etc/hosts
#     line: the project's ECR front (internal/testsupport/ecrfront, built here with go build) on
#     127.0.0.1:443 passes registry traffic to a Distribution registry on 127.0.0.1:5001 and
#     records what is pushed in moto's ECR, as ECR's registry and API are one
#   - BuildKit, built from source at the version go.mod pins: a buildkitd on the host (a unix
#     socket, for push --builder remote) and an image of buildkitd, buildctl and Debian's runc
#     on the engine (for push --builder container); the base image is pushed to the registry
#     too, since a standalone BuildKit daemon cannot see the engine's images
#
# Usage: stack.sh up|down|status|env [--print]
#   up      install what is missing, start what is not running, reuse what is healthy
#   down    stop everything up started and undo its changes to /etc (packages and venv stay)
#   status  say what runs; exits 0 only when the whole stack is healthy
#   env     print the path of the env file to source (export lines); --print shows it
#
# Needs root (apt, /etc/hosts, port 443). Knobs: CONTAINERISE_STACK_DIR (state, default
# /tmp/containerise-stack), CONTAINERISE_CACHE (venv cache, default /var/cache/containerise).
set -euo pipefail

STATE=${CONTAINERISE_STACK_DIR:-/tmp/containerise-stack}
CACHE=${CONTAINERISE_CACHE:-/var/cache/containerise}
VENV=$CACHE/venv

# moto's default account; moto's GetAuthorizationToken decodes to AWS:<account>-auth-token and
# its proxyEndpoint is https://<account>.dkr.ecr.<region>.amazonaws.com.
ACCOUNT=123456789012
REGION=us-east-1
REGISTRY_HOST=$ACCOUNT.dkr.ecr.$REGION.amazonaws.com
REGISTRY_USER=AWS
REGISTRY_PASSWORD=$ACCOUNT-auth-token
REGISTRY_DIR=$STATE/registry
REGISTRY_CA=$REGISTRY_DIR/tls/ca.crt
# The Distribution registry, plain HTTP on loopback, behind the front.
REGISTRY_BACKEND=127.0.0.1:5001
FRONT_BIN=$STATE/ecrfront
FRONT_PIDFILE=$STATE/ecrfront.pid
FRONT_LOG=$STATE/ecrfront.log
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# moto checks every call's signature and the caller's policies, as AWS does; these
# credentials stand for the account's root user (see scripts/moto_strict.py).
MOTO_LAUNCHER=$REPO_ROOT/scripts/moto_strict.py
ROOT_KEY_ID=AKIASTACKROOT0000000
ROOT_SECRET=stack-root-secret-not-for-anything-else
MOTO_HOST=127.0.0.1
MOTO_PORT=5000
MOTO_URL=http://$MOTO_HOST:$MOTO_PORT

# The data root lives outside /tmp on purpose: vfs layers are big and /tmp may be tmpfs.
DOCKER_PARENT=/var/lib/containerise-stack
DOCKER_ROOT=$DOCKER_PARENT/docker
DOCKER_SOCK=$STATE/docker.sock
DOCKER_EXEC=$STATE/docker-exec
DOCKER_PIDFILE=$STATE/dockerd.pid

CERTS_D=/etc/docker/certs.d
HOST_CERT_DIR=$CERTS_D/$REGISTRY_HOST
OURS=.containerise-stack # marker file: proves a folder is ours to delete
HOSTS_MARK='# containerise-stack'

BASE_IMAGE=local/busybox:latest
ENV_FILE=$STATE/env

# BuildKit at the version go.mod requires (the client push links). Built in a scratch module
# under the cache folder, which stays across up/down.
BUILDKIT_VERSION=$(awk '$1 == "github.com/moby/buildkit" { print $2; exit }' "$REPO_ROOT/go.mod")
BUILDKIT_SRC=$CACHE/buildkit-$BUILDKIT_VERSION
BUILDKIT_BIN=$BUILDKIT_SRC/bin
# The remote builder's daemon on the host; its state beside the engine's (large, not in /tmp).
BUILDKITD_ROOT=$DOCKER_PARENT/buildkitd
BUILDKITD_SOCK=$STATE/buildkitd.sock
BUILDKITD_PIDFILE=$STATE/buildkitd.pid
# The container builder's image, made from the same binaries.
BUILDKIT_IMAGE=containerise-stack/buildkit:$BUILDKIT_VERSION
# The base image where a standalone daemon reaches it: in the registry.
BASE_REF=$REGISTRY_HOST/base/busybox:latest

# Changing this list is what triggers a venv reinstall (compared with a stamp file).
REQUIREMENTS=('moto[server]==5.2.5' boto3 docker awscli)
APT_PACKAGES=(docker.io docker-registry busybox-static apache2-utils openssl curl ca-certificates iproute2 runc)

say() { printf 'stack: %s\n' "$*" >&2; }
die() {
	printf 'stack: error: %s\n' "$*" >&2
	exit 1
}

# Dump the end of a log so a failure explains itself.
die_with_log() {
	local log=$1
	shift
	printf 'stack: error: %s\n' "$*" >&2
	if [[ -f $log ]]; then
		printf -- '--- last lines of %s ---\n' "$log" >&2
		tail -n 25 "$log" >&2
	fi
	exit 1
}

# Our own docker client calls: pinned to our socket, blind to any DOCKER_* of the caller
# (a CircleCI-style DOCKER_TLS_VERIFY would otherwise apply TLS to a unix socket).
dk() {
	env -u DOCKER_HOST -u DOCKER_TLS_VERIFY -u DOCKER_CERT_PATH -u DOCKER_CONTEXT \
		DOCKER_CONFIG="$STATE/docker-config" docker -H "unix://$DOCKER_SOCK" "$@"
}

# pid_from FILE WORD: prints the pid in FILE if that process lives and its command line
# contains WORD (guards against a recycled pid).
pid_from() {
	local file=$1 word=$2 pid cmd
	[[ -s $file ]] || return 1
	pid=$(<"$file")
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || return 1
	[[ $cmd == *"$word"* ]] || return 1
	printf '%s\n' "$pid"
}

# pids_matching STRING: live processes whose command line contains STRING. Used by `down`
# to find our own processes when their pidfiles are gone; STRING is always one of our paths.
pids_matching() {
	local d cmd
	for d in /proc/[0-9]*; do
		[[ ${d#/proc/} == "$$" ]] && continue
		cmd=$(tr '\0' ' ' 2>/dev/null <"$d/cmdline") || continue
		[[ $cmd == *"$1"* ]] && printf '%s\n' "${d#/proc/}"
	done
	return 0
}

# alive PID: running and not a zombie (an unreaped zombie still passes kill -0).
alive() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[[ ${stat%% *} != Z ]]
}

# stop_pids NAME PID...: TERM, wait up to 20 s, then KILL.
stop_pids() {
	local name=$1 pid i any
	shift
	[[ $# -gt 0 ]] || return 0
	say "stopping $name"
	kill -TERM "$@" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		any=0
		for pid in "$@"; do alive "$pid" && any=1; done
		[[ $any == 0 ]] && return 0
		sleep 0.2
	done
	say "$name did not stop in 20 s; killing it"
	kill -KILL "$@" 2>/dev/null || true
	sleep 0.5
}

# note_if_absent PATH...: remember paths that are about to be created outside our own folders
# (by us or by dockerd), so `down` can remove exactly those and leave the machine as it was.
note_if_absent() {
	local p
	for p in "$@"; do
		[[ -e $p ]] || grep -qxF -- "$p" "$STATE/created" 2>/dev/null || echo "$p" >>"$STATE/created"
	done
}

# Remove what note_if_absent recorded, newest first; folders only if empty, since something
# else may have moved in meanwhile.
remove_created() {
	local p
	[[ -f $STATE/created ]] || return 0
	tac "$STATE/created" | while read -r p; do
		if [[ -d $p && ! -L $p ]]; then
			rmdir "$p" 2>/dev/null || true
		else
			rm -f "$p"
		fi
	done
}

# daemon LOG CMD...: start CMD in the background, in a session of its own, with stdout and
# stderr to LOG and no other file descriptor of ours. A lock the caller holds on a descriptor
# (flock) is thus never inherited: a daemon holding it would block every e2e run for as long
# as it lives.
daemon() {
	local log=$1 fd
	shift
	(
		for fd in /proc/self/fd/*; do
			fd=${fd##*/}
			if ((fd > 2)); then eval "exec $fd>&-" 2>/dev/null || true; fi
		done
		exec setsid "$@" </dev/null >"$log" 2>&1
	) &
}

port_in_use() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# wait_until DESC PID LOG TIMEOUT CMD...: poll CMD; fail early if PID dies.
wait_until() {
	local desc=$1 pid=$2 log=$3 timeout=$4 deadline
	shift 4
	deadline=$((SECONDS + timeout))
	until "$@" >/dev/null 2>&1; do
		alive "$pid" || die_with_log "$log" "$desc exited while starting"
		((SECONDS < deadline)) || die_with_log "$log" "$desc did not answer within ${timeout}s"
		sleep 0.2
	done
}

# ---------------------------------------------------------------------------- install

is_installed() {
	[[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) == installed ]]
}

ensure_packages() {
	local p missing=() added_policy=0
	for p in "${APT_PACKAGES[@]}"; do
		is_installed "$p" || missing+=("$p")
	done
	# The venv needs a python3 with venv + ensurepip; Debian splits those into python3-venv.
	if ! command -v python3 >/dev/null || ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
		missing+=(python3 python3-venv)
	fi
	# The trust-policy tests run an IAM simulator from npm (internal/testsupport/trusteval).
	if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
		missing+=(nodejs npm)
	fi
	[[ ${#missing[@]} -gt 0 ]] || return 0

	say "installing packages: ${missing[*]}"
	mkdir -p "$STATE"
	# Keep postinst from starting the system docker and docker-registry services: on a systemd
	# host the latter would take port 5000 from moto.
	if [[ ! -e /usr/sbin/policy-rc.d ]]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod 755 /usr/sbin/policy-rc.d
		added_policy=1
		trap 'rm -f /usr/sbin/policy-rc.d' EXIT # also when interrupted
	fi
	local rc=0
	{
		DEBIAN_FRONTEND=noninteractive apt-get update -q &&
			DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
				-o DPkg::Lock::Timeout=300 "${missing[@]}"
	} >"$STATE/apt.log" 2>&1 || rc=$?
	if [[ $added_policy == 1 ]]; then
		rm -f /usr/sbin/policy-rc.d
		trap - EXIT
	fi
	[[ $rc == 0 ]] || die_with_log "$STATE/apt.log" "apt-get failed"
}

ensure_venv() {
	local want stamp=$VENV/.containerise-requirements
	want=$(printf '%s\n' "${REQUIREMENTS[@]}")
	if [[ -f $stamp && $(<"$stamp") == "$want" ]] && "$VENV/bin/python" -c '' 2>/dev/null; then
		return 0
	fi
	say "installing Python tools into $VENV (moto, boto3, docker, awscli)"
	mkdir -p "$STATE" "$CACHE"
	# A venv whose interpreter vanished (python upgraded) cannot be repaired in place.
	"$VENV/bin/python" -c '' 2>/dev/null || rm -rf "$VENV"
	[[ -d $VENV ]] || python3 -m venv "$VENV" >"$STATE/pip.log" 2>&1 ||
		die_with_log "$STATE/pip.log" "python3 -m venv failed"
	rm -f "$stamp"
	printf '%s\n' "$want" >"$VENV/requirements.txt"
	"$VENV/bin/python" -m pip install -q -r "$VENV/requirements.txt" >>"$STATE/pip.log" 2>&1 ||
		die_with_log "$STATE/pip.log" "pip install failed"
	printf '%s\n' "$want" >"$stamp"
}

# ---------------------------------------------------------------------------- moto

moto_ok() { curl -fsS -o /dev/null --max-time 3 "$MOTO_URL/moto-api/"; }

start_moto() {
	local pid
	if pid=$(pid_from "$STATE/moto.pid" moto_strict.py); then
		moto_ok && return 0
		stop_pids moto "$pid" # ours but not answering: restart it
	elif pid=$(pid_from "$STATE/moto.pid" moto_server); then
		stop_pids "moto (not in auth mode)" "$pid" # an older stack's: restart it strict
	fi
	port_in_use "$MOTO_HOST" "$MOTO_PORT" &&
		die "$MOTO_HOST:$MOTO_PORT is taken by a process that is not this stack's moto"
	say "starting moto on $MOTO_URL, in its auth mode (scripts/moto_strict.py)"
	daemon "$STATE/moto.log" env STACK_ROOT_ACCESS_KEY_ID="$ROOT_KEY_ID" STACK_ROOT_SECRET_ACCESS_KEY="$ROOT_SECRET" \
		"$VENV/bin/python" "$MOTO_LAUNCHER" -H "$MOTO_HOST" -p "$MOTO_PORT"
	pid=$!
	echo "$pid" >"$STATE/moto.pid"
	wait_until moto "$pid" "$STATE/moto.log" 30 moto_ok
}

# ---------------------------------------------------------------------------- dockerd

dockerd_ok() { timeout 10 env DOCKER_CONFIG="$STATE/docker-config" docker -H "unix://$DOCKER_SOCK" version; }

start_dockerd() {
	local pid
	mkdir -p "$STATE/docker-config"
	if pid=$(pid_from "$DOCKER_PIDFILE" dockerd); then
		dockerd_ok >/dev/null 2>&1 && return 0
		stop_pids dockerd "$pid"
	fi
	# Managed containerd/shims of a dockerd that was killed would hold the exec root.
	stop_ours "leftover containerd" /dev/null - "$DOCKER_EXEC/containerd/"
	rm -f "$DOCKER_PIDFILE" "$DOCKER_SOCK"
	mkdir -p "$DOCKER_ROOT" "$DOCKER_EXEC"
	# An empty config file shields us from the host's /etc/docker/daemon.json (its "hosts"
	# key would clash with --host). Our own containerd namespaces keep our containers apart
	# from a system dockerd that shares a system containerd.
	echo '{}' >"$STATE/daemon.json"
	# dockerd 20.10 and its containerd also write at fixed places: a trust key, a plugin
	# folder, and the shims' socket folder.
	note_if_absent /etc/docker /etc/docker/key.json /run/docker /run/docker/plugins \
		/run/containerd /run/containerd/s
	# The default bridge stays: BuildKit runs each RUN in a network namespace on it (with
	# --bridge=none it fails with "network bridge not found"). dockerd leaves docker0 behind
	# when it stops, so down removes it if up made it.
	if [[ ! -e /sys/class/net/docker0 && ! -e $STATE/docker0-ours ]]; then
		touch "$STATE/docker0-ours"
	fi
	say "starting dockerd on unix://$DOCKER_SOCK"
	daemon "$STATE/dockerd.log" dockerd \
		--config-file "$STATE/daemon.json" \
		--host "unix://$DOCKER_SOCK" \
		--data-root "$DOCKER_ROOT" \
		--exec-root "$DOCKER_EXEC" \
		--pidfile "$DOCKER_PIDFILE" \
		--containerd-namespace containerise-stack \
		--containerd-plugins-namespace containerise-stack-plugins \
		--storage-driver=vfs --iptables=false --ip6tables=false
	pid=$!
	wait_until dockerd "$pid" "$STATE/dockerd.log" 60 dockerd_ok
}

# A base image made locally, since nothing can be pulled: busybox-static plus one link per
# applet (sh, echo, ls, ...).
ensure_base_image() {
	dk image inspect "$BASE_IMAGE" >/dev/null 2>&1 && return 0
	say "importing $BASE_IMAGE from busybox-static"
	local tmp busybox applet
	tmp=$(mktemp -d)
	busybox=$(command -v busybox) || die "busybox not found"
	mkdir -p "$tmp/bin" "$tmp/tmp" "$tmp/etc"
	cp "$busybox" "$tmp/bin/busybox"
	for applet in $("$busybox" --list); do
		[[ $applet == busybox ]] || ln -sf busybox "$tmp/bin/$applet"
	done
	chmod 1777 "$tmp/tmp"
	tar -C "$tmp" -c . | dk import \
		--change 'ENV PATH=/bin' \
		--change 'CMD ["sh"]' \
		- "$BASE_IMAGE" >/dev/null || {
		rm -rf "$tmp"
		die "docker import of $BASE_IMAGE failed"
	}
	rm -rf "$tmp"
}

# ---------------------------------------------------------------------------- registry

write_registry_files() {
	mkdir -p "$REGISTRY_DIR/tls" "$REGISTRY_DIR/data"
	if [[ ! -s $REGISTRY_CA || ! -s $REGISTRY_DIR/tls/key.pem ]]; then
		# Self-signed: the certificate is its own CA, trusted by the engine via certs.d.
		openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 30 \
			-subj "/CN=$REGISTRY_HOST" \
			-addext "subjectAltName=DNS:$REGISTRY_HOST" \
			-keyout "$REGISTRY_DIR/tls/key.pem" -out "$REGISTRY_CA" 2>"$STATE/openssl.log" ||
			die_with_log "$STATE/openssl.log" "openssl failed"
	fi
	if [[ ! -s $REGISTRY_DIR/htpasswd ]]; then
		# bcrypt: the only hash Distribution's htpasswd auth accepts.
		htpasswd -Bbn "$REGISTRY_USER" "$REGISTRY_PASSWORD" >"$REGISTRY_DIR/htpasswd" 2>/dev/null
	fi
	[[ -s $REGISTRY_DIR/secret ]] || openssl rand -hex 16 >"$REGISTRY_DIR/secret"
	cat >"$REGISTRY_DIR/config.yml" <<EOF
version: 0.1
log:
  level: info
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $REGISTRY_DIR/data
  delete:
    enabled: true
http:
  addr: $REGISTRY_BACKEND
  secret: $(<"$REGISTRY_DIR/secret")
auth:
  htpasswd:
    realm: containerise-stack
    path: $REGISTRY_DIR/htpasswd
EOF
}

# Point the ECR host name at 127.0.0.1 with one marked line. Written in place (cat >), since
# /etc/hosts is often a bind mount that a rename would break.
hosts_line() { printf '127.0.0.1 %s %s\n' "$REGISTRY_HOST" "$HOSTS_MARK"; }

ensure_hosts_line() {
	grep -qxF "$(hosts_line)" /etc/hosts && return 0
	HOSTS_CHANGED=1
	local tmp
	tmp=$(mktemp)
	grep -vF -- "$HOSTS_MARK" /etc/hosts >"$tmp" || true
	hosts_line >>"$tmp"
	cat "$tmp" >/etc/hosts
	rm -f "$tmp"
}

remove_hosts_line() {
	grep -qF -- "$HOSTS_MARK" /etc/hosts || return 0
	local tmp
	tmp=$(mktemp)
	grep -vF -- "$HOSTS_MARK" /etc/hosts >"$tmp" || true
	cat "$tmp" >/etc/hosts
	rm -f "$tmp"
}

# The engine reads /etc/docker/certs.d/<host>/ca.crt on each push: no restart needed.
ensure_engine_trust() {
	if [[ -d $HOST_CERT_DIR && ! -e $HOST_CERT_DIR/$OURS ]]; then
		die "$HOST_CERT_DIR exists and is not this stack's; move it away first"
	fi
	note_if_absent /etc/docker "$CERTS_D"
	mkdir -p "$HOST_CERT_DIR"
	touch "$HOST_CERT_DIR/$OURS"
	cmp -s "$REGISTRY_CA" "$HOST_CERT_DIR/ca.crt" || cp "$REGISTRY_CA" "$HOST_CERT_DIR/ca.crt"
}

# BuildKit pulls cache from the registry with the system's trust store, so the registry's CA
# is added there too, under a name of ours that down removes again.
SYSTEM_CA=/usr/local/share/ca-certificates/containerise-stack.crt

ensure_system_trust() {
	cmp -s "$REGISTRY_CA" "$SYSTEM_CA" && return 0
	if [[ -e $SYSTEM_CA && ! -e $STATE/system-ca-ours ]]; then
		die "$SYSTEM_CA exists and is not this stack's; move it away first"
	fi
	note_if_absent /usr/local/share/ca-certificates
	mkdir -p "$(dirname "$SYSTEM_CA")"
	touch "$STATE/system-ca-ours"
	cp "$REGISTRY_CA" "$SYSTEM_CA"
	update-ca-certificates >"$STATE/update-ca.log" 2>&1 ||
		die_with_log "$STATE/update-ca.log" "update-ca-certificates failed"
	# A running engine read the store when it started: restart it to see the new CA.
	local pid
	if pid=$(pid_from "$DOCKER_PIDFILE" dockerd); then
		stop_pids dockerd "$pid"
	fi
}

remove_system_trust() {
	[[ -e $STATE/system-ca-ours ]] || return 0
	rm -f "$SYSTEM_CA"
	update-ca-certificates --fresh >/dev/null 2>&1 || true
}

# The registry as clients see it: through the front, over TLS, at the ECR host name.
registry_ok() {
	[[ $(curl -sS -o /dev/null -w '%{http_code}' --max-time 3 --cacert "$REGISTRY_CA" \
		-u "$REGISTRY_USER:$REGISTRY_PASSWORD" "https://$REGISTRY_HOST/v2/") == 200 ]]
}

# The Distribution registry itself, behind the front.
backend_ok() {
	[[ $(curl -sS -o /dev/null -w '%{http_code}' --max-time 3 \
		-u "$REGISTRY_USER:$REGISTRY_PASSWORD" "http://$REGISTRY_BACKEND/v2/") == 200 ]]
}

start_registry() {
	local pid config=$REGISTRY_DIR/config.yml
	write_registry_files
	ensure_engine_trust
	if pid=$(pid_from "$STATE/registry.pid" "$config"); then
		backend_ok && return 0
		stop_pids registry "$pid" # ours but not answering, or an older stack's on 443
	fi
	port_in_use "${REGISTRY_BACKEND%:*}" "${REGISTRY_BACKEND#*:}" &&
		die "$REGISTRY_BACKEND is taken by a process that is not this stack's registry"
	say "starting registry on http://$REGISTRY_BACKEND"
	daemon "$STATE/registry.log" docker-registry serve "$config"
	pid=$!
	echo "$pid" >"$STATE/registry.pid"
	wait_until registry "$pid" "$STATE/registry.log" 30 backend_ok
}

# The ECR front is built from this checkout, so it always matches the tests that rely on it.
build_front() {
	command -v go >/dev/null || die "go is needed to build the ECR front (internal/testsupport/ecrfront)"
	(cd "$REPO_ROOT" && go build -o "$FRONT_BIN" ./internal/testsupport/ecrfront/cmd/ecrfront) >"$STATE/ecrfront-build.log" 2>&1 ||
		die_with_log "$STATE/ecrfront-build.log" "building the ECR front failed"
}

start_front() {
	local pid
	if pid=$(pid_from "$FRONT_PIDFILE" "$FRONT_BIN"); then
		# It records in moto with the root credentials; an older stack's front had others.
		registry_ok && tr '\0' '\n' <"/proc/$pid/environ" | grep -qx "AWS_ACCESS_KEY_ID=$ROOT_KEY_ID" && return 0
		stop_pids "ECR front" "$pid"
	fi
	port_in_use 127.0.0.1 443 && die "127.0.0.1:443 is taken by a process that is not this stack's ECR front"
	build_front
	say "starting the ECR front on https://$REGISTRY_HOST (127.0.0.1:443)"
	# The password goes by environment, never on a command line.
	daemon "$FRONT_LOG" env AWS_ACCESS_KEY_ID="$ROOT_KEY_ID" AWS_SECRET_ACCESS_KEY="$ROOT_SECRET" ECRFRONT_REGISTRY_PASSWORD="$REGISTRY_PASSWORD" \
		"$FRONT_BIN" -listen 127.0.0.1:443 -cert "$REGISTRY_CA" -key "$REGISTRY_DIR/tls/key.pem" \
		-registry "http://$REGISTRY_BACKEND" -moto "$MOTO_URL" -account "$ACCOUNT" -user "$REGISTRY_USER"
	pid=$!
	echo "$pid" >"$FRONT_PIDFILE"
	wait_until "ECR front" "$pid" "$FRONT_LOG" 30 registry_ok
}

# ---------------------------------------------------------------------------- buildkit

build_buildkit() {
	[[ -n $BUILDKIT_VERSION ]] || die "go.mod names no github.com/moby/buildkit version"
	[[ -x $BUILDKIT_BIN/buildkitd && -x $BUILDKIT_BIN/buildctl ]] && return 0
	command -v go >/dev/null || die "go is needed to build BuildKit"
	say "building buildkitd and buildctl $BUILDKIT_VERSION from source (a minute or two when Go's module cache is cold)"
	mkdir -p "$BUILDKIT_SRC/bin"
	# A module of its own: BuildKit's go.mod has exclude directives, so go install pkg@version
	# refuses it, while a module that requires it builds its commands.
	printf 'module containerise-stack/buildkit\n\ngo 1.24\n\nrequire github.com/moby/buildkit %s\n' \
		"$BUILDKIT_VERSION" >"$BUILDKIT_SRC/go.mod"
	printf '%s\n' '//go:build tools' '' '// Package tools pins the BuildKit commands of the test stack.' 'package tools' '' \
		'import (' '	_ "github.com/moby/buildkit/cmd/buildctl"' '	_ "github.com/moby/buildkit/cmd/buildkitd"' ')' \
		>"$BUILDKIT_SRC/tools.go"
	(
		cd "$BUILDKIT_SRC" || exit 1
		export GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=0
		go mod tidy &&
			go build -o bin/buildctl.tmp github.com/moby/buildkit/cmd/buildctl &&
			go build -o bin/buildkitd.tmp github.com/moby/buildkit/cmd/buildkitd &&
			mv bin/buildctl.tmp bin/buildctl && mv bin/buildkitd.tmp bin/buildkitd
	) >"$STATE/buildkit-build.log" 2>&1 || die_with_log "$STATE/buildkit-build.log" "building BuildKit failed"
}

# The container builder's image: busybox, buildkitd, buildctl, runc with its shared libraries
# and the system CA bundle (which holds the registry's CA), imported as one layer. Imported
# again when any of them changed: a label carries their hash.
ensure_buildkit_image() {
	local sum have tmp runc lib
	runc=$(command -v runc) || die "runc not found (apt package runc)"
	sum=$(cat "$BUILDKIT_BIN/buildkitd" "$BUILDKIT_BIN/buildctl" "$runc" /etc/ssl/certs/ca-certificates.crt | sha256sum | cut -c1-16)
	have=$(dk image inspect -f '{{ index .Config.Labels "containerise.stack.sum" }}' "$BUILDKIT_IMAGE" 2>/dev/null || true)
	[[ $have == "$sum" ]] && return 0
	say "importing $BUILDKIT_IMAGE (buildkitd, buildctl, runc)"
	tmp=$(mktemp -d)
	mkdir -p "$tmp/bin" "$tmp/usr/bin" "$tmp/tmp" "$tmp/etc/ssl/certs" "$tmp/var/lib/buildkit" "$tmp/run"
	chmod 1777 "$tmp/tmp"
	cp "$(command -v busybox)" "$tmp/bin/busybox"
	ln -s busybox "$tmp/bin/sh"
	cp "$BUILDKIT_BIN/buildkitd" "$BUILDKIT_BIN/buildctl" "$runc" "$tmp/usr/bin/"
	for lib in $(ldd "$runc" | grep -o '/[^ ]*'); do
		cp -L --parents "$lib" "$tmp/"
	done
	cp /etc/ssl/certs/ca-certificates.crt "$tmp/etc/ssl/certs/"
	tar -C "$tmp" -c . | dk import \
		--change 'ENV PATH=/usr/bin:/bin' \
		--change "LABEL containerise.stack.sum=$sum" \
		--change 'ENTRYPOINT ["buildkitd"]' \
		- "$BUILDKIT_IMAGE" >/dev/null || {
		rm -rf "$tmp"
		die "docker import of $BUILDKIT_IMAGE failed"
	}
	rm -rf "$tmp"
}

buildkitd_ok() { timeout 10 "$BUILDKIT_BIN/buildctl" --addr "unix://$BUILDKITD_SOCK" debug workers; }

start_buildkitd() {
	local pid
	if pid=$(pid_from "$BUILDKITD_PIDFILE" buildkitd); then
		buildkitd_ok >/dev/null 2>&1 && return 0
		stop_pids buildkitd "$pid"
	fi
	rm -f "$BUILDKITD_SOCK"
	mkdir -p "$BUILDKITD_ROOT"
	say "starting buildkitd on unix://$BUILDKITD_SOCK"
	daemon "$STATE/buildkitd.log" "$BUILDKIT_BIN/buildkitd" \
		--root "$BUILDKITD_ROOT" --addr "unix://$BUILDKITD_SOCK" \
		--oci-worker-snapshotter=native --containerd-worker=false --oci-worker-net=host
	pid=$!
	echo "$pid" >"$BUILDKITD_PIDFILE"
	wait_until buildkitd "$pid" "$STATE/buildkitd.log" 60 buildkitd_ok
}

base_in_registry() {
	[[ $(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 --cacert "$REGISTRY_CA" \
		-u "$REGISTRY_USER:$REGISTRY_PASSWORD" -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
		"https://$REGISTRY_HOST/v2/base/busybox/manifests/latest") == 200 ]]
}

# A standalone daemon pulls FROM images from a registry: push the local base image there,
# with a login kept in a throwaway client config.
push_base_image() {
	base_in_registry && return 0
	say "pushing $BASE_IMAGE to $BASE_REF"
	local cfg rc=0
	cfg=$(mktemp -d)
	{
		# The ECR front refuses a push to a repository ECR does not know, as ECR does.
		AWS_ACCESS_KEY_ID=$ROOT_KEY_ID AWS_SECRET_ACCESS_KEY=$ROOT_SECRET AWS_ENDPOINT_URL=$MOTO_URL \
			"$VENV/bin/aws" ecr create-repository --region "$REGION" --repository-name base/busybox >/dev/null 2>&1 || true
		printf '%s' "$REGISTRY_PASSWORD" |
			DOCKER_CONFIG=$cfg docker -H "unix://$DOCKER_SOCK" login -u "$REGISTRY_USER" --password-stdin "$REGISTRY_HOST" &&
			dk tag "$BASE_IMAGE" "$BASE_REF" &&
			DOCKER_CONFIG=$cfg docker -H "unix://$DOCKER_SOCK" push "$BASE_REF"
	} >"$STATE/base-push.log" 2>&1 || rc=$?
	rm -rf "$cfg"
	[[ $rc == 0 ]] || die_with_log "$STATE/base-push.log" "pushing $BASE_REF failed"
}

# ---------------------------------------------------------------------------- env file

write_env() {
	local tmp=$ENV_FILE.tmp name i
	local -a vars=(
		AWS_ENDPOINT_URL "$MOTO_URL"
		AWS_ACCESS_KEY_ID "$ROOT_KEY_ID"
		AWS_SECRET_ACCESS_KEY "$ROOT_SECRET"
		AWS_REGION "$REGION"
		AWS_DEFAULT_REGION "$REGION"
		DOCKER_HOST "unix://$DOCKER_SOCK"
		DOCKER_CONFIG "$STATE/docker-config"
		STACK_REGISTRY_HOST "$REGISTRY_HOST"
		STACK_REGISTRY_CA "$REGISTRY_CA"
		STACK_REGISTRY_USER "$REGISTRY_USER"
		STACK_REGISTRY_PASSWORD "$REGISTRY_PASSWORD"
		STACK_ACCOUNT_ID "$ACCOUNT"
		STACK_PYTHON "$VENV/bin/python"
		STACK_AWS_CLI "$VENV/bin/aws"
		STACK_MOTO_URL "$MOTO_URL"
		STACK_BASE_IMAGE "$BASE_IMAGE"
		STACK_DIR "$STATE"
		STACK_ECR_FRONT_LOG "$FRONT_LOG"
		STACK_BASE_REF "$BASE_REF"
		STACK_BUILDKIT_HOST "unix://$BUILDKITD_SOCK"
		STACK_BUILDKIT_IMAGE "$BUILDKIT_IMAGE"
		STACK_BUILDKITD "$BUILDKIT_BIN/buildkitd"
		STACK_BUILDCTL "$BUILDKIT_BIN/buildctl"
	)
	{
		echo "# containerise test stack; source me. Written by scripts/stack.sh up."
		# Caller settings that would point the SDKs or the docker client elsewhere.
		echo "unset AWS_PROFILE AWS_SESSION_TOKEN DOCKER_TLS_VERIFY DOCKER_CERT_PATH DOCKER_CONTEXT"
		for ((i = 0; i < ${#vars[@]}; i += 2)); do
			name=${vars[i]}
			printf 'export %s=%q\n' "$name" "${vars[i + 1]}"
		done
	} >"$tmp"
	mv "$tmp" "$ENV_FILE"
}

# ---------------------------------------------------------------------------- commands

cmd_up() {
	[[ $EUID == 0 ]] || die "run as root (apt, /etc/hosts, port 443)"
	mkdir -p "$STATE"
	touch "$STATE/$OURS" # lets `down` tell our state folder from any folder it was pointed at
	ensure_packages
	ensure_venv
	start_moto
	# dockerd's Go resolver caches /etc/hosts for 5 s after each read, so a line added just
	# after it started would be missed by the first push: write the line before starting it,
	# and give a running engine the 5 s when the line is new.
	HOSTS_CHANGED=0
	ensure_hosts_line
	if pid_from "$DOCKER_PIDFILE" dockerd >/dev/null && [[ $HOSTS_CHANGED == 1 ]]; then
		sleep 6
	fi
	# The engine's BuildKit trusts only the system store (it reads no certs.d), and reads it
	# when dockerd starts: the registry's CA goes there first.
	write_registry_files
	ensure_system_trust
	start_dockerd
	ensure_base_image
	start_registry
	start_front
	build_buildkit
	ensure_buildkit_image
	start_buildkitd
	push_base_image
	write_env
	say "up; source $ENV_FILE"
}

# Unmount a folder and anything below it before rm -rf: dockerd bind-mounts its data root
# onto itself, and a killed engine leaves that mount behind.
unmount_tree() {
	local m
	while read -r _ m _; do
		if [[ $m == "$1" || $m == "$1"/* ]]; then umount -l "$m" 2>/dev/null || true; fi
	done < <(tac /proc/mounts)
}

# stop_ours NAME PIDFILE WORD PATTERN: stop by pidfile, and also whatever still carries our
# unique PATTERN in its command line, in case the pidfile was lost.
stop_ours() {
	local name=$1 pidfile=$2 word=$3 pattern=$4 pids=()
	mapfile -t pids < <({
		pid_from "$pidfile" "$word" || true
		pids_matching "$pattern"
	} | sort -u)
	stop_pids "$name" "${pids[@]}"
}

cmd_down() {
	[[ $EUID == 0 ]] || die "run as root"
	stop_ours buildkitd "$BUILDKITD_PIDFILE" buildkitd "--addr unix://$BUILDKITD_SOCK"
	stop_ours "ECR front" "$FRONT_PIDFILE" "$FRONT_BIN" "$FRONT_BIN -listen"
	stop_ours registry "$STATE/registry.pid" "$REGISTRY_DIR/config.yml" \
		"docker-registry serve $REGISTRY_DIR/config.yml"
	stop_ours dockerd "$DOCKER_PIDFILE" dockerd "--host unix://$DOCKER_SOCK"
	# dockerd normally takes its containerd along; a killed one leaves it behind.
	stop_ours "leftover containerd" /dev/null - "$DOCKER_EXEC/containerd/"
	stop_ours moto "$STATE/moto.pid" moto_strict.py \
		"moto_strict.py -H $MOTO_HOST -p $MOTO_PORT"
	stop_ours "moto (not in auth mode)" /dev/null - \
		"$VENV/bin/moto_server -H $MOTO_HOST -p $MOTO_PORT"

	remove_hosts_line
	if [[ -e $HOST_CERT_DIR/$OURS ]]; then
		rm -rf "$HOST_CERT_DIR"
	fi
	remove_system_trust
	if [[ -e $STATE/docker0-ours && -e /sys/class/net/docker0 ]]; then
		ip link delete docker0 2>/dev/null || true
	fi
	remove_created
	unmount_tree "$DOCKER_ROOT"
	unmount_tree "$BUILDKITD_ROOT"
	unmount_tree "$STATE"
	rm -rf --one-file-system "$DOCKER_ROOT" "$BUILDKITD_ROOT"
	rmdir "$DOCKER_PARENT" 2>/dev/null || true
	if [[ -e $STATE/$OURS ]]; then
		rm -rf --one-file-system "$STATE"
	elif [[ -e $STATE ]]; then
		say "left $STATE alone: stack.sh did not make it"
	fi
	say "down"
}

cmd_status() {
	local ok=0 pid
	if pid=$(pid_from "$STATE/moto.pid" moto_strict.py) && moto_ok; then
		echo "moto:     running (pid $pid) at $MOTO_URL"
	else
		echo "moto:     not running"
		ok=1
	fi
	if pid=$(pid_from "$DOCKER_PIDFILE" dockerd) && dockerd_ok >/dev/null 2>&1; then
		echo "dockerd:  running (pid $pid) at unix://$DOCKER_SOCK"
		if dk image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
			echo "image:    $BASE_IMAGE present"
		else
			echo "image:    $BASE_IMAGE missing"
			ok=1
		fi
	else
		echo "dockerd:  not running"
		ok=1
	fi
	if pid=$(pid_from "$STATE/registry.pid" "$REGISTRY_DIR/config.yml") && backend_ok 2>/dev/null; then
		echo "registry: running (pid $pid) at http://$REGISTRY_BACKEND"
	else
		echo "registry: not running"
		ok=1
	fi
	if pid=$(pid_from "$FRONT_PIDFILE" "$FRONT_BIN") && registry_ok 2>/dev/null; then
		echo "front:    running (pid $pid) at https://$REGISTRY_HOST, recording pushes in moto"
	else
		echo "front:    not running"
		ok=1
	fi
	if pid=$(pid_from "$BUILDKITD_PIDFILE" buildkitd) && buildkitd_ok >/dev/null 2>&1; then
		echo "buildkit: running (pid $pid) at unix://$BUILDKITD_SOCK"
	else
		echo "buildkit: not running"
		ok=1
	fi
	if grep -qxF "$(hosts_line)" /etc/hosts; then
		echo "hosts:    $REGISTRY_HOST -> 127.0.0.1"
	else
		echo "hosts:    no entry"
		ok=1
	fi
	if [[ -f $ENV_FILE ]]; then
		echo "env:      $ENV_FILE"
	else
		echo "env:      missing"
		ok=1
	fi
	return "$ok"
}

cmd_env() {
	[[ -f $ENV_FILE ]] || die "no env file; run: $0 up"
	if [[ ${1:-} == --print ]]; then
		cat "$ENV_FILE"
	else
		printf '%s\n' "$ENV_FILE"
	fi
}

# One up or down at a time (ports and /etc are shared). The lock lives in the cache folder,
# which stays anyway, so `down` leaves nothing new behind. Daemons are started with fd 9
# closed (see daemon): an inherited copy would hold the lock for as long as they run.
lock() {
	mkdir -p "$CACHE"
	exec 9>"$CACHE/stack-updown.lock"
	flock -w 600 9 || die "another stack.sh up/down still runs after 10 min"
}

case ${1:-} in
up) lock && cmd_up ;;
down) lock && cmd_down ;;
status) cmd_status ;;
env) cmd_env "${2:-}" ;;
*)
	echo "usage: $0 up|down|status|env [--print]" >&2
	exit 2
	;;
esac
