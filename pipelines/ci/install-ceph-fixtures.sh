#!/usr/bin/env bash
# Makes the real-world fixtures of `otel-contract usage` available (tests/test_usage.py): the Grafana
# dashboards Debian ships in `ceph-grafana-dashboards` (/etc/grafana/dashboards/ceph-dashboard) and the
# Prometheus alert rules in `ceph-prometheus-alerts` (/etc/prometheus/ceph/ceph_default_alerts.yml).
# Nobody on the team wrote them, which is the point: the parser meets dashboards as they exist.
#
# Idempotent: when both packages are installed it lists where their files are and changes nothing.
# Otherwise it installs them (Ceph 16.2 on bookworm), as root or through passwordless sudo; it never
# prompts, so it runs the same from Jenkins, the tests and a terminal.
set -euo pipefail

PACKAGES=(ceph-grafana-dashboards ceph-prometheus-alerts)

installed() {
    dpkg-query -W -f='${Status}\n' "$1" 2>/dev/null | grep -q '^install ok installed$'
}

report() {
    for package in "${PACKAGES[@]}"; do
        echo "$package $(dpkg-query -W -f='${Version}' "$package")"
    done
}

missing=()
for package in "${PACKAGES[@]}"; do
    installed "$package" || missing+=("$package")
done
if [ "${#missing[@]}" -eq 0 ]; then
    report
    exit 0
fi

fail() {
    echo "install-ceph-fixtures.sh: $*" >&2
    exit 1
}

command -v apt-get >/dev/null 2>&1 \
    || fail "${missing[*]} not installed and apt-get is missing; the usage tests need Debian's ceph dashboards"

if [ "$(id -u)" -eq 0 ]; then
    as_root() { "$@"; }
elif command -v sudo >/dev/null 2>&1; then
    # -n: fail instead of asking for a password, since there may be no terminal to ask on.
    as_root() { sudo -n "$@"; }
else
    fail "installing ${missing[*]} needs root: run as root, or install sudo, or run" \
        "'apt-get install --no-install-recommends ${missing[*]}' as root"
fi

echo "install-ceph-fixtures.sh: installing Debian's ${missing[*]}" >&2
as_root env DEBIAN_FRONTEND=noninteractive apt-get update \
    || fail "apt-get update failed (as $(id -un)); passwordless sudo or root is needed"
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" \
    || fail "apt-get install ${missing[*]} failed"

for package in "${PACKAGES[@]}"; do
    installed "$package" || fail "$package is still not installed after apt-get install"
done
report
