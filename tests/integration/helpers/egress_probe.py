"""egress_probe.py '[[kind, host, port], ...]' -> one JSON result per probe:
{"ok": answer or null, "err": errno name or message, "t": seconds}.

The in-container probe of the egress tests (tests/integration/test_netfilter.py,
tests/security/test_egress.py), run with the host's python3; also run
outside any container, in the test namespaces.  Standard library only.
"""
import ctypes
import errno
import json
import os
import socket
import struct
import sys
import time


def fam(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def tcp(host, port):
    with socket.socket(fam(host), socket.SOCK_STREAM) as s:
        s.settimeout(4)
        s.connect((host, port))
        return s.recv(64).decode().strip()


def udp(host, port):
    with socket.socket(fam(host), socket.SOCK_DGRAM) as s:
        s.settimeout(4)
        s.sendto(b"hi", (host, port))
        return s.recvfrom(256)[0].decode().strip()


def ping(host, port):
    # unprivileged ICMP ("ping") sockets: IP traffic that netfilter sees,
    # with no capability (the container's ping_group_range allows it)
    v6 = fam(host) == socket.AF_INET6
    proto = socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP
    with socket.socket(fam(host), socket.SOCK_DGRAM, proto) as s:
        s.settimeout(1.5)
        s.sendto(struct.pack("!BBHHH", 128 if v6 else 8, 0, 0, 0, 1) + b"sbxt", (host, 0))
        while True:
            data = s.recv(2048)
            if data[0] == (129 if v6 else 0):
                return "pong"


def echo6(host, how):
    """ICMPv6 echo from a ping socket: "plain", "recverr" (IPV6_RECVERR set)
    or "connected"."""
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM, socket.IPPROTO_ICMPV6)
    with s:
        s.settimeout(1.5)
        if how == "recverr":
            s.setsockopt(socket.IPPROTO_IPV6, 25, 1)  # IPV6_RECVERR
        if how == "connected":
            s.connect((host, 0))
        s.sendto(struct.pack("!BBHHH", 128, 0, 0, 0, 1) + b"sbxt", (host, 0))
        while True:
            if s.recv(2048)[0] == 129:
                return "pong"


def loopback(host, port):
    with socket.socket(fam(host), socket.SOCK_STREAM) as srv:
        srv.bind((host, 0))
        srv.listen(1)
        with socket.create_connection(srv.getsockname()[:2], timeout=4) as c:
            a, _ = srv.accept()
            with a:
                a.sendall(b"lo")
            return c.recv(16).decode()


def netlink_delete(table, port):
    # what `nft delete table inet TABLE` sends: a batch over nfnetlink
    def msg(mtype, flags, seq, family, res_id, payload=b""):
        body = struct.pack("=BBH", family, 0, socket.htons(res_id)) + payload
        return struct.pack("=IHHII", 16 + len(body), mtype, flags, seq, 0) + body
    name = table.encode() + b"\0"
    attr = struct.pack("=HH", 4 + len(name), 1) + name
    attr += b"\0" * (-len(attr) % 4)
    # BATCH_BEGIN, NFT_MSG_DELTABLE (family inet, NLM_F_ACK), BATCH_END
    batch = msg(16, 1, 1, 0, 10) + msg((10 << 8) | 2, 1 | 4, 2, 1, 0, attr) + msg(17, 1, 3, 0, 10)
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 12) as s:
        s.settimeout(4)
        s.bind((0, 0))
        s.send(batch)
        data = s.recv(65536)
    while data:
        ln, mtype = struct.unpack("=IH", data[:6])
        if mtype == 2:
            code = struct.unpack("=i", data[16:20])[0]
            if code:
                raise OSError(-code, os.strerror(-code))
        data = data[(ln + 3) & ~3:]
    return "deleted"


def opened(*args):
    socket.socket(*args).close()
    return "opened"


def ptrace(pid):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.ptrace.restype = ctypes.c_long
    libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
    if libc.ptrace(0x4206, pid, None, None) < 0:  # PTRACE_SEIZE
        e = ctypes.get_errno()
        raise OSError(e, "ptrace")
    return "attached"  # detached when this process exits


KINDS = {
    "tcp": tcp, "udp": udp, "ping": ping, "loopback": loopback, "netlink": netlink_delete,
    "ping6-connected": lambda h, p: echo6(h, "connected"),
    "ping6-recverr": lambda h, p: echo6(h, "recverr"),
    "ping6": lambda h, p: echo6(h, "plain"),
    "packet": lambda h, p: opened(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3)),
    "raw4": lambda h, p: opened(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP),
    "raw6": lambda h, p: opened(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6),
    "ptrace": lambda h, p: ptrace(p),
}


def main():
    out = []
    for kind, host, port in json.loads(sys.argv[1]):
        t = time.monotonic()
        try:
            r = {"ok": KINDS[kind](host, port), "err": None}
        except OSError as e:
            r = {"ok": None, "err": errno.errorcode.get(e.errno, str(e))}
        r["t"] = round(time.monotonic() - t, 3)
        out.append(r)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
