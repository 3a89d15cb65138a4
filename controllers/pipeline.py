"""The flow table every controller app builds: each flow priority and cookie, defined once.

All apps use OpenFlow table 0 only. Which rule wins over which, highest priority first:

====================  =====  ====================  =============================================
priority              value  installed by          wins over, and why
====================  =====  ====================  =============================================
PRIORITY_BLOCK        1000   detector              everything: a scanner's frames are dropped
                                                   whatever forwarding or rewrite flow it matches
                                                   (far above the rest so a new rule fits between)
PRIORITY_REAL_DROP    40     rhm                   mapped rewrites: an untrusted source's packets
                                                   to a real protected address are dropped even if
                                                   some mapping flow would also match them
PRIORITY_MAPPED       30     rhm                   stale drops: a conversation keeps the virtual
                                                   address it started on after a hop, while new
                                                   flows to the retired address hit the drop below
PRIORITY_STALE_DROP   20     rhm (at each hop)     learned flows: a MAC-pair flow must not carry a
                                                   new conversation to a retired virtual address
PRIORITY_LEARNED      10     l2 learning switch    the table-miss flow (the default of
                                                   LearningConfig.flow_priority)
PRIORITY_TABLE_MISS   0      every app             nothing: whatever no flow matches goes to the
                                                   controller
====================  =====  ====================  =============================================

Cookies mark who installed a flow, so a delete (cookie + :data:`ALL_COOKIE_BITS` mask) touches
only that app's flows and a flow-removed message can be traced back to its mapping. The
table-miss flow has cookie 0.

====================  ===========================================================================
LEARNED_COOKIE        learned forwarding flows (l2, and the narrow flows of detector and rhm)
MAPPED_COOKIE_TAG     rhm mapping flows: tag in the upper 32 bits, lower 32 bits
                      ``mapping id << 1 | direction`` (0 forward, 1 reverse); see
                      :func:`mapped_cookie`
STALE_COOKIE          rhm drop flows for a retired virtual address
REFUSED_COOKIE        rhm drop flows for untrusted sources toward a real protected address
BLOCK_COOKIE          detector drop flows for a scanning source
====================  ===========================================================================
"""

from __future__ import annotations

PRIORITY_TABLE_MISS = 0
PRIORITY_LEARNED = 10
PRIORITY_STALE_DROP = 20
PRIORITY_MAPPED = 30
PRIORITY_REAL_DROP = 40
PRIORITY_BLOCK = 1000

ALL_COOKIE_BITS = 0xFFFFFFFFFFFFFFFF
LEARNED_COOKIE = 0x5D1C_0001
MAPPED_COOKIE_TAG = 0x5D1C_0200
STALE_COOKIE = 0x5D1C_0300
REFUSED_COOKIE = 0x5D1C_0400
BLOCK_COOKIE = 0x5D1C_0D00

_LOW_32_BITS = 0xFFFFFFFF


def mapped_cookie(mapping_id: int, direction: int) -> int:
    """The cookie of an rhm mapping flow; direction 0 is forward (toward the host), 1 reverse."""
    return MAPPED_COOKIE_TAG << 32 | mapping_id << 1 | direction


def mapping_of_cookie(cookie: int) -> tuple[int, int] | None:
    """(mapping id, direction) of an rhm mapping flow's cookie; None for any other cookie."""
    if cookie >> 32 != MAPPED_COOKIE_TAG:
        return None
    low = cookie & _LOW_32_BITS
    return low >> 1, low & 1
