#!/usr/bin/env bash
# Sourced by the install-*.sh scripts: `apt_install WHO WHY PACKAGE...` installs Debian packages as
# root or through passwordless sudo (-n: it never prompts, so it runs the same from Jenkins, the tests
# and a terminal), or exits 1 with a line saying why and what to run by hand. WHO names the calling
# script in messages; WHY says what needs the packages, for the case where apt-get is missing.

apt_install() {
    local who="$1" why="$2"
    shift 2
    fail() {
        echo "$who: $*" >&2
        exit 1
    }
    command -v apt-get >/dev/null 2>&1 || fail "$* not installed and apt-get is missing; $why"
    local as_root
    if [ "$(id -u)" -eq 0 ]; then
        as_root=(env)
    elif command -v sudo >/dev/null 2>&1; then
        as_root=(sudo -n env)
    else
        fail "installing $* needs root: run as root, or install sudo, or run" \
            "'apt-get install --no-install-recommends $*' as root"
    fi
    echo "$who: installing Debian's $*" >&2
    "${as_root[@]}" DEBIAN_FRONTEND=noninteractive apt-get update \
        || fail "apt-get update failed (as $(id -un)); passwordless sudo or root is needed"
    "${as_root[@]}" DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" \
        || fail "apt-get install $* failed"
}
