# SDN-ICS Lab. The README's two commands: `make run`, `make test`. Run as root.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
# The venv's interpreter: the system Python by default, because Debian's `mininet` and
# `openvswitch` Python modules live in its site packages (the venv sees them through
# --system-site-packages). Override with PYTHON=/path/to/python3 (then `rm -rf .venv` first).
PYTHON ?= /usr/bin/python3
PY_MINOR := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
# Ryu 4.34 installs on Python 3.10/3.11 only (distutils): there the venv gets both engines
# (the `ryu` extra and its import hook); on 3.12+ os-ken alone (docs/platforms.md).
comma := ,
WITH_RYU := $(filter 3.10 3.11,$(PY_MINOR))
PIP_EXTRAS := test$(if $(WITH_RYU),$(comma)ryu)
# What `make run` needs (no browser). Debian names; tools/apt-install.sh maps Ubuntu's.
APT_PACKAGES := mininet openvswitch-switch nmap iputils-ping iptables ethtool tcpdump \
	iperf3 mbpoll iproute2 procps python3-venv python3-dev nftables
# What only `make test` adds: Chromium (report.html in a real browser), tshark (captures).
APT_TEST_PACKAGES := chromium tshark openssh-server openssh-client sudo
STAMP_APT := $(VENV)/.apt-stamp
STAMP_PIP := $(VENV)/.pip-stamp

.PHONY: setup apt apt-test ovs venv run test test-unit test-integration lint clean help

help:
	@echo "make setup   install system packages, start Open vSwitch, create .venv (root)"
	@echo "make run     setup, then: python -m experiments.run recon"
	@echo "make test    setup, then the whole test suite (unit + integration)"
	@echo "make test-unit  the fast tier: unit tests without the load tests (no root)"
	@echo "make clean   remove what a crashed run left behind (python -m experiments.clean)"
	@echo "make test-debian13  unit tests + recon --quick inside a Debian 13 chroot (root)"

setup: apt ovs venv

# Idempotent: apt-get runs only when a package is missing.
apt:
	@sh tools/apt-install.sh $(APT_PACKAGES)

apt-test:
	@sh tools/apt-install.sh $(APT_TEST_PACKAGES)

# No systemd here: start ovsdb-server and ovs-vswitchd by hand when they are not running.
ovs:
	@if ovs-vsctl --timeout=5 show >/dev/null 2>&1; then echo "Open vSwitch: running"; \
	else /usr/share/openvswitch/scripts/ovs-ctl start --system-id=random 2>&1 \
	  | grep -v ulimit || true; ovs-vsctl --timeout=10 show >/dev/null && echo "Open vSwitch: started"; fi

venv: $(STAMP_PIP)

$(VENV)/bin/python:
	@test -n "$(PY_MINOR)" || { echo "make setup: $(PYTHON) does not run; set PYTHON=" >&2; exit 1; }
	$(PYTHON) -m venv --system-site-packages $(VENV)
	@$(PY) -c 'import mininet.net' 2>/dev/null || echo "make setup: warning: Mininet's Python \
	module is not visible to $(PYTHON) (apt's mininet is installed for /usr/bin/python3)" >&2

$(STAMP_PIP): setup.py $(VENV)/bin/python
	$(PY) -m pip install -q -e '.[$(PIP_EXTRAS)]'
	$(if $(WITH_RYU),$(PY) -m controllers.ryu_compat --install)
	@touch $@

run: setup
	$(PY) -m experiments.run recon

test: setup apt-test
	$(PY) -m ruff check .
	$(PY) -m pytest tests --durations=20

test-unit: venv
	$(PY) -m pytest tests/unit -m "not load"

test-integration: setup apt-test
	$(PY) -m pytest tests/integration

lint: venv
	$(PY) -m ruff check .

clean:
	$(PY) -m experiments.clean

# Debian 13 (trixie, Python 3.13, os-ken) proven: debootstrap a root filesystem into
# build/debian13 (cached), run the unit tests and recon --quick inside it against this
# machine's Open vSwitch; every mount is undone on exit. Not part of `make test` (minutes).
.PHONY: test-debian13
test-debian13: apt ovs
	bash tools/debian13.sh
