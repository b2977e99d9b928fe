#!/usr/bin/env bash
# What berth needs on a Debian machine, installed if missing: Debian's Docker engine (started if it
# does not answer), dnsmasq, tmux, the OpenSSH client, debootstrap and git (projects' mirrors). Used by `npm run demo` and
# by CI. Needs root to install or start anything; says what is missing otherwise.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
say() { printf '== %s\n' "$*"; }

need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v dnsmasq >/dev/null || [ -x /usr/sbin/dnsmasq ] || need+=(dnsmasq-base)
command -v tmux >/dev/null || need+=(tmux)
command -v ssh >/dev/null || need+=(openssh-client)
command -v debootstrap >/dev/null || [ -x /usr/sbin/debootstrap ] || need+=(debootstrap)
command -v git >/dev/null || need+=(git)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "berth needs these Debian packages: ${need[*]} (run as root: apt-get install ${need[*]})" >&2
    exit 1
  fi
  say "installing ${need[*]}"
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${need[@]}"
fi

# Debian's client (API 1.41) matches Debian's engine; a newer client elsewhere on PATH may not.
export PATH="/usr/bin:/usr/sbin:$PATH"
if ! docker version >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ]; then
    echo "the Docker engine does not answer: start it (as root: dockerd &), or join the docker group" >&2
    exit 1
  fi
  say "starting dockerd"
  mkdir -p /var/log
  nohup dockerd >/var/log/berth-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do docker version >/dev/null 2>&1 && break; sleep 1; done
  docker version >/dev/null 2>&1 || { tail -30 /var/log/berth-dockerd.log >&2; echo "dockerd did not start" >&2; exit 1; }
fi
docker version --format 'docker engine {{.Server.Version}} (API {{.Server.APIVersion}})'
