"""Turn :mod:`controllers.flowspec` data into OpenFlow 1.3 messages on a connected datapath.

Uses only the datapath's own ``ofproto``/``ofproto_parser``, so it works with either engine and
imports neither.
"""

from __future__ import annotations

from typing import Any

from controllers.flowspec import (
    NO_BUFFER,
    PORT_ANY,
    PORT_CONTROLLER,
    PORT_FLOOD,
    Action,
    FlowDelete,
    FlowSpec,
    Output,
    PacketOut,
    SetField,
)


def check_constants(ofproto: Any) -> None:
    """Raise AssertionError if flowspec's wire constants disagree with the engine's."""
    expected = {
        "OFPP_FLOOD": PORT_FLOOD,
        "OFPP_CONTROLLER": PORT_CONTROLLER,
        "OFPP_ANY": PORT_ANY,
        "OFP_NO_BUFFER": NO_BUFFER,
    }
    for name, value in expected.items():
        actual = getattr(ofproto, name)
        if actual != value:
            raise AssertionError(f"{name} is {actual:#x} in the engine, {value:#x} in flowspec")


def actions(datapath: Any, specs: tuple[Action, ...]) -> list[Any]:
    """OFPAction objects for ``specs``."""
    parser = datapath.ofproto_parser
    out: list[Any] = []
    for spec in specs:
        if isinstance(spec, Output):
            out.append(parser.OFPActionOutput(spec.port, spec.max_len_bytes))
        elif isinstance(spec, SetField):
            out.append(parser.OFPActionSetField(**{spec.name: spec.value}))
        else:
            raise TypeError(f"unknown action {spec!r}")
    return out


def _flow_mod(datapath: Any, command: int, spec: FlowSpec | FlowDelete, **fields: Any) -> Any:
    """An OFPFlowMod with ``spec``'s cookie, table and match; ``fields`` add the rest."""
    return datapath.ofproto_parser.OFPFlowMod(
        datapath=datapath, command=command, cookie=spec.cookie, table_id=spec.table_id,
        match=datapath.ofproto_parser.OFPMatch(**spec.match.fields()), **fields)


def flow_add(datapath: Any, spec: FlowSpec) -> Any:
    """An OFPFlowMod(ADD) for ``spec``."""
    ofp = datapath.ofproto
    inst = [datapath.ofproto_parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS,
                                                          actions(datapath, spec.actions))]
    return _flow_mod(datapath, ofp.OFPFC_ADD, spec, idle_timeout=spec.idle_timeout_s,
                     hard_timeout=spec.hard_timeout_s, priority=spec.priority,
                     buffer_id=ofp.OFP_NO_BUFFER,
                     flags=ofp.OFPFF_SEND_FLOW_REM if spec.send_flow_removed else 0,
                     instructions=inst)


def flow_delete(datapath: Any, spec: FlowDelete) -> Any:
    """An OFPFlowMod(DELETE), non-strict: removes every flow the match covers."""
    ofp = datapath.ofproto
    return _flow_mod(datapath, ofp.OFPFC_DELETE, spec, cookie_mask=spec.cookie_mask,
                     out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY)


def packet_out(datapath: Any, spec: PacketOut) -> Any:
    """An OFPPacketOut; carries the frame only when the switch did not buffer it."""
    parser = datapath.ofproto_parser
    return parser.OFPPacketOut(
        datapath=datapath,
        buffer_id=spec.buffer_id,
        in_port=spec.in_port,
        actions=actions(datapath, spec.actions),
        data=spec.data if spec.buffer_id == NO_BUFFER else None,
    )


def barrier_request(datapath: Any) -> tuple[Any, int]:
    """An OFPBarrierRequest with its xid already assigned: (message, xid).

    The switch answers once every message sent before it is processed, so the reply's
    arrival bounds "flows in place" for the messages that preceded the request.
    """
    msg = datapath.ofproto_parser.OFPBarrierRequest(datapath)
    xid = datapath.set_xid(msg)
    return msg, xid
