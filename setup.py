"""SDN-ICS Lab: security experiments on software-defined industrial networks."""

from setuptools import setup

setup(
    name="sdn-ics-lab",
    version="0.1.0",
    description="Security experiments on software-defined industrial control networks "
    "(Mininet + Open vSwitch + Ryu/os-ken + pymodbus)",
    # No upper bound: os-ken 4.2, the default engine, runs on 3.10-3.13 (docs/platforms.md).
    python_requires=">=3.10",
    packages=[
        "common",
        "topologies",
        "controllers",
        "plc",
        "attacks",
        "defenses",
        "lab",
        "reporting",
        "experiments",
        "experiments.bench",
        "dashboard",
    ],
    # The dashboard's one page (inline CSS and JS, no external asset).
    package_data={"dashboard": ["page.html"]},
    install_requires=[
        # The OpenFlow frameworks change their APIs between releases: pin one release each.
        # os-ken is the engine everywhere; Ryu is the optional extra below.
        "os-ken>=4.2,<4.3",
        # pymodbus renames API between minor releases (slave -> device in 3.10): one minor.
        "pymodbus>=3.16,<3.17",
        # The S7comm PLC and clients (plc/s7_server.py, docs/protocols.md); the server's
        # request hooks are the library's own methods, which may change between minor releases.
        "python-snap7>=3.3,<3.4",
        "scapy>=2.6,<2.9",
        "matplotlib>=3.8,<4",
        "PyYAML>=6,<7",
        "rich>=13,<16",
        # The dashboard's web server (dashboard/server.py); web.AppKey and the runner's
        # header limits are 3.9+ API, and aiohttp deprecates between minor releases: one minor.
        "aiohttp>=3.14,<3.15",
        # The lab's name server and the HMI's resolver (common/dns.py): the record classes'
        # constructors are the library's own and have changed between releases: one release.
        "dnslib==0.9.26",
        # experiments/spec.py reads TOML with tomllib (3.11+); tomli is the same parser before.
        "tomli>=2,<3; python_version<'3.11'",
    ],
    entry_points={
        # `sdn-ics-lab recon` is `python -m experiments.run recon`.
        "console_scripts": ["sdn-ics-lab=experiments.run:main"],
    },
    extras_require={
        # Ryu 4.34 (last release) imports distutils, gone in Python 3.12: it installs on 3.10
        # and 3.11 and runs there with a modern eventlet plus the import hook `python -m
        # controllers.ryu_compat --install` (make setup does both there). `pip install -e
        # '.[ryu]'`; docs/platforms.md.
        "ryu": [
            "ryu==4.34",
            "eventlet>=0.41,<0.42",
            # Never imported by the project: eventlet's green DNS resolver imports it; >=2 is
            # the combination measured working with Ryu 4.34 on 3.11 (docs/platforms.md).
            "dnspython>=2,<3",
        ],
        "test": [
            "pytest>=8,<10",
            "hypothesis>=6.100,<7",
            "ruff>=0.6,<1",
        ],
    },
)
