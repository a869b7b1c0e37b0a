#!/usr/bin/env bash
# Makes the real-world fixtures of `otel-contract usage` available (tests/test_usage.py): the Grafana
# dashboards Debian ships in `ceph-grafana-dashboards` (/etc/grafana/dashboards/ceph-dashboard) and the
# Prometheus alert rules in `ceph-prometheus-alerts` (/etc/prometheus/ceph/ceph_default_alerts.yml).
# Nobody on the team wrote them, which is the point: the parser meets dashboards as they exist.
#
# Idempotent: when both packages are installed it lists where their files are and changes nothing.
# Otherwise it installs them (Ceph 16.2 on bookworm) with apt-install.sh.
set -euo pipefail
source "$(dirname "$0")/apt-install.sh"

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

apt_install install-ceph-fixtures.sh "the usage tests need Debian's ceph dashboards" "${missing[@]}"

for package in "${PACKAGES[@]}"; do
    installed "$package" \
        || { echo "install-ceph-fixtures.sh: $package is still not installed after apt-get install" >&2; exit 1; }
done
report
