"""Client addresses behind trusted proxies, and forged X-Forwarded-For ignored."""

import pytest

from scoreboard_project.clientip import client_address


@pytest.fixture
def proxies(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8", "192.0.2.7"]


def test_without_trusted_proxies_the_socket_address_counts(settings):
    settings.TRUSTED_PROXIES = []
    assert client_address("198.51.100.4", "203.0.113.9") == "198.51.100.4"


def test_a_trusted_proxy_passes_the_client_on(proxies):
    assert client_address("10.1.2.3", "203.0.113.9") == "203.0.113.9"


def test_a_chain_of_trusted_proxies_is_walked_from_the_right(proxies):
    assert client_address("10.1.2.3", "203.0.113.9, 192.0.2.7, 10.9.9.9") == "203.0.113.9"


def test_hops_a_client_wrote_itself_are_not_believed(proxies):
    # The client claims to be 1.2.3.4; the first untrusted hop from the right is the client.
    assert client_address("10.1.2.3", "1.2.3.4, 203.0.113.9") == "203.0.113.9"


def test_a_header_from_an_untrusted_peer_is_ignored(proxies):
    assert client_address("198.51.100.4", "203.0.113.9") == "198.51.100.4"


def test_garbage_hops_are_not_trusted(proxies):
    assert client_address("10.1.2.3", "not-an-ip") == "not-an-ip"
