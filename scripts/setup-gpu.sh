#!/usr/bin/env bash
# npm run setup:gpu: installs what `npm test` needs where the machine lacks it, and nothing else.
#   - Chromium (Debian's `chromium`), for the browser tests; it ships SwiftShader, the software Vulkan
#     driver without shader-f16 (/usr/lib/chromium/vk_swiftshader_icd.json).
#   - lavapipe from Mesa 25 (bookworm-backports' mesa-vulkan-drivers), the software Vulkan driver with
#     shader-f16, unless a hardware GPU already gives Dawn an adapter. Bookworm's own Mesa 22 lavapipe
#     is refused by Dawn, so a lavapipe that Dawn refuses counts as missing.
# Runs as root as it is, or as a user through sudo. Debian bookworm only for lavapipe (skipped quietly
# elsewhere); on other systems it says what to install. Run `npm ci` first: the adapter probe uses Dawn.
set -euo pipefail
cd "$(dirname "$0")/.."

LAVAPIPE_ICD=/usr/share/vulkan/icd.d/lvp_icd.json
SWIFTSHADER_ICD=/usr/lib/chromium/vk_swiftshader_icd.json
CHROMIUM=${WEBATTN_CHROMIUM:-/usr/bin/chromium}

# 0 when Dawn finds an adapter through the Vulkan ICD json $1 ('' = the system loader). Without
# node_modules (no Dawn yet) an ICD counts as usable when its file exists.
probe() {
  if [ -f node_modules/webgpu/package.json ]; then
    node scripts/check-gpu.mjs --probe "$1" >/dev/null 2>&1
  else
    [ -n "$1" ] && [ -f "$1" ]
  fi
}

hardware_adapter=0
if [ -e /dev/nvidia0 ] || compgen -G '/dev/dri/renderD*' >/dev/null; then
  if probe ''; then hardware_adapter=1; fi
fi

need_chromium=0
if [ ! -x "$CHROMIUM" ] || { [ $hardware_adapter = 0 ] && [ ! -f "$SWIFTSHADER_ICD" ]; }; then need_chromium=1; fi
need_lavapipe=0
if [ $hardware_adapter = 0 ] && ! probe "$LAVAPIPE_ICD"; then need_lavapipe=1; fi
bookworm=0
if grep -q 'VERSION_CODENAME=bookworm' /etc/os-release 2>/dev/null; then bookworm=1; fi
if [ $need_lavapipe = 1 ] && [ $bookworm = 0 ]; then
  echo "setup:gpu: lavapipe from bookworm-backports is for Debian bookworm; skipped here"
  need_lavapipe=0
fi

if [ $need_chromium = 0 ] && [ $need_lavapipe = 0 ]; then
  what="Chromium at $CHROMIUM"
  if [ $hardware_adapter = 1 ]; then what+=", a hardware GPU"; else what+=", SwiftShader, lavapipe"; fi
  echo "setup:gpu: nothing to install ($what)"
  exit 0
fi

if ! command -v apt-get >/dev/null; then
  echo "setup:gpu: no apt-get here. Install Chromium (or set WEBATTN_CHROMIUM to a Chrome binary) and a" >&2
  echo "Vulkan driver that Dawn accepts (Mesa 25 lavapipe, or your GPU's), then run npm test." >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
  if ! command -v sudo >/dev/null; then
    echo "setup:gpu: installing packages needs root: run it as root, or install sudo" >&2
    exit 1
  fi
  SUDO="sudo"
fi

need_apt_update=1
apt_install() {
  if [ $need_apt_update = 1 ]; then $SUDO apt-get update -qq; need_apt_update=0; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@"
}

if [ $need_chromium = 1 ]; then
  echo "setup:gpu: installing chromium (the browser tests; SwiftShader)"
  apt_install chromium
fi

if [ $need_lavapipe = 1 ]; then
  # Enable bookworm-backports without naming a mirror: the URIs and Signed-By of the existing
  # debian.sources stanza, with Suites: bookworm-backports.
  src=/etc/apt/sources.list.d/debian.sources
  if [ -f "$src" ] && [ ! -f /etc/apt/sources.list.d/backports.sources ]; then
    uri=$(grep -m1 '^URIs:' "$src")
    signed=$(grep -m1 '^Signed-By:' "$src" || echo "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg")
    printf 'Types: deb\n%s\nSuites: bookworm-backports\nComponents: main\n%s\n' "$uri" "$signed" \
      | $SUDO tee /etc/apt/sources.list.d/backports.sources >/dev/null
    need_apt_update=1
  fi
  echo "setup:gpu: installing lavapipe (Mesa 25, bookworm-backports)"
  apt_install -t bookworm-backports mesa-vulkan-drivers || echo "setup:gpu: lavapipe install failed; SwiftShader only"
fi
