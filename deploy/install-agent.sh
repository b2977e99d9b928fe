#!/usr/bin/env bash
# Installs or updates the berth agent on this host. Run as root. Idempotent: a second run with the
# same source changes nothing and says so; a run with a newer source updates the package only.
#
#   deploy/install-agent.sh [--id ID] [--prefix /opt/berth] [--source DIR] [--no-image]
#                           [--no-systemd] [--start]
#
# What it makes sure of: the system user and group `berth` (also in group `docker`), the folders
# (/home/claude: session homes; /var/lib/berth/agent: host key and trusted shell keys;
# /var/log/berth; /etc/berth), berth in PREFIX with /usr/local/bin/berth, /etc/berth/agent.json
# (written only if absent), the session image, and the systemd unit (installed and enabled,
# started only with --start). Settings already on the host are never overwritten.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: install-agent.sh [options]   (as root)
  --id ID         agent id for a new /etc/berth/agent.json (default: the host name)
  --prefix DIR    where berth goes (default /opt/berth)
  --source DIR    the berth checkout or unpacked package (default: the folder above this script)
  --no-image      do not build the session image (berth-session:latest)
  --no-systemd    do not install or enable the systemd unit (hosts or containers without systemd)
  --start         start the unit if it is not running
EOF
}

role=agent
prefix=/opt/berth
source_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
agent_id=""
with_image=1
with_systemd=1
start=0
while [ $# -gt 0 ]; do
  case $1 in
    --id) agent_id=${2:?--id needs a value}; shift 2 ;;
    --prefix) prefix=${2:?--prefix needs a value}; shift 2 ;;
    --source) source_dir=${2:?--source needs a value}; shift 2 ;;
    --no-image) with_image=0; shift ;;
    --no-systemd) with_systemd=0; shift ;;
    --start) start=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "install-agent.sh: unknown option: $1" >&2; usage >&2; exit 2 ;;
  esac
done

# The helpers both install scripts use.
# shellcheck source=deploy/install-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/install-lib.sh"

say "berth $role install from $source_dir into $prefix"

ensure_user
ensure_group docker
if [[ " $(id -nG berth) " != *" docker "* ]]; then
  usermod -a -G docker berth
  changed "added berth to group docker"
fi

# /home/claude may be a person's home on some hosts: never take it over.
if [ -d /home/claude ]; then
  owner=$(stat -c '%U' /home/claude)
  case $owner in berth | root) ;; *) die "/home/claude belongs to $owner; berth keeps its sessions there: move it away first" ;; esac
fi
ensure_dir /home/claude 750 berth:berth
ensure_dir /etc/berth 755 root:root
ensure_dir /var/lib/berth 755 root:root
ensure_dir /var/lib/berth/agent 700 berth:berth
ensure_dir /var/log/berth 750 berth:berth

before=$changes
install_package
package_changes=$((changes - before))

config=/etc/berth/agent.json
if [ ! -e "$config" ]; then
  [ -n "$agent_id" ] || agent_id=$(uname -n | cut -d. -f1 | tr 'A-Z_' 'a-z-')
  [[ $agent_id =~ ^[a-z0-9][a-z0-9-]{0,31}$ ]] || die "agent id \"$agent_id\" must be 1-32 of a-z, 0-9, \"-\": pass --id"
  ensure_file "$config" 644 <<EOF
{
  "id": "$agent_id",
  "listen": { "host": "0.0.0.0", "port": 2222 },
  "root": "/home/claude",
  "stateDir": "/var/lib/berth/agent"
}
EOF
else
  say "$config is there; kept as it is"
fi

# As the berth user: checks the config and that the service can read and write what it needs;
# makes the host key on the first run.
had_key=0
[ -e /var/lib/berth/agent/host_key ] && had_key=1
fingerprint=$(/usr/local/bin/berth agent fingerprint --config "$config") || die "berth agent fingerprint --config $config failed (above)"
[ "$had_key" = 1 ] || [ ! -e /var/lib/berth/agent/host_key ] || changed "made the agent's host key"

if [ "$with_image" = 1 ]; then
  image=$("$node_bin" -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).image || "berth-session:latest")' "$config")
  command -v docker >/dev/null || die "docker is not installed (apt-get install docker.io), or pass --no-image"
  docker version >/dev/null 2>&1 || die "the Docker engine does not answer (systemctl start docker), or pass --no-image"
  # Built when missing, and rebuilt when it was made from another recipe (an upgrade that pins
  # another Claude Code version, say); an image that is up to date is left alone.
  command -v debootstrap >/dev/null || [ -x /usr/sbin/debootstrap ] || docker image inspect "$image" >/dev/null 2>&1 \
    || die "the image build needs debootstrap (apt-get install debootstrap), or pass --no-image"
  built=$(PATH="$PATH:/usr/sbin" /usr/local/bin/berth image build --tag "$image" --if-missing) || die "berth image build failed (above)"
  printf '%s\n' "$built"
  case "$built" in *"up to date"*) ;; *) changed "built the session image $image" ;; esac
fi
command -v git >/dev/null || say "warning: git is not installed: sessions cannot take a project (--repo) until it is (apt-get install git)"

install_unit berth-agent
finish
say "agent host key: $fingerprint"
say "enrol it: on the shell host, berth shell add-agent --config /etc/berth/shell.json --id ID --host $(uname -n) --port 2222 --fingerprint $fingerprint"
say "then here: berth agent authorize-shell --config $config \"KEY\" (the key add-agent prints); see docs/operations.md"
