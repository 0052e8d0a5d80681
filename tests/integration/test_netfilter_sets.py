"""The egress allowlist as nftables sets (issue 21): big and overlapping
lists, and the record of denied destinations shown by `events --stats` and
`state`.  In the test networks of test_netfilter.py (its netlab fixture)."""

import json
import re

import pytest

from conftest import describe, run_cmd
import test_netfilter as nf

netlab = nf.netlab
bare_netns = nf.bare_netns

pytestmark = [pytest.mark.needs_root, pytest.mark.needs_cmd("create", "start", "exec", "delete"),
              pytest.mark.usefixtures("seccomp_cache_cleanup")]

LIMIT = 65536


def filler(n):
    """n distinct, non-adjacent TCP destinations outside the test network."""
    return [f"10.{100 + i // 32768}.{(i // 128) % 256}.{(i % 128) * 2}:443" for i in range(n)]


def test_big_allowlist(sbx, bundle, tmp_path, netlab):
    # 65,536 destinations: the allowed ones last, among the filler.
    ents = filler(LIMIT - 3) + ["10.231.0.3:80", "[fd31::3]:8000-8100", "udp:10.231.0.2:9000"]
    b = nf.net_bundle(bundle, tmp_path, netlab, {"org.sbxrun.net.allow": ",".join(ents),
                                                 "org.sbxrun.net.dns": "none"})
    cid = sbx.new_id("net")
    cp = sbx("--debug", "create", "--bundle", b, cid)
    assert cp.returncode == 0, describe(cp)
    m = re.search(r"egress policy: (\d+) set elements, \d+ bytes of netlink batch, installed in ([\d.]+) ms",
                  cp.stderr)
    assert m and int(m.group(1)) == LIMIT, cp.stderr[-2000:]
    sbx.ok("start", cid)
    nf.check(sbx, cid,
             allowed=[["tcp", "10.231.0.3", 80], ["tcp", "fd31::3", 8050], ["udp", "10.231.0.2", 9000]],
             blocked=[["tcp", "10.231.0.2", 80], ["tcp", "10.231.0.3", 443], ["tcp", "fd31::3", 8101],
                      ["udp", "10.231.0.3", 9000], ["tcp", "10.231.0.4", 443]])
    # sets, not one rule per destination: single host:port entries in a
    # hash set, the port range in an interval set
    rules = netlab.ruleset()
    assert "set hostports4" in rules and "ip daddr . meta l4proto . th dport @hostports4 accept" in rules, \
        rules[:3000]
    assert re.search(r"set ports6 \{[^}]*flags interval", rules), rules[:3000]
    assert "ip6 daddr . meta l4proto . th dport @ports6 accept" in rules, rules[:3000]
    assert not re.search(r"set hostports4 \{[^}]*flags interval", rules), rules[:3000]
    assert rules.count("accept") < 20, "one rule per destination?"
    sbx.ok("delete", "--force", cid)

    # one more is refused, naming the limit, and nothing is left
    b = nf.net_bundle(bundle, tmp_path, netlab, {"org.sbxrun.net.allow": ",".join(filler(LIMIT + 1)),
                                                 "org.sbxrun.net.dns": "none"})
    cid = sbx.new_id("net")
    cp = sbx.fail("create", "--bundle", b, cid)
    assert f"more than {LIMIT} destinations" in cp.stderr and "org.sbxrun.net.allow" in cp.stderr, describe(cp)
    assert not (sbx.root / cid).exists()
    assert "sbxrun-" not in netlab.ruleset()


def test_overlapping_entries(sbx, bundle, tmp_path, netlab):
    """Nested CIDRs, duplicates, port ranges overlapping each other and a
    protocol-wide entry: the kernel refuses overlapping set elements, so
    they are merged first; the union is what is allowed."""
    ann = ("10.231.0.0/24:8000-8100, 10.231.0.3:8050, tcp:10.231.0.3:8050-9000, udp:10.231.0.3, "
           "10.231.0.2, tcp:10.231.0.2:80, 10.231.0.2, [fd31::/64]:80, [fd31::2], [fd31::2]:443, "
           "tcp:10.231.0.4:53-80, tcp:10.231.0.4:80-443")
    b = nf.net_bundle(bundle, tmp_path, netlab, {"org.sbxrun.net.allow": ann, "org.sbxrun.net.dns": "none"})
    cid = nf.start(sbx, b)
    nf.check(sbx, cid,
             allowed=[["tcp", "10.231.0.3", 9000], ["tcp", "10.231.0.4", 8000], ["tcp", "10.231.0.3", 8100],
                      ["udp", "10.231.0.3", 9000], ["tcp", "10.231.0.2", 443], ["udp", "10.231.0.2", 53],
                      ["tcp", "fd31::3", 80], ["tcp", "fd31::2", 443], ["udp", "fd31::2", 53],
                      ["tcp", "10.231.0.4", 53], ["tcp", "10.231.0.4", 443]],
             blocked=[["tcp", "10.231.0.4", 9000], ["udp", "10.231.0.4", 9000], ["tcp", "fd31::3", 443],
                      ["tcp", "10.231.0.53", 80], ["tcp", "10.231.0.53", 5432], ["udp", "fd31::3", 80]])


def test_ranges_of_every_protocol(sbx, bundle, tmp_path, netlab):
    """CIDRs without a protocol or port go to the one-field interval sets
    (netsN: a range is a start and an end element), hosts to the hash
    sets; a range reaching the family's last address has no end
    element; touching entries become one range."""
    ann = "10.231.0.2/31, [fd31::/126], 255.255.255.0/24, [ffff::/16], 10.231.0.4"
    b = nf.net_bundle(bundle, tmp_path, netlab, {"org.sbxrun.net.allow": ann, "org.sbxrun.net.dns": "none"})
    cid = nf.start(sbx, b)
    nf.check(sbx, cid,
             allowed=[["tcp", "10.231.0.2", 80], ["tcp", "10.231.0.3", 80], ["udp", "10.231.0.2", 9000],
                      ["tcp", "fd31::3", 80], ["tcp", "10.231.0.4", 443]],
             blocked=[["tcp", "10.231.0.5", 80], ["tcp", "10.231.0.1", 80], ["tcp", "fd31::4", 80],
                      ["udp", "10.231.0.53", 9000]])
    rules = netlab.ruleset()
    # 10.231.0.4 touches 10.231.0.2/31: one range
    assert re.search(r"set nets4 \{[^}]*flags interval[^}]*10\.231\.0\.2-10\.231\.0\.4[^}]*255\.255\.255\.0/24",
                     rules), rules
    assert re.search(r"set nets6 \{[^}]*fd31::/126[^}]*ffff::/16", rules), rules
    assert "ip daddr @nets4 accept" in rules and "ip6 daddr @nets6 accept" in rules, rules
    assert "hosts4" not in rules, rules
    sbx.ok("delete", "--force", cid)


def test_cidrs_of_one_length_in_hash_sets(sbx, bundle, tmp_path, netlab):
    """Many CIDRs of one prefix length go to a hash set of that length,
    looked up with the address masked (an insert costs a fraction of an
    interval set's two elements); lengths few CIDRs share stay in netsN,
    and so does what a merge of touching entries makes of other lengths."""
    v4 = [f"10.100.{i}.0/30" for i in range(40)] + ["10.231.0.0/30", "10.231.0.4/31"]
    v6 = [f"[fd00:{i:x}::/126]" for i in range(40)] + ["[fd31::/126]"]
    b = nf.net_bundle(bundle, tmp_path, netlab, {"org.sbxrun.net.allow": ",".join(v4 + v6),
                                                 "org.sbxrun.net.dns": "none"})
    cid = sbx.new_id("net")
    cp = sbx("--debug", "create", "--bundle", b, cid)
    assert cp.returncode == 0, describe(cp)
    assert re.search(r"egress policy: 83 set elements", cp.stderr), cp.stderr[-2000:]
    sbx.ok("start", cid)
    nf.check(sbx, cid,
             allowed=[["tcp", "10.231.0.2", 80], ["udp", "10.231.0.3", 9000], ["tcp", "10.231.0.4", 443],
                      ["tcp", "fd31::2", 80], ["udp", "fd31::3", 53]],
             blocked=[["tcp", "10.231.0.53", 80], ["udp", "10.231.0.53", 53], ["tcp", "fd31::53", 80],
                      ["udp", "fd31::53", 53]])
    rules = netlab.ruleset()
    assert "ip daddr & 255.255.255.252 == @nets4_30 accept" in rules, rules
    assert "ip6 daddr & ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffc == @nets6_126 accept" in rules, rules
    assert not re.search(r"set nets4_30 \{[^}]*flags interval", rules), rules
    # 10.231.0.4/31, alone of its length, in the interval set
    assert re.search(r"set nets4 \{[^}]*flags interval[^}]*10\.231\.0\.4/31", rules), rules
    assert "nets6 " not in rules, rules
    sbx.ok("delete", "--force", cid)


def egress_stats(sbx, cid):
    cp = sbx.ok("events", "--stats", cid)
    return json.loads(cp.stdout.splitlines()[0])["data"]["egress"]


def test_denied_destinations(sbx, bundle, tmp_path, netlab):
    b = nf.net_bundle(bundle, tmp_path, netlab, {"org.sbxrun.net.allow": "10.231.0.2:80",
                                                 "org.sbxrun.net.dns": "none"})
    cid = nf.start(sbx, b)
    assert egress_stats(sbx, cid)["denied"] == []
    nf.check(sbx, cid, allowed=[["tcp", "10.231.0.2", 80]],
             blocked=[["udp", "10.231.0.3", 9000], ["udp", "10.231.0.3", 9000], ["tcp", "10.231.0.4", 443],
                      ["tcp", "fd31::2", 5432], ["udp", "fd31::53", 53]])
    denied = egress_stats(sbx, cid)["denied"]
    by = {(d["family"], d["address"], d["protocol"], d["port"]): d for d in denied}
    assert set(by) == {("ipv4", "10.231.0.3", "udp", 9000), ("ipv4", "10.231.0.4", "tcp", 443),
                       ("ipv6", "fd31::2", "tcp", 5432), ("ipv6", "fd31::53", "udp", 53)}, denied
    assert by[("ipv4", "10.231.0.3", "udp", 9000)]["count"] >= 2, denied
    for d in denied:
        assert d["count"] >= 1 and d["bytes"] > 0 and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", d["last"]), d
    # most recent first (to the second)
    assert [d["last"] for d in denied] == sorted((d["last"] for d in denied), reverse=True), denied
    # the same in `state`, as the annotation org.sbxrun.net.denied
    st = json.loads(sbx.ok("state", cid).stdout)
    shown = json.loads(st["annotations"]["org.sbxrun.net.denied"])
    assert {(d["address"], d["port"]) for d in shown} == {(a, p) for _, a, _, p in by}, shown

    # bounded: 64 per family, then newer ones are not recorded; drops go on
    specs = [["udp", "10.231.0.3", 10000 + i] for i in range(80)]
    res = nf.probe(sbx, cid, *specs)
    assert all(r["err"] == "EPERM" for r in res), res
    denied = egress_stats(sbx, cid)["denied"]
    assert len([d for d in denied if d["family"] == "ipv4"]) == 64, len(denied)


def test_denied_annotation_refused(sbx, bundle, tmp_path, bare_netns):
    b = nf.net_bundle(bundle, tmp_path, bare_netns, {"org.sbxrun.net.allow": "10.231.0.2",
                                                     "org.sbxrun.net.denied": "[]"})
    cid = sbx.new_id("net")
    cp = sbx.fail("create", "--bundle", b, cid)
    assert "org.sbxrun.net.denied" in cp.stderr and "written by sbxrun" in cp.stderr, describe(cp)
    assert not (sbx.root / cid).exists()
