"""ProcessCopy: the hot path's in-process copies of database rows (rules, action types,
blocked addresses), refreshed once in the background when they are past their TTL."""

import asyncio
import threading
import time

import pytest
from django.test import override_settings

from scoreboard_project.aio import ProcessCopy


class Source:
    """A loader that counts its calls and can be held inside a load."""

    def __init__(self) -> None:
        self.value = "v1"
        self.calls = 0
        self.gate = threading.Event()
        self.gate.set()

    def load(self) -> str:
        self.calls += 1
        value = self.value
        assert self.gate.wait(5)
        return value


def expire(copy: ProcessCopy) -> None:
    copy.fresh_until = time.monotonic() - 1


@override_settings(ACTION_TYPES_CACHE_SECONDS=60)
def test_past_its_ttl_many_readers_get_the_copy_while_one_refresh_runs():
    source = Source()
    copy = ProcessCopy(source.load, "ACTION_TYPES_CACHE_SECONDS")

    async def scenario():
        assert await copy.get_async() == "v1"
        expire(copy)
        source.value = "v2"
        source.gate.clear()  # the refresh stays in the database until released
        answers = await asyncio.gather(*(copy.get_async() for _ in range(100)))
        assert answers == ["v1"] * 100  # nobody waited for the database
        assert copy.refreshing is not None and not copy.refreshing.done()
        source.gate.set()
        await copy.refreshing
        return await copy.get_async()

    assert asyncio.run(scenario()) == "v2"
    assert source.calls == 2  # the first load and one refresh, not one per reader


@override_settings(ACTION_TYPES_CACHE_SECONDS=60)
def test_a_forgotten_copy_is_read_again_at_once_and_a_refresh_under_way_does_not_restore_it():
    source = Source()
    copy = ProcessCopy(source.load, "ACTION_TYPES_CACHE_SECONDS")

    async def scenario():
        await copy.get_async()
        expire(copy)
        source.gate.clear()
        assert await copy.get_async() == "v1"  # the refresh of "v1" is now under way
        refresh = copy.refreshing
        copy.forget()  # an admin edit lands meanwhile
        source.value = "v2"
        source.gate.set()
        await refresh
        return await copy.get_async()

    assert asyncio.run(scenario()) == "v2"


def test_a_ttl_of_zero_reads_the_database_every_time():
    source = Source()
    with override_settings(ACTION_TYPES_CACHE_SECONDS=0):
        copy = ProcessCopy(source.load, "ACTION_TYPES_CACHE_SECONDS")

        async def scenario():
            for value in ("a", "b", "c"):
                source.value = value
                assert await copy.get_async() == value

        asyncio.run(scenario())
        for value in ("d", "e"):
            source.value = value
            assert copy.get() == value


def test_changing_the_ttl_setting_drops_the_copy():
    source = Source()
    with override_settings(ACTION_TYPES_CACHE_SECONDS=3600):
        copy = ProcessCopy(source.load, "ACTION_TYPES_CACHE_SECONDS")
        assert copy.get() == "v1"
        source.value = "v2"
        assert copy.get() == "v1"
    assert copy.loaded_at == 0  # the TTL it was read with no longer applies
    assert copy.get() == "v2"


@override_settings(ACTION_TYPES_CACHE_SECONDS=60)
def test_a_failed_refresh_keeps_the_previous_copy(caplog):
    source = Source()
    copy = ProcessCopy(source.load, "ACTION_TYPES_CACHE_SECONDS")

    async def scenario():
        await copy.get_async()
        expire(copy)
        copy._load = lambda: 1 / 0  # the database fails
        assert await copy.get_async() == "v1"
        with pytest.raises(ZeroDivisionError):
            await copy.refreshing
        assert await copy.get_async() == "v1"  # still served; another refresh is tried

    asyncio.run(scenario())
    assert "background refresh failed" in caplog.text
