#!/usr/bin/env bash
# Install the Debian packages Fangan needs when they are missing.
#   scripts/system-deps.sh run   -> a CJK font, libharfbuzz-subset0 (fast PDF font subsetting) and Pango
#                                   (WeasyPrint's text layout)
#   scripts/system-deps.sh test  -> the above plus chromium (browser tests), poppler-utils (pdffonts)
#                                   PostgreSQL 15 server binaries (throwaway test cluster) and libatomic1
#                                   (Playwright's node driver needs it; a minimal Debian lacks it)
#                                   and redis-server (the multi-host test; the test starts its own)
set -euo pipefail
want=(fonts-wqy-microhei libharfbuzz-subset0 libpango-1.0-0 libpangoft2-1.0-0)
if [ "${1:-run}" = "test" ]; then
  want+=(chromium poppler-utils postgresql-15 libatomic1 redis-server)
fi
missing=()
for pkg in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
# Any CJK font will do for the font requirement.
if printf '%s\n' "${missing[@]:-}" | grep -qx fonts-wqy-microhei && fc-list :lang=zh 2>/dev/null | grep -q .; then
  missing=("${missing[@]/fonts-wqy-microhei}")
fi
missing=($(printf '%s\n' "${missing[@]:-}" | grep -v '^$' || true))
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "Fangan needs these Debian packages: ${missing[*]}" >&2
  echo "Install them as root:  apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "Installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
