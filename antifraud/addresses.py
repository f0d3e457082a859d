"""The address blocklist (rule `ip_blocklist`), held in each process's memory.

The list is re-read at most every RULES_CACHE_SECONDS, so checking an address costs no round
trip; an admin edit applies at once in its own process and within that bound elsewhere.
"""

from __future__ import annotations

import time
from ipaddress import ip_address, ip_network

from django.utils import timezone

from antifraud.rules import ENFORCE, OFF, RuleState
from scoreboard_project import aio
from scoreboard_project.errors import Forbidden

# Refusals are recorded as decisions at most once a minute per (address, player) and process,
# so a blocked client hammering the endpoint cannot fill the database.
_recorded: dict[tuple[str, int], float] = {}
RECORD_EVERY = 60.0


def _blocked_load() -> tuple:
    from django.db.models import Q

    from antifraud.models import BlockedAddress

    rows = BlockedAddress.objects.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now()))
    return tuple((ip_network(row.network, strict=False), row.network, row.reason) for row in rows)


_blocked = aio.ProcessCopy(_blocked_load, "RULES_CACHE_SECONDS")


def blocked_networks() -> tuple:
    """(network, reason) of every blocklist entry in force."""
    return _blocked.get()


def blocklist_forget() -> None:
    _blocked.forget()


def address_blocked(address: str | None, networks) -> tuple[str, str] | None:
    """The (network, reason) that blocks `address`, or None."""
    if not address or not networks:
        return None
    parsed = ip_address(address)
    for network, text, reason in networks:
        if parsed.version == network.version and parsed in network:
            return text, reason
    return None


async def address_check(address: str | None, *, user_id: int, action_id: str, state: RuleState) -> None:
    """Refuse (enforce) or record (shadow) a score update from a blocked address."""
    if state.mode == OFF or not address:
        return
    found = address_blocked(address, await _blocked.get_async())
    if found is None:
        return
    network, reason = found
    now = time.monotonic()
    if now - _recorded.get((address, user_id), -RECORD_EVERY) >= RECORD_EVERY:
        _recorded[(address, user_id)] = now
        from antifraud.services import decision_record

        await aio.db_call(decision_record)(
            rule="ip_blocklist",
            mode=state.mode,
            outcome="refused",
            user_id=user_id,
            action_id=action_id,
            client_ip=address,
            evidence={"address": address, "blocked_network": network, "reason": reason},
        )
    if state.mode == ENFORCE:
        raise Forbidden("Score updates from this address are blocked.")
