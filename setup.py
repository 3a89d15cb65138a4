"""SDN-ICS Lab: security experiments on software-defined industrial networks."""

from setuptools import setup

setup(
    name="sdn-ics-lab",
    version="0.1.0",
    description="Security experiments on software-defined industrial control networks "
    "(Mininet + Open vSwitch + Ryu/os-ken + pymodbus)",
    python_requires=">=3.11,<3.12",
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
    ],
    install_requires=[
        # The OpenFlow frameworks change their APIs between releases: pin one release each.
        "ryu==4.34",
        "os-ken>=4.2,<4.3",
        # Ryu 4.34 runs on Python 3.11 only with a modern eventlet (see controllers/engine.py).
        "eventlet>=0.41,<0.42",
        "dnspython>=2,<3",
        # pymodbus renames API between minor releases (slave -> device in 3.10): one minor.
        "pymodbus>=3.16,<3.17",
        "python-nmap>=0.7.1,<0.8",
        "scapy>=2.6,<2.9",
        "matplotlib>=3.8,<4",
        "PyYAML>=6,<7",
        "rich>=13,<16",
    ],
    extras_require={
        "test": [
            "pytest>=8,<10",
            "hypothesis>=6.100,<7",
            "ruff>=0.6,<1",
        ],
    },
)
