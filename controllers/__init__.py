"""OpenFlow controller apps, their pure cores, and the launcher (``python -m controllers``).

Only :mod:`controllers.engine` imports Ryu or os-ken; importing this package (or any pure core
such as :mod:`controllers.learning`) never loads an OpenFlow framework or eventlet.
"""
