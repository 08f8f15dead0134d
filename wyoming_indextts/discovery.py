"""The address announced over zeroconf: one that another machine can connect to.

A server bound to 0.0.0.0 listens on every interface, but 0.0.0.0 in an announcement means
nothing to Home Assistant on another machine. Like the other Wyoming servers, announce the
address of the interface that routes to the mDNS group; where no route exists (a box without
a default route), the first interface address that is neither loopback nor link-local.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable

import ifaddr

MDNS_GROUP = "224.0.0.251"
MDNS_PORT = 5353
# Binding to one of these means "every interface": there is no single address in them to announce.
WILDCARD_HOSTS = ("", "0.0.0.0", "::")


def is_ipv4_address(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


def routed_address() -> str | None:
    """The local address the kernel would send mDNS traffic from (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect((MDNS_GROUP, MDNS_PORT))
        except OSError:
            return None
        address = sock.getsockname()[0]
    return None if address in WILDCARD_HOSTS else address


def interface_addresses() -> list[str]:
    return [ip.ip for adapter in ifaddr.get_adapters() for ip in adapter.ips if isinstance(ip.ip, str)]


def _reachable(addresses: Iterable[str]) -> str | None:
    for address in addresses:
        ip = ipaddress.IPv4Address(address)
        if not (ip.is_loopback or ip.is_link_local or ip.is_unspecified):
            return address
    return None


def advertised_address(
    bind_host: str,
    override: str | None = None,
    *,
    routed: Callable[[], str | None] = routed_address,
    interfaces: Callable[[], list[str]] = interface_addresses,
) -> str:
    """`--zeroconf-host` if given; else the host the server is bound to, unless that is a
    wildcard; else the routed interface's address. LookupError when nothing fits."""
    if override:
        return override
    if bind_host not in WILDCARD_HOSTS:
        try:
            return socket.gethostbyname(bind_host)
        except OSError as err:
            raise LookupError(f"cannot resolve the --uri host {bind_host!r} to announce it: {err}; set --zeroconf-host") from None
    address = routed() or _reachable(interfaces())
    if address is None:
        raise LookupError("no network interface address to announce over zeroconf; set --zeroconf-host")
    return address
