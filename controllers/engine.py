"""The one module that imports an OpenFlow framework: Ryu 4.34 or os-ken 4.2.

Apps import framework names from here (``from controllers import engine`` then
``engine.AppBase``, ``engine.set_ev_cls``...) so the same app runs on either engine.

Selection, at import time: ``SDNICS_ENGINE`` (``ryu`` or ``os-ken``) when set; otherwise the
engine already loaded in this process (``ryu-manager`` has imported Ryu before our app);
otherwise Ryu if it imports, else os-ken. A forced engine that does not import raises
:class:`EngineError` (an ``ImportError``) naming it.

Ryu 4.34 needs ``eventlet.wsgi.ALREADY_HANDLED`` defined before it is imported on Python 3.11
(see :mod:`controllers.ryu_compat`); this module applies that first. os-ken 4.2 on native
threads never reports a switch disconnecting; this module patches that (see
:func:`_fix_osken_native_disconnect`). Importing this module does
not monkey-patch anything: a controller process calls :func:`prepare_process` once, before it
loads apps (Ryu runs on eventlet green threads; os-ken 4.2 uses native threads).
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import importlib.util
import os
import sys
import warnings
from types import ModuleType
from typing import Any

from common.engines import RYU_INSTALL_HINT
from controllers.ryu_compat import apply_eventlet_fix

ENV_VAR = "SDNICS_ENGINE"
ENGINES = ("ryu", "os-ken")
_PACKAGE = {"ryu": "ryu", "os-ken": "os_ken"}
_DISTRIBUTION = {"ryu": "ryu", "os-ken": "os-ken"}


class EngineError(ImportError):
    """The requested OpenFlow engine is unknown or cannot be imported."""


def _quiet_eventlet_import() -> None:
    # eventlet >= 0.36 warns loudly at import that it is deprecated; that text would land in
    # every controller log and says nothing about the experiment.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
        import eventlet  # noqa: F401


def _import_engine(name: str) -> dict[str, Any]:
    """Import engine ``name``; returns the names apps use. Raises ImportError on failure."""
    pkg = _PACKAGE[name]
    if name == "ryu":
        _quiet_eventlet_import()
        apply_eventlet_fix()

    def mod(path: str) -> ModuleType:
        return importlib.import_module(f"{pkg}.{path}")

    app_manager = mod("base.app_manager")
    handler = mod("controller.handler")
    # Importing controller.controller registers the ofp-listen-* options on CONF.
    controller = mod("controller.controller")
    names: dict[str, Any] = {
        "app_manager": app_manager,
        "AppManager": app_manager.AppManager,
        "AppBase": app_manager.RyuApp if name == "ryu" else app_manager.OSKenApp,
        "set_ev_cls": handler.set_ev_cls,
        "MAIN_DISPATCHER": handler.MAIN_DISPATCHER,
        "CONFIG_DISPATCHER": handler.CONFIG_DISPATCHER,
        "DEAD_DISPATCHER": handler.DEAD_DISPATCHER,
        "HANDSHAKE_DISPATCHER": handler.HANDSHAKE_DISPATCHER,
        "ofp_event": mod("controller.ofp_event"),
        "ofproto_v1_3": mod("ofproto.ofproto_v1_3"),
        "ofproto_v1_3_parser": mod("ofproto.ofproto_v1_3_parser"),
        "hub": mod("lib.hub"),
        "dpid_lib": mod("lib.dpid"),
        "CONF": mod("cfg").CONF,
        "controller_module": controller,
    }
    if name == "os-ken":
        _fix_osken_native_disconnect(controller, names["hub"])
    for proto in ("packet", "ethernet", "arp", "ipv4", "ipv6", "icmp", "tcp", "udp", "vlan",
                  "lldp", "ether_types", "in_proto"):
        names[proto] = mod(f"lib.packet.{proto}")
    return names


def _fix_osken_native_disconnect(controller: ModuleType, hub_module: ModuleType) -> None:
    """Make os-ken 4.2 on native threads notice a switch disconnecting; idempotent.

    Measured: when a switch closes its connection, ``Datapath.serve`` calls ``hub.kill`` on
    the send thread (a no-op for native threads) and joins it while it blocks forever on an
    empty queue, so the datapath never goes DEAD: no disconnect event, one stuck thread per
    connection. Queueing a close request once the receive loop ends lets the send thread exit
    the way it does on a controller-initiated close.
    """
    if getattr(hub_module, "HUB_TYPE", "native") != "native":
        return
    datapath_cls = controller.Datapath
    original = datapath_cls._recv_loop
    if getattr(original, "_sdnics_wakes_sender", False):
        return

    @functools.wraps(original)
    def recv_loop(self: Any) -> Any:
        try:
            return original(self)
        finally:
            self.send(b"", close_socket=True)

    recv_loop._sdnics_wakes_sender = True  # type: ignore[attr-defined]
    datapath_cls._recv_loop = recv_loop


def _choose() -> tuple[str, dict[str, Any]]:
    forced = os.environ.get(ENV_VAR, "").strip().lower()
    if forced:
        if forced not in ENGINES:
            raise EngineError(f"{ENV_VAR}={forced!r}: unknown engine (choose ryu or os-ken)")
        if forced == "ryu" and importlib.util.find_spec("ryu") is None:
            raise EngineError(f"engine ryu is not installed; {RYU_INSTALL_HINT}")
        try:
            return forced, _import_engine(forced)
        except ImportError as exc:
            raise EngineError(f"engine {forced} is not importable: {exc}") from exc
    if "os_ken.base.app_manager" in sys.modules and "ryu.base.app_manager" not in sys.modules:
        return "os-ken", _import_engine("os-ken")
    try:
        return "ryu", _import_engine("ryu")
    except ImportError as ryu_exc:
        try:
            return "os-ken", _import_engine("os-ken")
        except ImportError as osken_exc:
            raise EngineError(
                f"no OpenFlow engine importable (ryu: {ryu_exc}; os-ken: {osken_exc})"
            ) from osken_exc


ENGINE_NAME, _names = _choose()
ENGINE_VERSION: str = importlib.metadata.version(_DISTRIBUTION[ENGINE_NAME])

app_manager: ModuleType = _names["app_manager"]
AppManager: type = _names["AppManager"]
AppBase: type = _names["AppBase"]
"""The app base class (``RyuApp`` or ``OSKenApp``)."""
set_ev_cls = _names["set_ev_cls"]
MAIN_DISPATCHER: str = _names["MAIN_DISPATCHER"]
CONFIG_DISPATCHER: str = _names["CONFIG_DISPATCHER"]
DEAD_DISPATCHER: str = _names["DEAD_DISPATCHER"]
HANDSHAKE_DISPATCHER: str = _names["HANDSHAKE_DISPATCHER"]
ofp_event: ModuleType = _names["ofp_event"]
ofproto_v1_3: ModuleType = _names["ofproto_v1_3"]
ofproto_v1_3_parser: ModuleType = _names["ofproto_v1_3_parser"]
hub: ModuleType = _names["hub"]
dpid_lib: ModuleType = _names["dpid_lib"]
CONF: Any = _names["CONF"]
"""The engine's oslo.config object (ofp_listen_host, ofp_tcp_listen_port...)."""
packet: ModuleType = _names["packet"]
ethernet: ModuleType = _names["ethernet"]
arp: ModuleType = _names["arp"]
ipv4: ModuleType = _names["ipv4"]
ipv6: ModuleType = _names["ipv6"]
icmp: ModuleType = _names["icmp"]
tcp: ModuleType = _names["tcp"]
udp: ModuleType = _names["udp"]
vlan: ModuleType = _names["vlan"]
lldp: ModuleType = _names["lldp"]
ether_types: ModuleType = _names["ether_types"]
in_proto: ModuleType = _names["in_proto"]
del _names

_prepared = False


def prepare_process() -> None:
    """Set up the threading model of a controller process; call once, before loading apps.

    Ryu: eventlet monkey-patching, as ``ryu-manager`` does. os-ken 4.2: nothing (native
    threads). Idempotent.
    """
    global _prepared
    if _prepared:
        return
    hub.patch(thread=True)
    _prepared = True


def configure_listener(host: str, port: int) -> None:
    """Make the engine's OpenFlow server listen on ``host``:``port`` (TCP, no TLS).

    Parses an empty command line into the engine's CONF (apps see defaults for every other
    option) then overrides the listen options. Setting an explicit port also stops Ryu from
    opening the legacy port 6633 as well.
    """
    CONF(args=[], project=_PACKAGE[ENGINE_NAME], default_config_files=[])
    CONF.set_override("ofp_listen_host", host)
    CONF.set_override("ofp_tcp_listen_port", port)


def describe() -> str:
    """``<name> <version>``, for logs and manifests."""
    return f"{ENGINE_NAME} {ENGINE_VERSION}"
