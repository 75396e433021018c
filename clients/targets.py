"""Targets naming several replicas: calls, not just connections, spread over them.

`host1:port,host2:port` becomes one gRPC `ipv4:`/`ipv6:` target over every address the names
resolve to now (gRPC's static address list; restart the client to pick up new replicas), and a
`dns:///name:port` target is re-resolved by gRPC itself as replicas come and go. Both use the
`round_robin` policy, so each call goes to the next ready replica and one that is lost is
skipped; a single `host:port` keeps gRPC's default (pick_first) as before.
"""

from __future__ import annotations

import ipaddress
import socket

BALANCED_SCHEMES = ("dns:", "ipv4:", "ipv6:")


def split_host_port(address: str) -> tuple[str, int]:
    """'host:port' or '[v6]:port' -> (host, port); ValueError without a port."""
    host, sep, port = address.strip().rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ValueError(f"address {address!r} is not host:port")
    return host.removeprefix("[").removesuffix("]"), int(port)


def _resolved(host: str, port: int) -> list[str]:
    """The IP addresses of `host` (itself when it is one), in resolver order."""
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as err:
        raise ValueError(f"cannot resolve {host!r}: {err.strerror}") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def balanced_target(target: str) -> tuple[str, bool]:
    """(gRPC target, whether to balance calls round robin over its addresses)."""
    target = target.strip()
    if target.startswith(BALANCED_SCHEMES):
        return target, True
    if "," not in target:
        return target, False
    v4: list[str] = []
    v6: list[str] = []
    for address in filter(None, (a.strip() for a in target.split(","))):
        host, port = split_host_port(address)
        for ip in _resolved(host, port):
            if ":" in ip:
                v6.append(f"[{ip}]:{port}")
            else:
                v4.append(f"{ip}:{port}")
    # gRPC's address-list schemes take one family; IPv4 wins when names resolve to both.
    if v4:
        return "ipv4:" + ",".join(dict.fromkeys(v4)), True
    if v6:
        return "ipv6:" + ",".join(dict.fromkeys(v6)), True
    raise ValueError(f"target {target!r} names no address")
