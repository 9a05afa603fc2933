"""Settings that refuse what they cannot use, naming the setting."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from casebook.settings import Settings


def test_trusted_proxies_are_addresses_networks_or_any() -> None:
    settings = Settings(api_trusted_proxies=" 10.0.0.0/8, 127.0.0.1 ,*, ::1")

    assert settings.api_trusted_proxies == "10.0.0.0/8,127.0.0.1,*,::1"


def test_a_trusted_proxy_that_is_no_address_is_refused_by_name() -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(api_trusted_proxies="10.0.0.1,proxy.internal")

    [error] = refused.value.errors()
    assert error["loc"] == ("api_trusted_proxies",)
    assert "'proxy.internal' is not an IP address or network" in error["msg"]


def test_no_proxy_is_trusted_by_default() -> None:
    assert Settings().api_trusted_proxies == ""
