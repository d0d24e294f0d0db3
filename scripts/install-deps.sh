#!/usr/bin/env bash
# Installs the Debian 12 packages Vigil builds and tests with. Idempotent: when every
# package is already installed it only checks and returns, in well under a second.
# Run as root or through sudo.
set -euo pipefail

packages=(
  cmake ninja-build g++ clang libclang-rt-14-dev pkg-config git ca-certificates curl
  dpdk-dev libdpdk-dev libhyperscan-dev libtbb-dev libabsl-dev
  libflatbuffers-dev flatbuffers-compiler libjemalloc-dev
  libbenchmark-dev libgtest-dev libgmock-dev
  libsqlite3-dev nlohmann-json3-dev libcpp-httplib-dev
  libspdlog-dev libfmt-dev libyaml-cpp-dev libpcap-dev libssl-dev
  libsimdjson-dev libcli11-dev iproute2 openssl python3
  # Headless browser and WebDriver server for the web console's browser test.
  chromium chromium-driver
)

missing=()
for pkg in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "install-deps: run as root or install sudo" >&2; exit 1; }
  sudo_cmd=(sudo)
fi

echo "install-deps: installing ${#missing[@]} packages: ${missing[*]}"
"${sudo_cmd[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends \
  "${missing[@]}"
