# The shared part of install-agent.sh and install-shell.sh: sourced by both after they parsed
# their flags (role, prefix, source_dir, with_systemd, start, …). Not run on its own.
changes=0
say() { printf '%s\n' "$*"; }
changed() { changes=$((changes + 1)); printf '+ %s\n' "$*"; }
die() { printf 'install-%s.sh: %s\n' "$role" "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root"
case $prefix in /?*) ;; *) die "--prefix must be an absolute path other than /" ;; esac
prefix=${prefix%/}
source_dir=$(cd "$source_dir" && pwd) || die "--source $source_dir: no such folder"
[ -f "$source_dir/package.json" ] || die "--source $source_dir: no package.json (not a berth checkout)"
node_bin=$(command -v node) || die "node is not on PATH: install Node.js 20 or newer first"
"$node_bin" -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' ||
  die "$node_bin is Node $("$node_bin" --version); berth needs 20 or newer"
# The berth user's processes start here: root's cwd may be closed to them.
cd /

ensure_group() {
  getent group "$1" >/dev/null && return 0
  groupadd --system "$1"
  changed "created group $1"
}

# The system user `berth`: no login shell, home /var/lib/berth (nothing is kept there).
ensure_user() {
  ensure_group berth
  getent passwd berth >/dev/null && return 0
  local nologin=/usr/sbin/nologin
  [ -x "$nologin" ] || nologin=/bin/false
  useradd --system --gid berth --home-dir /var/lib/berth --no-create-home --shell "$nologin" berth
  changed "created user berth"
}

# ensure_dir DIR MODE OWNER:GROUP: creates DIR, or puts its mode and owner right.
ensure_dir() {
  local dir=$1 mode=$2 owner=$3 now
  if [ ! -d "$dir" ]; then
    mkdir "$dir"
    chmod "$mode" "$dir"
    chown "$owner" "$dir"
    changed "created $dir ($mode $owner)"
    return 0
  fi
  now=$(stat -c '%a %U:%G' "$dir")
  [ "$now" = "$mode $owner" ] && return 0
  chmod "$mode" "$dir"
  chown "$owner" "$dir"
  changed "set $dir to $mode $owner (was $now)"
}

# ensure_file FILE MODE: FILE gets exactly what is on stdin (root's, MODE), rewritten only if it
# differs; file_changed says whether it was. (Never called in a condition: `set -e` holds inside.)
file_changed=0
ensure_file() {
  local file=$1 mode=$2 tmp
  file_changed=0
  tmp=$(mktemp "$file.XXXXXX")
  cat >"$tmp"
  if [ -f "$file" ] && cmp -s "$tmp" "$file" && [ "$(stat -c '%a %U' "$file")" = "$mode root" ]; then
    rm -f "$tmp"
    return 0
  fi
  chmod "$mode" "$tmp"
  chown root:root "$tmp"
  mv -f "$tmp" "$file"
  file_changed=1
  changed "installed $file"
}

# sync_dir SRC DST: DST becomes a root-owned copy of SRC; replaced whole (copy, then rename) only
# when the contents differ, so a second run touches nothing.
sync_dir() {
  local src=$1 dst=$2
  [ -d "$src" ] || die "$src is missing"
  if [ -d "$dst" ] && diff -r -q "$src" "$dst" >/dev/null 2>&1; then return 0; fi
  rm -rf "$dst.new"
  cp -R "$src" "$dst.new"
  chown -R root:root "$dst.new"
  chmod -R u=rwX,go=rX "$dst.new"
  rm -rf "$dst"
  mv "$dst.new" "$dst"
  changed "installed $dst"
}

# node_modules holds the production dependencies of the source's package-lock.json. They are
# copied from the source when it has node_modules (offline; the closure the lock file names, dev
# packages left out), else installed with `npm ci --omit=dev` (network or npm cache). A stamp
# with the lock file's hash tells a later run that nothing is to do: the dependencies are fully
# determined by the lock file, whichever way they came.
install_node_modules() {
  local stamp="$prefix/node_modules/.berth-lock.sha256" want how
  want=$(sha256sum <"$source_dir/package-lock.json" | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return 0; fi
  rm -rf "$prefix/node_modules.new" "$prefix/.npm-staging"
  if [ -d "$source_dir/node_modules" ]; then
    how="copied from $source_dir/node_modules"
    "$node_bin" - "$source_dir" "$prefix/node_modules.new" <<'JS'
const fs = require('fs');
const path = require('path');
const [src, dst] = process.argv.slice(2);
const lock = JSON.parse(fs.readFileSync(path.join(src, 'package-lock.json'), 'utf8'));
const done = [];
fs.mkdirSync(dst);
for (const p of Object.keys(lock.packages).filter((k) => k.startsWith('node_modules/')).sort()) {
  const meta = lock.packages[p];
  if (meta.dev || done.some((d) => p.startsWith(`${d}/`))) continue;
  const from = path.join(src, p);
  if (!fs.existsSync(from)) {
    if (meta.optional) continue; // not built for this platform
    throw new Error(`${from} is missing: run npm ci in the source`);
  }
  fs.cpSync(from, path.join(dst, p.slice('node_modules/'.length)), { recursive: true, verbatimSymlinks: true });
  done.push(p);
}
JS
  else
    how="installed with npm ci --omit=dev"
    command -v npm >/dev/null || die "$source_dir has no node_modules and npm is not on PATH"
    mkdir "$prefix/.npm-staging"
    cp "$source_dir/package.json" "$source_dir/package-lock.json" "$prefix/.npm-staging/"
    # --ignore-scripts: the package's own `prepare` would try to compile the sources.
    (cd "$prefix/.npm-staging" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund)
    mv "$prefix/.npm-staging/node_modules" "$prefix/node_modules.new"
    rm -rf "$prefix/.npm-staging"
  fi
  printf '%s\n' "$want" >"$prefix/node_modules.new/.berth-lock.sha256"
  chown -R root:root "$prefix/node_modules.new"
  chmod -R u=rwX,go=rX "$prefix/node_modules.new"
  rm -rf "$prefix/node_modules"
  mv "$prefix/node_modules.new" "$prefix/node_modules"
  changed "$prefix/node_modules: $how"
}

# berth into PREFIX: the compiled program, package.json and lock file, the session image's
# files (`berth image build` reads them from PREFIX/deploy/image), the dependencies.
install_package() {
  if [ ! -f "$source_dir/dist/deploy/berth.js" ]; then
    say "building berth in $source_dir (npm ci, npm run build)"
    (cd "$source_dir" && npm ci --no-audit --no-fund && npm run build)
  fi
  ensure_dir "$prefix" 755 root:root
  ensure_dir "$prefix/dist" 755 root:root
  local part
  for part in common agent shell deploy; do sync_dir "$source_dir/dist/$part" "$prefix/dist/$part"; done
  # The build's stamp (version, commit, date: deploy/stamp-build.ts); without one, berth says
  # its commit and build date are unknown.
  if [ -f "$source_dir/dist/build-info.json" ]; then
    ensure_file "$prefix/dist/build-info.json" 644 <"$source_dir/dist/build-info.json"
  elif [ -e "$prefix/dist/build-info.json" ]; then
    rm -f "$prefix/dist/build-info.json"
    changed "removed $prefix/dist/build-info.json (the source has no stamp)"
  fi
  ensure_file "$prefix/package.json" 644 <"$source_dir/package.json"
  ensure_file "$prefix/package-lock.json" 644 <"$source_dir/package-lock.json"
  ensure_dir "$prefix/deploy" 755 root:root
  sync_dir "$source_dir/deploy/image" "$prefix/deploy/image"
  install_node_modules
  # The program, through the node found now (the services' PATH may not have it). As root,
  # `berth agent …` and `berth shell …` run as the berth user, so whatever they create in
  # /var/lib/berth stays the services' own.
  ensure_file /usr/local/bin/berth 755 <<EOF
#!/bin/sh
# berth, installed in $prefix by deploy/install-agent.sh or install-shell.sh. As root, the agent
# and shell commands run as the berth user (what they create in /var/lib/berth must stay the
# services' own).
if [ "\$(id -u)" = 0 ] && { [ "\${1-}" = agent ] || [ "\${1-}" = shell ]; }; then
  exec setpriv --reuid=berth --regid=berth --init-groups -- "$node_bin" "$prefix/dist/deploy/berth.js" "\$@"
fi
exec "$node_bin" "$prefix/dist/deploy/berth.js" "\$@"
EOF
}

# install_unit NAME: the systemd unit from the source, enabled; started with --start. Says when a
# running service has to be restarted to pick up a change.
install_unit() {
  local name=$1 before=$changes
  if [ "$with_systemd" = 0 ]; then
    say "systemd unit skipped (--no-systemd); run: berth $role serve --config /etc/berth/$role.json"
    return 0
  fi
  command -v systemctl >/dev/null || die "systemctl not found: pass --no-systemd and run berth $role serve yourself"
  ensure_file "/etc/systemd/system/$name.service" 644 <"$source_dir/deploy/systemd/$name.service"
  [ "$file_changed" = 0 ] || systemctl daemon-reload
  if ! systemctl is-enabled --quiet "$name"; then
    systemctl enable --quiet "$name"
    changed "enabled $name"
  fi
  if systemctl is-active --quiet "$name"; then
    if [ "$package_changes" -gt 0 ] || [ "$changes" -gt "$before" ]; then
      say "$name is running the old version: systemctl restart $name"
    fi
  elif [ "$start" = 1 ]; then
    systemctl start "$name"
    changed "started $name"
  else
    say "$name is not running: systemctl start $name"
  fi
  return 0
}

finish() {
  if [ "$changes" = 0 ]; then
    say "berth $role install: nothing changed"
  else
    say "berth $role install: $changes change(s)"
  fi
}
