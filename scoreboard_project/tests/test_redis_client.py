"""The hot path's asyncio Redis connection: commands packed by hiredis, byte for byte as
redis-py packs them."""

import pytest
import redis.asyncio.connection as aconnection
from redis.exceptions import DataError

from scoreboard_project.redis import AsyncBreakerConnection

COMMANDS = [
    ("EVALSHA", "0" * 40, 2, "ratelimit:global", "idem:x", 60000, 1.5, "é\tquest", b"\x00\xff"),
    ("CLIENT SETNAME", "scoreboard"),
    ("SET", "key", -3.25e-10, "EX", 12345678901234567890),
]


@pytest.mark.parametrize("command", COMMANDS)
def test_commands_are_packed_as_redis_py_packs_them(command):
    ours = AsyncBreakerConnection()
    assert type(ours).pack_command is not aconnection.Connection.pack_command  # hiredis is installed
    assert b"".join(ours.pack_command(*command)) == b"".join(aconnection.Connection().pack_command(*command))


@pytest.mark.parametrize("value", [True, None, object()])
def test_what_redis_py_refuses_is_refused(value):
    with pytest.raises(DataError):
        AsyncBreakerConnection().pack_command("SET", "key", value)
