#!/usr/bin/env bash
# Sets up Mesa's lavapipe (Vulkan on the CPU) in the project folder .lavapipe/, so that the webgpu
# backend (Dawn) has an adapter on a machine without a GPU: the webgpu tests run on it.
#
# Debian 12's own Mesa (22.3) is refused by Dawn ("shaderUniform*ArrayDynamicIndexing required"),
# so this takes Mesa 25 from bookworm-backports (mesa-vulkan-drivers, libdrm2, libdrm-amdgpu1)
# and the Vulkan loader from bookworm (libvulkan1). apt runs with a private state, cache and
# sources list under .lavapipe/apt/ and only downloads; the .debs are unpacked with dpkg-deb -x.
# The system's packages and apt lists stay untouched. Needs Debian's mirror, no root.
#
# Idempotent: when .lavapipe/ is complete it downloads nothing. Prints the lines to use it from a
# shell (mixup and the tests find .lavapipe/ by themselves when VK_ICD_FILENAMES is unset):
#   eval "$(scripts/setup-lavapipe.sh)"
# Options: --force (download and unpack again), --quiet (print nothing but the export lines).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEST="$ROOT/.lavapipe"
MIRROR=${LAVAPIPE_MIRROR:-http://deb.debian.org/debian}
FORCE=0
QUIET=0
for a in "$@"; do
  case $a in
    --force) FORCE=1 ;;
    --quiet) QUIET=1 ;;
    -h | --help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "setup-lavapipe.sh: error: unknown option $a" >&2; exit 2 ;;
  esac
done
say() { [[ $QUIET == 1 ]] || echo "setup-lavapipe.sh: $*" >&2; }
# apt's own output: on stderr, or nowhere with --quiet.
log() { if [[ $QUIET == 1 ]]; then "$@" >/dev/null 2>&1; else "$@" >&2; fi; }

LIB="$DEST/root/usr/lib/x86_64-linux-gnu"
ICD="$DEST/root/usr/share/vulkan/icd.d/lvp_icd.json"
STAMP="$DEST/.complete"

exports() {
  echo "export VK_ICD_FILENAMES=$ICD"
  echo "export LD_LIBRARY_PATH=$LIB\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
}

if [[ $(uname -m) != x86_64 || ! -r /etc/debian_version ]]; then
  echo "setup-lavapipe.sh: error: needs Debian (12, bookworm) on x86_64; found $(uname -sm)" >&2
  exit 1
fi

if [[ $FORCE == 0 && -f $STAMP && -f $ICD && -e $LIB/libvulkan.so.1 ]]; then
  say "lavapipe already set up in $DEST ($(cat "$STAMP"))"
  exports
  exit 0
fi

APT="$DEST/apt"
rm -rf "$DEST/root" "$DEST/debs" "$STAMP"
mkdir -p "$APT/lists/partial" "$APT/cache/archives/partial" "$APT/sources.list.d" "$DEST/debs"
cat >"$APT/sources.list" <<EOF
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR bookworm main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR bookworm-backports main
EOF
APT_OPTS=(
  -o "Dir::State::Lists=$APT/lists"
  -o "Dir::Cache=$APT/cache"
  -o "Dir::Etc::SourceList=$APT/sources.list"
  -o "Dir::Etc::SourceParts=$APT/sources.list.d"
  -o "Dir::Etc::Preferences=/dev/null"
  -o "Dir::Etc::PreferencesParts=$APT/sources.list.d"
  -o "APT::Sandbox::User=$(id -un)"
  -o "Acquire::Languages=none"
  -o "Debug::NoLocking=1"
  -q
)
say "fetching the package lists of bookworm and bookworm-backports into $APT"
log apt-get "${APT_OPTS[@]}" update
PKGS=(mesa-vulkan-drivers/bookworm-backports libdrm2/bookworm-backports libdrm-amdgpu1/bookworm-backports libvulkan1/bookworm)
say "downloading ${PKGS[*]}"
(cd "$DEST/debs" && log apt-get "${APT_OPTS[@]}" download "${PKGS[@]}")
mkdir -p "$DEST/root"
for deb in "$DEST/debs"/*.deb; do
  dpkg-deb -x "$deb" "$DEST/root"
done
if [[ ! -f $ICD ]]; then
  echo "setup-lavapipe.sh: error: $ICD is missing after unpacking $(ls "$DEST/debs")" >&2
  exit 1
fi
# The ICD names the driver by its system path; point it at the unpacked copy.
sed -i "s#\"library_path\": *\"[^\"]*\"#\"library_path\": \"$LIB/libvulkan_lvp.so\"#" "$ICD"
# Libraries lavapipe needs that neither the system nor the unpacked packages provide.
missing=$(LD_LIBRARY_PATH="$LIB" ldd "$LIB/libvulkan_lvp.so" | awk '/not found/ {print $1}' | sort -u | tr '\n' ' ')
if [[ -n $missing ]]; then
  echo "setup-lavapipe.sh: error: lavapipe needs libraries this system lacks: $missing(install them with apt-get, e.g. libllvm15 for libLLVM-15.so.1)" >&2
  exit 1
fi
mesa=$(dpkg-deb -f "$DEST"/debs/mesa-vulkan-drivers_*.deb Version)
rm -rf "$DEST/debs" "$APT"
echo "Mesa $mesa" >"$STAMP"
say "lavapipe set up in $DEST ($(cat "$STAMP")); the system's packages are unchanged"
exports
