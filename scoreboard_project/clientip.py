"""The client's address: the socket's, or X-Forwarded-For's when a trusted proxy sent it."""

from __future__ import annotations

from functools import lru_cache
from ipaddress import ip_address, ip_network

from scoreboard_project.hotsettings import hot


@lru_cache(maxsize=8)
def _networks(proxies: tuple[str, ...]):
    return tuple(ip_network(proxy, strict=False) for proxy in proxies)


def _trusted(address: str, networks) -> bool:
    try:
        parsed = ip_address(address.strip())
    except ValueError:
        return False
    return any(parsed in network for network in networks)


def client_address(remote_addr: str, forwarded_for: str | None) -> str:
    """Walk X-Forwarded-For from the right while the hops are trusted proxies (TRUSTED_PROXIES);
    the first hop that is not one is the client. A header from anyone else is ignored, since
    a client can write anything in it."""
    networks = _networks(tuple(hot.TRUSTED_PROXIES))
    if not networks or not forwarded_for or not _trusted(remote_addr, networks):
        return remote_addr
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, networks):
            return hop
    return hops[0] if hops else remote_addr


@lru_cache(maxsize=8192)
def ip_or_none(address: str | None) -> str | None:
    """The address in its canonical form, or None if it is not an IP address (cached: the
    same clients come back)."""
    try:
        return str(ip_address(address.strip())) if address else None
    except ValueError:
        return None


def request_client_address(request) -> str:
    return client_address(request.META.get("REMOTE_ADDR", ""), request.META.get("HTTP_X_FORWARDED_FOR"))
