"""Where webhooks may go: public addresses only, unless the operator allows others.

A subscription's URL is checked when it is added and again before every delivery, because what a name resolves
to can change (DNS rebinding): every address the host resolves to must be public, and the delivery connects to
the address that was checked (the name still goes in the ``Host`` header and as TLS's server name, so the
certificate is verified for it), never resolving the name a second time. Loopback, private, link-local,
multicast, reserved, unspecified and other non-public addresses (carrier-grade NAT, documentation ranges) are
refused: a webhook must not be a way into the network the service runs in.
``webhook_allow_private_addresses`` turns the check off (a receiver on the same host or network; the tests).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass

import httpx

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

ALLOW_SETTING = "ASSISTANT_WEBHOOK_ALLOW_PRIVATE_ADDRESSES"


class AddressRefused(Exception):
    """The URL's host is, or resolves to, an address webhooks may not go to; the message says which and why."""


def kind_refused(address: Address) -> str | None:
    """Why ``address`` is no place for a webhook (its kind, in words), or None for a public address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for kind, refused in (("a loopback", address.is_loopback), ("a link-local", address.is_link_local),
                          ("a multicast", address.is_multicast), ("an unspecified", address.is_unspecified),
                          ("a reserved", address.is_reserved), ("a private", address.is_private)):
        if refused:
            return f"{kind} address"
    return None if address.is_global else "not a public address"


async def resolve(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to now (the system's resolver, off the event loop), first ones first."""
    found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]).split("%")[0] for info in found))


async def public_addresses(host: str, port: int) -> list[str]:
    """Every address ``host`` is or resolves to, if all are public; ``AddressRefused`` otherwise."""
    try:
        literal: Address | None = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        try:
            addresses = [ipaddress.ip_address(found) for found in await resolve(host, port)]
        except (socket.gaierror, UnicodeError) as exc:
            raise AddressRefused(f"{host} does not resolve ({getattr(exc, 'strerror', None) or exc})") from None
    for address in addresses:
        kind = kind_refused(address)
        if kind is not None:
            raise AddressRefused(f"{host} is {kind}" if literal is not None
                                 else f"{host} resolves to {kind} ({address})")
    return [str(a) for a in addresses]


@dataclass(frozen=True)
class Pinned:
    """A request aimed at one checked address: the URL with that address for its host, the ``Host`` header and
    the TLS server name of the original."""

    url: str
    host_header: str
    server_name: str


async def pin(url: str) -> Pinned:
    """``url`` aimed at the first of its host's public addresses; ``AddressRefused`` if any is not public."""
    parsed = httpx.URL(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    first = (await public_addresses(parsed.host, port))[0]
    return Pinned(url=str(parsed.copy_with(host=first)), host_header=parsed.netloc.decode("ascii"),
                  server_name=parsed.host)


__all__ = ["ALLOW_SETTING", "AddressRefused", "Pinned", "kind_refused", "pin", "public_addresses", "resolve"]
