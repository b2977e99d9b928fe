#!/usr/bin/env bash
# npm run demo: install what is missing, build what is missing, then run a local cluster (one
# shell, two agents, dnsmasq) in the foreground. Ctrl-C stops it; sessions stay for the next run.
set -euo pipefail
cd "$(dirname "$0")/.."
source deploy/prereqs.sh
[ -d node_modules ] || npm ci --no-audit --no-fund
npm run build --silent
node dist/deploy/berth.js image build --if-missing
exec node dist/deploy/berth.js demo "$@"
