#!/usr/bin/env bash
# Installs or updates the berth shell (the cluster's SSH entry point) on this host. Run as root.
# Idempotent: a second run with the same source changes nothing and says so; a run with a newer
# source updates the package only.
#
#   deploy/install-shell.sh [--operator NAME --operator-key "ssh-ed25519 …" [--operator-role R]]
#                           [--prefix /opt/berth] [--source DIR] [--no-systemd] [--start]
#
# What it makes sure of: the system user and group `berth`, the folders (/var/lib/berth/shell:
# keys, agents.json, DNS hosts file, audit log; /var/log/berth; /etc/berth), berth in PREFIX with
# /usr/local/bin/berth, /etc/berth/shell.json (written only if absent; its operator list is
# filled in from --operator only while it is empty), the key agents must trust, and the systemd
# unit (installed and enabled, started only with --start). Settings on the host are kept.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: install-shell.sh [options]   (as root)
  --operator NAME        first operator, for a shell.json that has none yet
  --operator-key KEY     that operator's SSH public key ("ssh-ed25519 AAAA… name@host")
  --operator-role ROLE   viewer, operator or admin (default admin)
  --prefix DIR           where berth goes (default /opt/berth)
  --source DIR           the berth checkout or unpacked package (default: the folder above this script)
  --no-systemd           do not install or enable the systemd unit (hosts or containers without systemd)
  --start                start the unit if it is not running (once shell.json has an operator)
EOF
}

role=shell
prefix=/opt/berth
source_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
operator=""
operator_key=""
operator_role=admin
with_systemd=1
start=0
while [ $# -gt 0 ]; do
  case $1 in
    --operator) operator=${2:?--operator needs a value}; shift 2 ;;
    --operator-key) operator_key=${2:?--operator-key needs a value}; shift 2 ;;
    --operator-role) operator_role=${2:?--operator-role needs a value}; shift 2 ;;
    --prefix) prefix=${2:?--prefix needs a value}; shift 2 ;;
    --source) source_dir=${2:?--source needs a value}; shift 2 ;;
    --no-systemd) with_systemd=0; shift ;;
    --start) start=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "install-shell.sh: unknown option: $1" >&2; usage >&2; exit 2 ;;
  esac
done
if [ -n "$operator" ] && [ -z "$operator_key" ]; then echo "install-shell.sh: --operator needs --operator-key" >&2; exit 2; fi
if [ -z "$operator" ] && [ -n "$operator_key" ]; then echo "install-shell.sh: --operator-key needs --operator" >&2; exit 2; fi

# The helpers both install scripts use.
# shellcheck source=deploy/install-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/install-lib.sh"

say "berth $role install from $source_dir into $prefix"

ensure_user
ensure_dir /etc/berth 755 root:root
ensure_dir /var/lib/berth 755 root:root
ensure_dir /var/lib/berth/shell 700 berth:berth
ensure_dir /var/log/berth 750 berth:berth

before=$changes
install_package
package_changes=$((changes - before))

# shell.json: written when absent; its operator list filled in from --operator only while it is
# empty (the shell refuses to start without an operator, so an empty list is nobody's choice).
# Other fields, and operators already there, are left as they are.
config=/etc/berth/shell.json
text=$("$node_bin" - "$config" "$operator" "$operator_role" "$operator_key" <<'JS'
const fs = require('fs');
const [file, name, role, key] = process.argv.slice(2);
const fresh = !fs.existsSync(file);
const cfg = fresh
  ? { listen: { host: '0.0.0.0', port: 2200 }, stateDir: '/var/lib/berth/shell', operators: [], dns: { domain: 'berth' } }
  : JSON.parse(fs.readFileSync(file, 'utf8'));
const empty = !Array.isArray(cfg.operators) || cfg.operators.length === 0;
if (name && empty) cfg.operators = [{ name, role, keys: [key] }];
if (fresh || (name && empty)) console.log(JSON.stringify(cfg, null, 2));
else if (name && !cfg.operators.some((o) => o.name === name)) console.error(`${file} has operators already; ${name} was not added (edit it by hand)`);
JS
) || die "$config: cannot read it as JSON"
if [ -n "$text" ]; then ensure_file "$config" 644 <<<"$text"; fi
# The shell writes its operators back (operator add|remove|role|keys), in place: shell.json is
# the berth group's to write.
if [ "$(stat -c '%a %U:%G' "$config")" != "660 root:berth" ]; then
  chown root:berth "$config"
  chmod 660 "$config"
  changed "made $config writable by the shell (660 root:berth)"
fi
operators=$("$node_bin" -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).operators?.length ?? 0)' "$config")

key=""
if [ "$operators" -gt 0 ]; then
  # As the berth user: checks the config and that the service can read and write what it needs;
  # makes the key agents must trust on the first run.
  had_key=0
  [ -e /var/lib/berth/shell/agent_key ] && had_key=1
  key=$(/usr/local/bin/berth shell show-key --config "$config") || die "berth shell show-key --config $config failed (above)"
  [ "$had_key" = 1 ] || [ ! -e /var/lib/berth/shell/agent_key ] || changed "made the shell's key for agents"
elif [ "$start" = 1 ]; then
  say "not starting berth-shell: $config has no operator yet"
  start=0
fi

install_unit berth-shell
finish
if [ "$operators" = 0 ]; then
  say ""
  say "$config has no operator yet, and the shell refuses to start without one. Either run"
  say "  $0 --operator NAME --operator-key \"ssh-ed25519 AAAA… you@laptop\""
  say "or put one in by hand:"
  say '  "operators": [ { "name": "alice", "role": "admin", "keys": ["ssh-ed25519 AAAA… alice@laptop"] } ]'
fi
[ -z "$key" ] || say "agents must trust this key (berth agent authorize-shell): $key"
say "enrol an agent: berth shell add-agent --config $config --id ID --host HOST --port 2222 --fingerprint SHA256:…; see docs/operations.md"
