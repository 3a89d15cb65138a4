#!/bin/sh
# Install the Debian packages named as arguments that are missing (as root); nothing when all
# are present. Used by `make setup` (what `make run` needs) and `make test` (what only the tests
# add: a browser, tshark).
#
# Ubuntu names one package differently: `chromium` is `chromium-browser` there (a deb that
# installs the Chromium snap, which needs snapd). A package that this machine's apt sources do
# not offer stops the install with one line naming it (exit 1); nothing is installed then.
set -eu
if [ "$(id -u)" != 0 ]; then
	echo "make setup: run as root (sudo make setup)" >&2
	exit 1
fi
distro=$(. /etc/os-release 2>/dev/null && echo "${ID:-} ${ID_LIKE:-}")
names=""
for p in "$@"; do
	case " $distro " in
	*" ubuntu "*) [ "$p" = chromium ] && p=chromium-browser ;;
	esac
	names="$names $p"
done
missing=""
for p in $names; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -z "$missing" ]; then
	echo "system packages present:$names"
	exit 0
fi
apt-get update -qq
for p in $missing; do
	candidate=$(apt-cache policy "$p" 2>/dev/null | sed -n 's/^ *Candidate: *//p')
	if [ -z "$candidate" ] || [ "$candidate" = "(none)" ]; then
		hint=""
		case " $distro " in *" ubuntu "*) hint=" (on Ubuntu: enable the universe component)" ;; esac
		echo "make setup: package $p is not available from this machine's apt sources$hint" >&2
		exit 1
	fi
done
echo "installing:$missing"
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
