#!/usr/bin/env bash
# Prove the lab on Debian 13 (trixie, Python 3.13): build a trixie root filesystem with
# debootstrap (cached in build/debian13), then inside it install the project in a venv with
# Debian's Mininet and Open vSwitch tools, run the unit tests and `recon --quick` (ics topology,
# os-ken engine) against the host's running Open vSwitch daemons, and print one summary line.
#
#   sudo make test-debian13            (or: sudo tools/debian13.sh)
#
# Environment: DEBIAN13_ROOT (default <project>/build/debian13), DEBIAN13_MIRROR (default: the
# Debian mirror of this machine's apt sources), DEBIAN13_SOURCE=head|tree (the project copied
# into the chroot: the committed HEAD, default, or the working tree), DEBIAN13_REBUILD=1
# (delete and rebuild the cached root filesystem), DEBIAN13_SKIP_UNIT=1, DEBIAN13_SKIP_RECON=1.
#
# Every mount this script makes is undone on exit, failure and interrupt included (trap): each
# with `umount -R`, the root filesystem's bind onto itself last. The script removes only what it
# created (its own mounts, its copy of the project inside the chroot); it never runs `mn -c`.
# Exit status: 0 when the unit tests and the recon run pass, 1 otherwise, 3 when a
# prerequisite is missing (not root, no Open vSwitch running).
set -uo pipefail

PROJECT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROOT=${DEBIAN13_ROOT:-$PROJECT/build/debian13}
SOURCE=${DEBIAN13_SOURCE:-head}
SUITE=trixie
# Inside the chroot: where the project copy and the cached venv live.
APP=/opt/sdn-ics-lab
VENV=/opt/sdnics-venv
# Bridges and the run lock of this run are named apart from the host's (lab/lifecycle.py).
SWITCH_PREFIX=${DEBIAN13_SWITCH_PREFIX:-d13}
# What `recon --quick` and the unit tests need (the Makefile's APT_PACKAGES without the browser
# and the tools only other experiments use), plus Debian's ovs Python module for os-ken.
PACKAGES=python3,python3-venv,python3-openvswitch,mininet,openvswitch-switch,nmap,iproute2
PACKAGES+=,iputils-ping,ethtool,procps,tcpdump,iptables,nftables,ca-certificates
LOCK_RETRIES=${DEBIAN13_LOCK_RETRIES:-20}
LOCK_WAIT_S=30

MOUNTED=()   # mount points this script made, in mount order
CHROOT_CA=

say() { printf 'debian13: %s\n' "$*" >&2; }

cleanup() {
    local status=$? i
    trap - EXIT INT TERM
    for ((i = ${#MOUNTED[@]} - 1; i >= 0; i--)); do
        if mountpoint -q "${MOUNTED[i]}"; then
            umount -R "${MOUNTED[i]}" 2>/dev/null || umount -R -l "${MOUNTED[i]}" \
                || say "could not unmount ${MOUNTED[i]}"
        fi
    done
    MOUNTED=()
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

bind() {  # bind SRC DST [--rbind]: mount and remember it
    local src=$1 dst=$2 how=${3:---bind}
    mkdir -p "$dst"
    mount "$how" "$src" "$dst" || { say "mount $how $src $dst failed"; exit 1; }
    MOUNTED+=("$dst")
}

mirror() {  # the Debian mirror of this machine's apt sources (deb822 or one-line format)
    if [[ -n ${DEBIAN13_MIRROR:-} ]]; then echo "$DEBIAN13_MIRROR"; return; fi
    local uri
    uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
              /etc/apt/sources.list.d/*.sources 2>/dev/null \
          | grep -oE '(URIs:[[:space:]]*|^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?)https?://[^[:space:]]+' \
          | grep -oE 'https?://[^[:space:]]+' | grep -E '/debian/?$' | head -n 1)
    echo "${uri:-http://deb.debian.org/debian}"
}

in_chroot() {  # run a bash command inside Debian 13 with a clean environment
    # Not a plain chroot: Mininet starts every process in a host with `mnexec -a PID`, which
    # enters the host's mount namespace, and entering a mount namespace resets the root
    # directory to that namespace's root: the host machine's /, not the chroot (measured:
    # "mnexec: /opt/sdn-ics-lab: No such file or directory"). So the command runs in its own
    # mount namespace whose root IS the Debian 13 tree (pivot_root, as containers do); the
    # hosts' namespaces Mininet creates inside it inherit that root. The namespace, and the
    # mounts copied into it, end with the command.
    unshare --mount --propagation private -- /bin/sh -c \
        'cd "$1" && shift && mkdir -p .sdnics-oldroot && pivot_root . .sdnics-oldroot \
         && umount -l /.sdnics-oldroot && exec chroot . "$@"' sh "$ROOT" \
        /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        SDNICS_SWITCH_PREFIX="$SWITCH_PREFIX" PIP_DISABLE_PIP_VERSION_CHECK=1 \
        ${CHROOT_CA:+PIP_CERT=$CHROOT_CA} \
        /bin/bash -c "cd / && $1"
}

if [[ $(id -u) != 0 ]]; then say "run as root (sudo make test-debian13)"; exit 3; fi
if ! ovs-vsctl --timeout=5 show >/dev/null 2>&1; then
    say "Open vSwitch is not running on the host; run: sudo make ovs"; exit 3
fi
if [[ $SOURCE != head && $SOURCE != tree ]]; then
    say "DEBIAN13_SOURCE must be head or tree, not $SOURCE"; exit 2
fi

# 1. The root filesystem, cached: rebuilt only when missing (or DEBIAN13_REBUILD=1). A build
#    that did not finish leaves no marker and is redone.
MARKER=$ROOT/.sdnics-debian13-ready
if [[ ${DEBIAN13_REBUILD:-0} == 1 && -d $ROOT ]]; then
    if grep -qs " $ROOT[/ ]" /proc/mounts; then say "$ROOT has mounts; not deleting"; exit 1; fi
    rm -rf --one-file-system "$ROOT"
fi
if [[ ! -e $MARKER ]]; then
    command -v debootstrap >/dev/null || {
        say "installing debootstrap"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null || exit 3
    }
    MIRROR=$(mirror)
    say "building Debian 13 ($SUITE) in $ROOT from $MIRROR"
    t0=$SECONDS
    mkdir -p "$ROOT"
    if ! debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$ROOT" "$MIRROR" \
            >"$PROJECT/build/debian13-debootstrap.log" 2>&1; then
        say "debootstrap failed; see build/debian13-debootstrap.log"; exit 1
    fi
    # Services never start inside the chroot: ovs-vsctl talks to the host's daemons.
    printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
    chmod 755 "$ROOT/usr/sbin/policy-rc.d"
    echo "$((SECONDS - t0))" >"$MARKER"
    say "root filesystem built in $((SECONDS - t0)) s ($(du -sh --one-file-system "$ROOT" | cut -f1))"
else
    say "root filesystem cached in $ROOT (built in $(cat "$MARKER") s)"
fi

# 2. Mounts: the root onto itself first (mnexec remounts / in each host's namespace, which
#    fails unless the chroot's / is a mount point), then the host's /proc /sys /dev /run.
#    /run carries Open vSwitch's sockets and the lab's run state and lock.
bind "$ROOT" "$ROOT"
mount --make-rslave "$ROOT"
for dir in proc sys dev run; do
    bind "/$dir" "$ROOT/$dir" --rbind
    mount --make-rslave "$ROOT/$dir"
done
cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null || true
# pip inside reaches PyPI the way the host does: with the host's CA bundle (a TLS-inspecting
# proxy's CA lives there on some networks, and the chroot's own bundle lacks it).
HOST_CA=${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}
CHROOT_CA=/etc/ssl/sdnics-host-ca.crt
if [[ -r $HOST_CA ]]; then cp -L "$HOST_CA" "$ROOT$CHROOT_CA"; else CHROOT_CA=; fi

# 3. The project, copied in afresh (the committed HEAD by default); the venv is cached.
rm -rf --one-file-system "${ROOT:?}$APP"
mkdir -p "$ROOT$APP"
if [[ $SOURCE == head ]]; then
    git -C "$PROJECT" archive --format=tar HEAD | tar -x -C "$ROOT$APP" || exit 1
    say "project: HEAD $(git -C "$PROJECT" rev-parse --short HEAD)"
else
    tar -C "$PROJECT" --exclude=./.venv --exclude=./build --exclude=./results \
        --exclude=./.git --exclude='*.egg-info' --exclude=__pycache__ -cf - . \
        | tar -x -C "$ROOT$APP" || exit 1
    say "project: working tree of $PROJECT"
fi
t0=$SECONDS
if ! in_chroot "set -e; [ -x $VENV/bin/python ] || python3 -m venv --system-site-packages $VENV
        cd $APP && $VENV/bin/python -m pip install -q -e '.[test]'"; then
    say "pip install -e . failed inside Debian 13"; exit 1
fi
say "venv ready in $((SECONDS - t0)) s: $(in_chroot "$VENV/bin/python -c \
'import sys, mininet.net, os_ken; print(sys.version.split()[0], \"mininet\", \
mininet.net.VERSION, \"os-ken ok\")'")"

status=0
# 4. Unit tests.
if [[ ${DEBIAN13_SKIP_UNIT:-0} != 1 ]]; then
    t0=$SECONDS
    in_chroot "cd $APP && $VENV/bin/python -m pytest tests/unit -q -p no:cacheprovider" \
        | tee "$PROJECT/build/debian13-unit.log" | tail -n 15
    unit_rc=${PIPESTATUS[0]}
    unit_line=$(grep -E '(passed|failed|error)' "$PROJECT/build/debian13-unit.log" | tail -n 1)
    say "unit tests: ${unit_line:-no summary} ($((SECONDS - t0)) s)"
    [[ $unit_rc == 0 ]] || status=1
fi

# 5. recon --quick on the ics topology, os-ken engine, against the host's OVS daemons. Another
#    run holding the same lock (only another run with this switch prefix) means: wait, retry.
if [[ ${DEBIAN13_SKIP_RECON:-0} != 1 ]]; then
    t0=$SECONDS
    for ((attempt = 1; ; attempt++)); do
        in_chroot "cd $APP && $VENV/bin/python -m experiments.run recon --quick \
            --topo ics --engine os-ken" 2>&1 | tee "$PROJECT/build/debian13-recon.log"
        recon_rc=${PIPESTATUS[0]}
        if [[ $recon_rc == 2 ]] && grep -q "another run is active" \
                "$PROJECT/build/debian13-recon.log" && ((attempt < LOCK_RETRIES)); then
            say "another run holds the lock; retrying in $LOCK_WAIT_S s"
            sleep "$LOCK_WAIT_S"
            continue
        fi
        break
    done
    summary=$(in_chroot "cd $APP && $VENV/bin/python tools/bundle_summary.py results/latest")
    say "recon --quick (ics, os-ken): exit $recon_rc in $((SECONDS - t0)) s; $summary"
    [[ $recon_rc == 0 ]] || status=1
fi
say "$( ((status == 0)) && echo PASSED || echo FAILED )"
exit "$status"
