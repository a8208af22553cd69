#!/usr/bin/env bash
# Rebuild the vendored editor bundles from the npm packages pinned in package.json / package-lock.json:
#   server/static/vendor/codemirror-6/{codemirror.min.js,LICENSE.txt,VERSIONS.txt}
#   server/static/vendor/mermaid-<version>/{mermaid.min.js,LICENSE.txt}
#
# Run from anywhere (needs node + npm and the npm registry, nothing else):
#   bash scripts/vendor/editors/build.sh
# It installs into a throw-away temp dir (set EDBUILD_DIR to keep/reuse one), never into the work tree.
# To upgrade: edit the versions in package.json, then refresh the lock with
#   (cd scripts/vendor/editors && npm install --package-lock-only --ignore-scripts --omit-lockfile-registry-resolved)
# and run this script; delete the old server/static/vendor/mermaid-<old version>/ and update the templates.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
VENDOR="$ROOT/server/static/vendor"
WORK="${EDBUILD_DIR:-$(mktemp -d)}"
[ -n "${EDBUILD_DIR:-}" ] || trap 'rm -rf "$WORK"' EXIT

cp "$HERE/package.json" "$HERE/codemirror-entry.js" "$WORK/"
cd "$WORK"
# esbuild's postinstall only checks its binary; the platform binary comes as an optional dependency.
if [ -f "$HERE/package-lock.json" ]; then
  cp "$HERE/package-lock.json" "$WORK/"
  npm ci --ignore-scripts --no-audit --no-fund
else
  npm install --ignore-scripts --no-audit --no-fund --omit-lockfile-registry-resolved
fi

# --- CodeMirror 6: one IIFE that sets window.FanganCM -------------------------------------------
CM="$VENDOR/codemirror-6"
mkdir -p "$CM"
npx --no-install esbuild codemirror-entry.js --bundle --minify --format=iife --target=es2020 \
  --legal-comments=none --metafile=meta.json --outfile="$CM/codemirror.min.js"

# Licences and versions of every package that ended up in the bundle (from esbuild's metafile).
node - "$CM" <<'EOF'
const fs = require("fs"), path = require("path");
const out = process.argv[2];
const meta = JSON.parse(fs.readFileSync("meta.json", "utf8"));
const pkgs = new Set();
for (const f of Object.keys(meta.inputs)) {
  const m = f.match(/node_modules\/((?:@[^/]+\/)?[^/]+)/);
  if (m) pkgs.add(m[1]);
}
const names = [...pkgs].sort();
const versions = ["CodeMirror 6 bundle (codemirror.min.js) built by scripts/vendor/editors/build.sh with esbuild "
  + require("esbuild/package.json").version + ".", "Packages bundled:", ""];
const licences = ["Licences of the npm packages bundled into codemirror.min.js.", ""];
for (const name of names) {
  const dir = path.join("node_modules", name);
  const pj = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8"));
  versions.push(`${name} ${pj.version} (${pj.license})`);
  const lic = fs.readdirSync(dir).find(f => /^(licen[sc]e|copying)/i.test(f));
  if (!lic) throw new Error(`no licence file in ${name}`);
  licences.push("=".repeat(78), `${name} ${pj.version} (${pj.license})`, "=".repeat(78),
    fs.readFileSync(path.join(dir, lic), "utf8").trim(), "");
}
fs.writeFileSync(path.join(out, "VERSIONS.txt"), versions.join("\n") + "\n");
fs.writeFileSync(path.join(out, "LICENSE.txt"), licences.join("\n"));
EOF

# --- Mermaid: the package's own IIFE build (sets globalThis.mermaid) -----------------------------
MV="$(node -p 'require("mermaid/package.json").version')"
MD="$VENDOR/mermaid-$MV"
mkdir -p "$MD"
cp node_modules/mermaid/dist/mermaid.min.js "$MD/mermaid.min.js"
{
  echo "mermaid $MV (MIT), server/static/vendor/mermaid-$MV/mermaid.min.js is the package's dist/mermaid.min.js."
  echo "The licences of the libraries bundled inside it are in the comments at the end of mermaid.min.js."
  echo
  cat node_modules/mermaid/LICENSE
  if [ -f node_modules/mermaid/THIRD_PARTY_NOTICES ]; then echo; cat node_modules/mermaid/THIRD_PARTY_NOTICES; fi
} > "$MD/LICENSE.txt"

ls -l "$CM" "$MD"
