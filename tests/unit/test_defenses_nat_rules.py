"""The pure core of the NAT hopping defense: schedule reuse, rule sets, diffs, clean-up parsing."""

from __future__ import annotations

import pytest

from common.hopschedule import MutationConfig, schedule_events, virtual_mac
from common.plan import classic_plan, ics_plan, star_plan
from defenses import nat_links as nl
from defenses import nat_rules as nr

PLAN = ics_plan()


def _host(name: str = "plc1", virtual_macs: bool = False) -> nr.ProtectedHost:
    """The host with ``--arp-mac real`` unless asked: the rules every layout shares."""
    return nr.protected_host(PLAN, name, f"{name}-eth0", virtual_macs)


def test_host_gets_the_controller_defense_sequence() -> None:
    config = MutationConfig(hop_interval_s=5, seed=3)
    everyone = schedule_events(PLAN, config, 60)
    for name in ("plc1", "plc2"):
        mine = nr.host_events(PLAN, config, name, 60)
        assert mine == [e for e in everyone if e.host == name]
        assert len(mine) == 1 + 12  # the first assignment, then one hop every 5 s
        assert all(e.new_virtual in PLAN.virtual_pool for e in mine)
    other_seed = nr.host_events(PLAN, MutationConfig(hop_interval_s=5, seed=4), "plc1", 60)
    assert [e.new_virtual for e in other_seed] != [e.new_virtual for e in
                                                    nr.host_events(PLAN, config, "plc1", 60)]


def test_incremental_schedule_matches_the_whole_one() -> None:
    config = MutationConfig(hop_interval_s=2, jitter_s=0.5, seed=9)
    schedule = nr.new_schedule(PLAN, config)
    got = list(schedule.initial)
    for t in range(1, 41):  # ticks as the running defense takes them
        got += schedule.pop_due(t * 0.5)
    assert got == schedule_events(PLAN, config, 20)


def test_only_protected_hosts_and_trust_follows_the_controller() -> None:
    with pytest.raises(nr.NatRuleError, match="not protected"):
        nr.protected_host(PLAN, "hmi", "hmi-eth0")
    with pytest.raises(nr.NatRuleError, match="no host named"):
        nr.protected_host(PLAN, "nobody", "x")
    host = _host()
    assert [p.name for p in host.trusted] == ["hmi", "ews", "historian", "plc2"]
    assert "attacker" not in {p.name for p in host.trusted}
    assert [p.name for p in nr.protected_host(classic_plan(), "h4", "h4-eth0").trusted] == ["h1"]


def test_refuse_rules_trust_ip_and_mac_pairs_then_drop() -> None:
    rules = nr.refuse_rules(_host())
    chain = [r for r in rules if r.chain == nr.REFUSE_CHAIN]
    assert chain[-1].spec[-2:] == ("-j", "DROP")
    hmi = PLAN.host("hmi")
    assert ("-s", f"{hmi.ip}/32", "-m", "mac", "--mac-source", hmi.mac) == chain[0].spec[:6]
    jump = rules[-1]
    assert jump.chain == "INPUT" and jump.add_line().startswith("-I INPUT 1 ")
    # Only packets whose *original* destination was the real address: translated ones pass.
    assert "--ctorigdst" in jump.spec and "10.0.0.21" in jump.spec
    assert all(nr.TAG in r.spec for r in rules)


def test_hop_diff_swaps_dnat_and_retires_the_old_address() -> None:
    host = _host()
    first = nr.after_hop(nr.AddrState(), "10.0.0.150")
    assert first == nr.AddrState("10.0.0.150", ())
    change = nr.diff(host, nr.AddrState(), first)
    assert change.add_addresses == ("10.0.0.150/32",)
    assert [r.describe() for r in change.add_rules] == [
        "nat PREROUTING -d 10.0.0.150/32 -m comment --comment sdnics-nat-hop -j DNAT "
        "--to-destination 10.0.0.21",
        "filter INPUT -d 10.0.0.21/32 -p tcp --syn -m conntrack --ctstate DNAT ! --ctorigdst "
        "10.0.0.150 -m comment --comment sdnics-nat-hop -j DROP"]
    second = nr.after_hop(first, "10.0.0.160")
    assert second == nr.AddrState("10.0.0.160", ("10.0.0.150",))
    change = nr.diff(host, first, second)
    assert change.add_addresses == ("10.0.0.160/32",) and change.remove_addresses == ()
    assert set(change.remove_rules) == {nr.dnat_rule(host, "10.0.0.150"),
                                        nr.stale_syn_rule(host, "10.0.0.150")}
    assert set(change.add_rules) == {nr.dnat_rule(host, "10.0.0.160"),
                                     nr.stale_syn_rule(host, "10.0.0.160"),
                                     nr.retired_drop_rule("10.0.0.150")}
    done = nr.after_retire(second, "10.0.0.150")
    change = nr.diff(host, second, done)
    assert change.remove_addresses == ("10.0.0.150/32",) and not change.add_rules
    assert change.remove_rules == (nr.retired_drop_rule("10.0.0.150"),)
    assert nr.diff(host, done, done).empty


def test_a_new_syn_on_an_old_translation_is_dropped_whatever_conntrack_decides() -> None:
    """Issue 15: a SYN that conntrack attaches to an earlier conversation's entry on a retired
    address keeps that entry's DNAT (it reaches INPUT with the real address, where the
    retired address's own drop rule cannot see it); the rule for the current address drops
    every lone SYN translated from any other address, and only lone SYNs."""
    host = _host()
    state = nr.AddrState("10.0.0.160", ("10.0.0.150", "10.0.0.140"))
    rules = nr.state_rules(host, state)
    stale = nr.stale_syn_rule(host, "10.0.0.160")
    assert stale in rules and [r for r in rules if "--syn" in r.spec] == [stale]
    spec = stale.spec
    # After the DNAT: destination the real address, original destination not the current one.
    assert spec[:2] == ("-d", "10.0.0.21/32") and spec[spec.index("-j") + 1] == "DROP"
    assert spec[spec.index("--ctorigdst") - 1] == "!" and "10.0.0.160" in spec
    assert spec[spec.index("--ctstate") + 1] == "DNAT"
    # --syn is SYN set with ACK, RST and FIN clear: packets of established conversations
    # (and SYN-ACKs) pass.
    assert ("-p", "tcp", "--syn") == spec[2:5]
    assert stale.chain == "INPUT" and stale.add_line().startswith("-I INPUT 1 ")
    # Whatever the layout, and none before the first address.
    assert stale in nr.state_rules(_host(virtual_macs=True), state)
    assert not [r for r in nr.state_rules(host, nr.AddrState()) if "--syn" in r.spec]


def test_a_retiring_address_that_comes_back_is_current_again() -> None:
    state = nr.AddrState("10.0.0.160", ("10.0.0.150",))
    back = nr.after_hop(state, "10.0.0.150")
    assert back == nr.AddrState("10.0.0.150", ("10.0.0.160",))
    assert nr.after_hop(back, "10.0.0.150") == back


def test_restore_script_is_one_commit_per_table_in_order() -> None:
    host = _host()
    add = (nr.dnat_rule(host, "10.0.0.160"), nr.retired_drop_rule("10.0.0.150"))
    script = nr.restore_script(add=add, remove=(nr.dnat_rule(host, "10.0.0.150"),))
    assert script.splitlines() == [
        "*filter",
        "-I INPUT 1 -d 10.0.0.150/32 -m comment --comment sdnics-nat-hop -j DROP",
        "COMMIT",
        "*nat",
        "-I PREROUTING 1 -d 10.0.0.160/32 -m comment --comment sdnics-nat-hop -j DNAT "
        "--to-destination 10.0.0.21",
        "-D PREROUTING -d 10.0.0.150/32 -m comment --comment sdnics-nat-hop -j DNAT "
        "--to-destination 10.0.0.21",
        "COMMIT"]
    assert nr.restore_script() == ""
    setup = nr.restore_script(add=nr.refuse_rules(host), create_chain=True).splitlines()
    assert setup[1] == f":{nr.REFUSE_CHAIN} - [0:0]"
    assert "'" not in "".join(setup)  # iptables-restore knows no single quotes ('!' stays bare)
    teardown = nr.restore_script(remove=nr.refuse_rules(host), delete_chain=True).splitlines()
    assert teardown[-3:] == [f"-F {nr.REFUSE_CHAIN}", f"-X {nr.REFUSE_CHAIN}", "COMMIT"]
    assert sum(1 for ln in teardown if ln.startswith("-D")) == 1  # only the jump


def test_rule_tokens_must_not_need_quoting() -> None:
    with pytest.raises(nr.NatRuleError, match="quoting"):
        nr.Rule("filter", "INPUT", ("-m", "comment", "--comment", "two words", "-j", "DROP"))


def test_arp_ruleset_refuses_the_real_address_to_untrusted_pairs() -> None:
    text = nr.arp_ruleset(_host())
    assert text.startswith(f"table arp {nr.ARP_TABLE} {{")
    assert ("arp daddr ip 10.0.0.21 arp saddr ip . arp saddr ether { 10.0.0.11 . "
            "02:00:00:00:00:0b, ") in text
    assert "arp daddr ip 10.0.0.21 drop" in text
    assert "arp saddr ip 10.0.0.21 arp daddr ip != { 10.0.0.11, 10.0.0.12, 10.0.0.13, " \
           "10.0.0.22 } drop" in text
    assert text.count("{") == text.count("}")
    lonely = nr.ProtectedHost("h", "10.0.0.5", "h-eth0", ())
    assert "arp saddr ip 10.0.0.5 drop" in nr.arp_ruleset(lonely)


TAG_ARGS = "-m comment --comment sdnics-nat-hop"
SAVE = "\n".join([
    '# Generated by iptables-save v1.8.9 (nf_tables)',
    '*filter',
    ':INPUT ACCEPT [0:0]',
    ':FORWARD ACCEPT [0:0]',
    ':OUTPUT ACCEPT [0:0]',
    ':SDNICS-NAT-HOP - [0:0]',
    '-A INPUT -d 10.0.0.150/32 ' + TAG_ARGS + ' -j DROP',
    '-A INPUT -d 10.0.0.21/32 ! -i lo -m conntrack --ctorigdst 10.0.0.21 ' + TAG_ARGS
    + ' -j SDNICS-NAT-HOP',
    '-A INPUT -s 10.0.0.9/32 -m comment --comment "someone else\'s rule" -j ACCEPT',
    '-A SDNICS-NAT-HOP -s 10.0.0.11/32 -m mac --mac-source 02:00:00:00:00:0B ' + TAG_ARGS
    + ' -j RETURN',
    '-A SDNICS-NAT-HOP ' + TAG_ARGS + ' -j DROP',
    'COMMIT',
    '*nat',
    ':PREROUTING ACCEPT [3:180]',
    '-A PREROUTING -d 10.0.0.160/32 ' + TAG_ARGS + ' -j DNAT --to-destination 10.0.0.21',
    '-A POSTROUTING -o x -m comment --comment sdnics-nat-hop-not -j MASQUERADE',
    'COMMIT',
]) + "\n"


def test_crash_cleanup_removes_only_tagged_rules_and_the_chain() -> None:
    lines = nr.tagged_iptables_deletions(SAVE).splitlines()
    assert lines[0] == "*filter" and lines[-1] == "COMMIT"
    deletes = [ln for ln in lines if ln.startswith("-D")]
    assert len(deletes) == 3
    assert not any("someone" in ln or "MASQUERADE" in ln or "RETURN" in ln for ln in lines)
    filt = lines[:lines.index("COMMIT")]
    # The jump goes before the chain is flushed and deleted.
    assert filt.index("-X SDNICS-NAT-HOP") > max(i for i, ln in enumerate(filt)
                                                 if ln.startswith("-D INPUT"))
    assert nr.tagged_iptables_deletions("*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n") == ""


def test_tagged_addresses_and_neighbours() -> None:
    addr = [{"ifname": "plc1-eth0", "addr_info": [
        {"family": "inet", "local": "10.0.0.21", "prefixlen": 24, "label": "plc1-eth0"},
        {"family": "inet", "local": "10.0.0.150", "prefixlen": 32, "label": "plc1-eth0:nh"},
        {"family": "inet", "local": "10.0.0.200", "prefixlen": 32, "label": "plc1-eth0"}]}]
    assert nr.tagged_addresses(addr) == (("plc1-eth0", "10.0.0.150/32"),)
    neigh = [{"dst": "10.0.0.11", "dev": "plc1-eth0", "protocol": "209"},
             {"dst": "10.0.0.12", "dev": "plc1-eth0"}]
    assert nr.tagged_neighbours(neigh) == (("plc1-eth0", "10.0.0.11"),)
    assert nr.address_label("plc1-eth0") == "plc1-eth0:nh"
    assert len(nr.address_label("averylonghost0")) <= nr.MAX_LABEL_CHARS


CONNTRACK = (
    "ipv4     2 tcp      6 431999 ESTABLISHED src=10.0.0.66 dst=10.0.0.150 sport=40000 "
    "dport=502 src=10.0.0.21 dst=10.0.0.66 sport=502 dport=40000 [ASSURED] mark=0 zone=0 use=2\n"
    "ipv4     2 tcp      6 110 TIME_WAIT src=10.0.0.66 dst=10.0.0.150 sport=40001 dport=502 "
    "src=10.0.0.21 dst=10.0.0.66 sport=502 dport=40001 [ASSURED] mark=0 zone=0 use=2\n"
    "ipv4     2 icmp     1 29 src=10.0.0.66 dst=10.0.0.150 type=8 code=0 id=7 src=10.0.0.21 "
    "dst=10.0.0.66 type=0 code=0 id=7 mark=0 zone=0 use=2\n"
    "ipv4     2 tcp      6 431999 ESTABLISHED src=10.0.0.11 dst=10.0.0.21 sport=1 dport=502 "
    "src=10.0.0.21 dst=10.0.0.11 sport=502 dport=1 [ASSURED] mark=0 zone=0 use=2\n"
    "garbage\n"
)


def test_live_flows_count_translated_conversations_that_may_still_send() -> None:
    entries = nr.parse_conntrack(CONNTRACK)
    assert len(entries) == 4
    assert entries[0] == nr.ConntrackEntry("tcp", "ESTABLISHED", "10.0.0.150", "10.0.0.21")
    assert nr.live_flows(entries, "10.0.0.150", "10.0.0.21") == 2  # not the TIME_WAIT one
    assert nr.live_flows(entries, "10.0.0.160", "10.0.0.21") == 0
    assert nr.live_flows(entries, "10.0.0.150", "10.0.0.22") == 0


def test_grace_must_end_before_the_quarantine() -> None:
    config = MutationConfig(hop_interval_s=5, flow_idle_timeout_s=10)  # quarantine 25 s
    nr.check_grace(config, 20)
    for bad in (25, -1):
        with pytest.raises(nr.NatRuleError, match="quarantine"):
            nr.check_grace(config, bad)


def test_plans_without_protected_hosts_have_nothing_to_protect() -> None:
    with pytest.raises(nr.NatRuleError, match="protected: none"):
        nr.protected_host(star_plan(4), "h1", "h1-eth0")


# --- virtual MACs (defenses.nat_links) ----------------------------------------------------
def test_each_virtual_address_gets_its_own_interface_with_a_host_like_virtual_mac() -> None:
    host = _host(virtual_macs=True)
    assert nr.protected_host(PLAN, "plc1", "plc1-eth0").virtual_macs  # the default
    real_macs = {h.mac for h in PLAN.hosts}
    links = [host.link(v) for v in PLAN.virtual_pool]
    assert len({lk.mac for lk in links}) == len({lk.name for lk in links}) == len(links)
    assert len({lk.mark for lk in links}) == len(links)
    for lk in links:
        assert lk.mac == virtual_mac(lk.virtual_ip, real_macs) and lk.mac not in real_macs
        assert len(lk.name) <= 15 and nl.LINK_NAME_RE.match(lk.name)
        assert lk.mark & nl.MARK_MASK == nl.MARK_BASE
    assert host.link("10.0.0.150").name == "sdnh0a000096"
    # A plan whose real MACs follow the same scheme: never answer with a real host's MAC.
    assert virtual_mac("10.0.0.21", real_macs) != PLAN.host("plc1").mac


def test_virtual_mac_state_marks_new_conversations_and_replies_follow_the_mark() -> None:
    host = _host(virtual_macs=True)
    static = nr.refuse_rules(host)
    restore = [r for r in static if r.table == "mangle"]
    assert [r.chain for r in restore] == ["OUTPUT"] and "--restore-mark" in restore[0].spec
    assert not [r for r in nr.refuse_rules(_host()) if r.table == "mangle"]
    first = nr.after_hop(nr.AddrState(), "10.0.0.150")
    change = nr.diff(host, nr.AddrState(), first)
    mark = nr.mark_rule(host, "10.0.0.150")
    assert mark in change.add_rules and mark.chain == "PREROUTING"
    assert f"{host.link('10.0.0.150').mark:#x}/0xffffffff" in mark.spec
    # At a hop the new address is marked; the old one keeps its interface (and the marks
    # its conversations already carry) until it retires, but gets no new conversation.
    second = nr.after_hop(first, "10.0.0.160")
    change = nr.diff(host, first, second)
    assert mark in change.remove_rules and nr.mark_rule(host, "10.0.0.160") in change.add_rules
    assert change.remove_addresses == ()


def test_link_commands_route_marked_replies_out_of_the_virtual_interface() -> None:
    link = nl.link_for("10.0.0.150")
    create = nl.link_create_commands(link, "plc1-eth0")
    assert create[0][:6] == ("ip", "link", "add", "link", "plc1-eth0", "name")
    assert ("address", link.mac) == create[0][7:9] and "macvlan" in create[0]
    assert dict(nl.link_sysctls(link)) == {
        f"/proc/sys/net/ipv6/conf/{link.name}/disable_ipv6": "1",
        f"/proc/sys/net/ipv4/conf/{link.name}/arp_ignore": "1"}
    up = nl.link_up_commands(link, "10.0.0.0/24")
    assert ("ip", "addr", "add", "10.0.0.150/32", "dev", link.name) in up
    assert ("ip", "rule", "add", "fwmark", str(link.mark), "lookup", str(link.mark),
            "protocol", "209") in up
    assert ("ip", "route", "replace", "10.0.0.0/24", "dev", link.name, "table",
            str(link.mark)) in up
    assert nl.link_remove_commands(link)[-1] == ("ip", "link", "del", link.name)


def test_crash_cleanup_finds_only_this_defense_s_interfaces_and_rules() -> None:
    links = [{"ifname": "sdnh0a000096", "linkinfo": {"info_kind": "macvlan"}},
             {"ifname": "sdnh0a000097", "linkinfo": {"info_kind": "veth"}},
             {"ifname": "plc1-eth0"}, {"ifname": "sdnhost", "linkinfo": {"info_kind": "macvlan"}}]
    assert nl.tagged_links(links) == ("sdnh0a000096",)
    rules = [{"priority": 0, "table": "local"},
             {"priority": 32765, "fwmark": "0x5d000096", "table": "1560281238",
              "protocol": "209"},
             {"priority": 32764, "fwmark": "0x1", "table": "7"}]
    assert nl.tagged_rules(rules) == ("0x5d000096",)
