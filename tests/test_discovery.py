"""Zeroconf announces an address another machine can connect to, never 0.0.0.0: the address
choice on its own, then a real announcement browsed over multicast on this machine."""

from __future__ import annotations

import subprocess
import uuid

import pytest
from wyoming.client import AsyncTcpClient
from wyoming.info import Describe
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from wyoming_indextts.discovery import advertised_address, interface_addresses, routed_address

from .test_cli import SERVER, free_port, wait_for_port


def test_a_wildcard_bind_announces_the_routed_interface_address():
    address = advertised_address("0.0.0.0")
    assert address in interface_addresses()
    assert address not in ("0.0.0.0", "127.0.0.1")
    assert advertised_address("::") == address


def test_without_a_route_the_first_usable_interface_address_is_announced():
    def no_route() -> None:
        return None

    def interfaces() -> list[str]:
        return ["127.0.0.1", "169.254.7.1", "192.168.1.20", "10.0.0.2"]

    assert advertised_address("0.0.0.0", routed=no_route, interfaces=interfaces) == "192.168.1.20"
    with pytest.raises(LookupError, match="--zeroconf-host"):
        advertised_address("0.0.0.0", routed=no_route, interfaces=lambda: ["127.0.0.1", "169.254.7.1"])


def test_a_specific_bind_address_and_the_override_are_announced_as_given():
    assert advertised_address("127.0.0.1") == "127.0.0.1"
    assert advertised_address("localhost") == "127.0.0.1"
    assert advertised_address("0.0.0.0", "192.168.1.50") == "192.168.1.50"
    assert advertised_address("127.0.0.1", "192.168.1.50") == "192.168.1.50"
    with pytest.raises(LookupError, match="--uri host 'no-such-host.invalid'"):
        advertised_address("no-such-host.invalid")


async def browse(name: str) -> AsyncServiceInfo | None:
    aiozc = AsyncZeroconf()
    try:
        info = AsyncServiceInfo("_wyoming._tcp.local.", f"{name}._wyoming._tcp.local.")
        return info if await info.async_request(aiozc.zeroconf, 5000) else None
    finally:
        await aiozc.async_close()


@pytest.mark.skipif(routed_address() is None, reason="no interface routes multicast here: the address choice is tested above")
async def test_the_announcement_browsed_on_this_machine_leads_to_the_server(tmp_path):
    name = f"indextts-test-{uuid.uuid4().hex[:8]}"
    port = free_port()
    process = subprocess.Popen(
        [*SERVER, "--uri", f"tcp://0.0.0.0:{port}", "--data-dir", str(tmp_path), "--zeroconf", name],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        await wait_for_port(port, process)
        info = await browse(name)
        assert info is not None, "the announcement was not seen"
        assert info.port == port
        addresses = info.parsed_addresses()
        assert addresses and "0.0.0.0" not in addresses
        async with AsyncTcpClient(addresses[0], port) as client:
            await client.write_event(Describe().event())
            event = await client.read_event()
        assert event is not None and event.type == "info"
    finally:
        process.terminate()
        process.communicate(timeout=30)
