#!/usr/bin/env bash
# One idempotent set-up for mhlab, used by `make demo`, `make test`, .ci/run and the Vagrantfile.
# - Debian packages (only when one is missing), with service starts blocked during install, and the
#   host-wide FRR / i2pd / PowerDNS services disabled where systemd runs: the lab starts its own daemons.
# - A virtualenv in .venv built on /usr/bin/python3 with system site packages (Debian's mininet lives there),
#   and mhlab installed into it (only when pyproject.toml changed).  A second run takes about a second.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(mininet frr bridge-utils nftables iproute2 iputils-ping curl iperf3 tcpdump tshark
          python3-venv python3-pip radvd nsd babeld net-tools procps i2pd clang libbpf-dev
          graphviz chromium chromium-driver traceroute mtr-tiny iputils-tracepath tmux
          pdns-server pdns-backend-bind knot-dnsutils bind9-dnsutils openssh-server openssh-client)

if [ "$(id -u)" -ne 0 ]; then
  echo "setup: run as root (sudo make …): installing packages and building namespaces need it" >&2
  exit 1
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  # never let a package start a host-wide daemon (FRR on the host, a public I2P router...)
  policy=/usr/sbin/policy-rc.d
  created_policy=0
  if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; created_policy=1; fi
  trap '[ "$created_policy" = 1 ] && rm -f "$policy"' EXIT
  export DEBIAN_FRONTEND=noninteractive
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
if [ -d /run/systemd/system ]; then
  for svc in frr i2pd radvd nsd babeld pdns; do
    systemctl list-unit-files "$svc.service" >/dev/null 2>&1 && systemctl disable --now "$svc" >/dev/null 2>&1 || true
    systemctl mask "$svc" >/dev/null 2>&1 || true
  done
fi

# FRR major version the lab is tested with
frr_version=$(/usr/lib/frr/zebra --version | sed -n 's/.*version \([0-9][0-9.]*\).*/\1/p' | head -1)
case "$frr_version" in
  8.*) ;;
  *) echo "setup: warning: FRR $frr_version is untested (tested: 8.x)" >&2 ;;
esac

stamp=.venv/.mhlab-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: building the virtualenv .venv"
  /usr/bin/python3 -m venv --system-site-packages .venv
  log=$(mktemp)
  if ! { .venv/bin/pip install -q --disable-pip-version-check --upgrade pip &&
         .venv/bin/pip install -q --disable-pip-version-check -e .; } >"$log" 2>&1; then
    cat "$log" >&2; echo "setup: pip install failed (log above)" >&2; exit 1
  fi
  rm -f "$log"
  echo "$want" > "$stamp"
fi
.venv/bin/python -c "import mininet.net, testbed" || { echo "setup: the virtualenv cannot import mininet/testbed" >&2; exit 1; }
echo "setup: ready (FRR $frr_version, $(.venv/bin/python --version))"
