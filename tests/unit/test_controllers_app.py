"""The thin app layer: ryu_compat hook, fail-loudly handlers, spec-to-OpenFlow translation."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from controllers import ryu_compat
from controllers.flowspec import (
    NO_BUFFER,
    PORT_FLOOD,
    FlowDelete,
    FlowMatch,
    FlowSpec,
    Output,
    PacketOut,
    SetField,
)
from controllers.handlers import HANDLER_EXCEPTION_MARKER, fail_loudly
from controllers.pipeline import LEARNED_COOKIE
from tests.support.engines import needs_ryu


# --- ryu_compat ------------------------------------------------------------------------------
def test_install_is_idempotent_and_uninstall_removes(tmp_path: Path) -> None:
    path, changed = ryu_compat.install(tmp_path)
    assert changed and path.name == ryu_compat.PTH_NAME
    assert ryu_compat.install(tmp_path) == (path, False)
    assert len(path.read_text().splitlines()) == 1
    assert ryu_compat.uninstall(tmp_path) == (path, True)
    assert not path.exists()
    assert ryu_compat.uninstall(tmp_path) == (path, False)


def test_cli_install_uninstall(tmp_path: Path) -> None:
    assert ryu_compat.main(["--install", "--site-packages", str(tmp_path)]) == 0
    assert (tmp_path / ryu_compat.PTH_NAME).exists()
    assert ryu_compat.main(["--uninstall", "--site-packages", str(tmp_path)]) == 0
    assert not (tmp_path / ryu_compat.PTH_NAME).exists()
    assert ryu_compat.main(["--install", "--site-packages", str(tmp_path / "nope")]) == 2


@needs_ryu
def test_hook_is_lazy_and_lets_ryu_wsgi_import(tmp_path: Path) -> None:
    ryu_compat.install(tmp_path)
    # Run with -S so only the .pth under test is processed (the venv may hold one too), and
    # put the library directories on sys.path by hand (plain appends run no .pth files).
    libs = [p for p in sys.path if p.endswith(("site-packages", "dist-packages"))]
    probe = (
        "import site, sys\n"
        f"sys.path.extend({libs!r})\n"
        f"site.addsitedir({str(tmp_path)!r})\n"
        "assert 'eventlet' not in sys.modules, 'hook must not import eventlet at start-up'\n"
        "import warnings; warnings.simplefilter('ignore')\n"
        "import eventlet.wsgi\n"
        "assert eventlet.wsgi.ALREADY_HANDLED is not None\n"
        "import ryu.app.wsgi\n"
        "print('ok')\n"
    )
    proc = subprocess.run([sys.executable, "-S", "-c", probe], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_without_hook_ryu_wsgi_does_not_import() -> None:
    """Guards the premise: if eventlet ever restores ALREADY_HANDLED, the hook can go."""
    libs = [p for p in sys.path if p.endswith(("site-packages", "dist-packages"))]
    probe = (
        "import sys, warnings; warnings.simplefilter('ignore')\n"
        f"sys.path.extend({libs!r})\n"
        "import eventlet.wsgi\n"
        "print(hasattr(eventlet.wsgi, 'ALREADY_HANDLED'))\n"
    )
    proc = subprocess.run([sys.executable, "-S", "-c", probe], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


# --- fail_loudly -----------------------------------------------------------------------------
class _App:
    def __init__(self) -> None:
        self.logger = logging.getLogger("test.app")
        self.handler_exceptions = 0

    @fail_loudly
    def on_event(self, ev: Any) -> str:
        if ev.msg.data == b"boom":
            raise KeyError("boom")
        return "handled"


def test_handler_exception_is_logged_with_marker_and_counted(
        caplog: pytest.LogCaptureFixture) -> None:
    app = _App()
    ev = SimpleNamespace(msg=SimpleNamespace(data=b"boom", datapath=SimpleNamespace(id=3)))
    with caplog.at_level(logging.ERROR):
        assert app.on_event(ev) is None
    assert app.handler_exceptions == 1
    (record,) = caplog.records
    assert HANDLER_EXCEPTION_MARKER in record.getMessage()
    assert "dpid=0000000000000003" in record.getMessage()
    assert "Traceback" in caplog.text and "KeyError" in caplog.text
    ok = SimpleNamespace(msg=SimpleNamespace(data=b"", datapath=SimpleNamespace(id=3)))
    assert app.on_event(ok) == "handled"
    assert app.handler_exceptions == 1


# --- the app and ofmsg against a fake datapath (real parser classes) -------------------------
@pytest.fixture(scope="module")
def engine() -> Any:
    from controllers import engine as eng

    return eng


class FakeDatapath:
    def __init__(self, engine: Any, dpid: int = 1) -> None:
        self.id = dpid
        self.ofproto = engine.ofproto_v1_3
        self.ofproto_parser = engine.ofproto_v1_3_parser
        self.sent: list[Any] = []

    def send_msg(self, msg: Any) -> None:
        msg.serialize()  # what the engine does before writing: catches malformed messages
        self.sent.append(msg)


def test_engine_exports(engine: Any) -> None:
    assert engine.ENGINE_NAME in ("ryu", "os-ken")
    assert engine.ENGINE_VERSION
    for name in ("AppBase", "set_ev_cls", "ofp_event", "MAIN_DISPATCHER", "CONFIG_DISPATCHER",
                 "DEAD_DISPATCHER", "ofproto_v1_3", "packet", "ethernet", "arp", "ipv4", "hub"):
        assert getattr(engine, name) is not None


def test_flow_specs_serialise(engine: Any) -> None:
    from controllers import ofmsg

    ofmsg.check_constants(engine.ofproto_v1_3)
    dp = FakeDatapath(engine)
    spec = FlowSpec(dpid=1, priority=10,
                    match=FlowMatch(in_port=1, eth_src="02:00:00:00:00:01",
                                    eth_dst="02:00:00:00:00:02"),
                    actions=(Output(2),), idle_timeout_s=30, cookie=LEARNED_COOKIE)
    dp.send_msg(ofmsg.flow_add(dp, spec))
    rewrite = FlowSpec(dpid=1, priority=20, match=FlowMatch(eth_type=0x0800, ipv4_dst="10.0.0.9"),
                       actions=(SetField("ipv4_dst", "10.0.0.21"), Output(3)))
    dp.send_msg(ofmsg.flow_add(dp, rewrite))
    dp.send_msg(ofmsg.flow_delete(dp, FlowDelete(1, FlowMatch(eth_dst="02:00:00:00:00:02"),
                                                 LEARNED_COOKIE, 2**64 - 1)))
    dp.send_msg(ofmsg.packet_out(dp, PacketOut(1, 1, (Output(PORT_FLOOD),), b"\xff" * 60)))
    add = dp.sent[0]
    assert add.idle_timeout == 30 and add.cookie == LEARNED_COOKIE
    assert add.match["eth_dst"] == "02:00:00:00:00:02"
    assert dp.sent[2].command == engine.ofproto_v1_3.OFPFC_DELETE
    assert dp.sent[3].buffer_id == NO_BUFFER and dp.sent[3].data == b"\xff" * 60


def _packet_in(engine: Any, dp: FakeDatapath, in_port: Any, data: bytes) -> Any:
    msg = SimpleNamespace(datapath=dp, match={"in_port": in_port}, data=data,
                          buffer_id=engine.ofproto_v1_3.OFP_NO_BUFFER)
    return SimpleNamespace(msg=msg)


def test_l2_app_floods_then_forwards_and_survives_garbage(engine: Any) -> None:
    from controllers.l2_switch import L2Switch

    app = L2Switch()
    dp = FakeDatapath(engine, dpid=5)
    app.on_switch_features(SimpleNamespace(msg=SimpleNamespace(datapath=dp)))
    assert len(dp.sent) == 1 and dp.sent[0].priority == 0
    a, b = bytes.fromhex("020000000001"), bytes.fromhex("020000000002")
    app.on_packet_in(_packet_in(engine, dp, 1, b"\xff" * 6 + a + b"\x08\x06" + b"\0" * 46))
    assert type(dp.sent[-1]).__name__ == "OFPPacketOut"
    app.on_packet_in(_packet_in(engine, dp, 2, a + b + b"\x08\x00" + b"\0" * 46))
    assert [type(m).__name__ for m in dp.sent[-2:]] == ["OFPFlowMod", "OFPPacketOut"]
    sent = len(dp.sent)
    app.on_packet_in(_packet_in(engine, dp, 1, b"\x01\x02"))
    app.on_packet_in(_packet_in(engine, dp, None, a + b))
    assert len(dp.sent) == sent
    assert app.core.stats.parse_errors == 2
    assert app.handler_exceptions == 0


def test_l2_app_counts_a_failing_handler(engine: Any, caplog: pytest.LogCaptureFixture) -> None:
    from controllers.l2_switch import L2Switch

    app = L2Switch()
    with caplog.at_level(logging.ERROR):
        app.on_packet_in(SimpleNamespace(msg=None))  # an event without a message
    assert app.handler_exceptions == 1
    assert HANDLER_EXCEPTION_MARKER in caplog.text


@pytest.mark.parametrize(("engine_name", "base"), [
    pytest.param("ryu", "ryu.base.app_manager.RyuApp", marks=needs_ryu),
    ("os-ken", "os_ken.base.app_manager.OSKenApp")])
def test_engine_forced_by_environment(engine_name: str, base: str) -> None:
    probe = (
        "import sys\n"
        "from controllers import engine\n"
        "oc = sys.modules.get('os_ken.controller.controller')\n"
        "b = engine.AppBase\n"
        "print(engine.ENGINE_NAME, b.__module__ + '.' + b.__name__, engine.ENGINE_VERSION)\n"
        "fixed = oc is not None and hasattr(oc.Datapath._recv_loop, '_sdnics_wakes_sender')\n"
        "print('ryu' in sys.modules, fixed)\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "SDNICS_ENGINE": engine_name})
    assert proc.returncode == 0, proc.stderr
    first, second = proc.stdout.splitlines()
    name, cls, _version = first.split()
    assert (name, cls) == (engine_name, base)
    if engine_name == "os-ken":
        # Only one framework loaded, and the native-thread disconnect fix applied.
        assert second == "False True"
