"""OpenFlow controller apps, their pure cores, and the launcher (``python -m controllers``).

Only :mod:`controllers.engine` imports Ryu or os-ken; importing this package (or any pure core
such as :mod:`controllers.l2_switch_core`) never loads an OpenFlow framework or eventlet.

Layout: each app is a pair, ``<name>_core.py`` (pure: takes the time, returns
:mod:`controllers.flowspec` data) and ``<name>.py`` (a thin subclass of
:class:`controllers.app.CoreApp`, the one adapter), plus ``<name>_options.py`` when the app has
command-line options. Below the cores: :mod:`controllers.packets` (frame parsing),
:mod:`controllers.pipeline` (flow priorities and cookies), :mod:`controllers.flowspec`.
"""
