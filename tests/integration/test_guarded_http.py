"""The webhook sender's HTTP session enforces the target policy where it connects."""

from __future__ import annotations

import pytest

from shared.targets import BlockedTarget, TargetPolicy, parse_allowlist
from testing.sites.server import SiteServer
from testing.tripwire import Tripwire

pytestmark = pytest.mark.integration


def test_session_reaches_allow_listed_ports_and_never_the_tripwire():
    with SiteServer(pages=1) as site, Tripwire() as wire:
        policy = TargetPolicy(block_private=True, allow=parse_allowlist(f"127.0.0.1:{site.port}"))
        session = policy.session()
        assert session.get(site.url_for("/catalog/"), timeout=5).status_code == 200
        for url in (wire.url, f"http://localhost:{wire.port}/", f"http://0x7f.1:{wire.port}/"):
            with pytest.raises(BlockedTarget):
                session.post(url, data=b"{}", timeout=5)
        # a redirect from the allowed site into the tripwire is refused at the second hop
        with pytest.raises(BlockedTarget):
            session.get(site.url_for(f"/redirect?to={wire.url}"), timeout=5)
        assert wire.hits == 0


def test_session_ignores_proxy_environment(monkeypatch):
    with Tripwire() as wire, SiteServer(pages=1) as site:
        monkeypatch.setenv("HTTP_PROXY", wire.url)
        monkeypatch.setenv("http_proxy", wire.url)
        policy = TargetPolicy(block_private=False)
        answer = policy.session().get(site.url_for("/catalog/"), timeout=5)
        assert answer.status_code == 200 and wire.hits == 0  # direct, not through the proxy
