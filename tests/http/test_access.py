"""Who may change what, on real sockets: the peer is the socket's address (a forged
X-Forwarded-For is no trusted peer), a page of another site cannot make the browser change
anything, a name rebound to this machine (DNS rebinding) reads nothing, and the trusted peer
(Home Assistant's ingress proxy, forwarding the browser's own headers) still works."""

from __future__ import annotations

import httpx
import pytest

from wyoming_indextts.http import HttpSettings

from tests.http.conftest import live_server

TOKEN = "access-token"
PEER = "127.0.0.2"
"""The trusted peer: another loopback address, so the test can be it (or not) by its socket."""
TEXT = "The garage door is open."
NOT_A_VOICE = "/v1/voices/nobody"
UPLOADS_OFF = 409
"""What DELETE answers when it got past the guard: no uploads on this server (no IndexTTS)."""


@pytest.fixture(scope="module")
def live(piper):
    settings = HttpSettings(token=TOKEN, trusted_peers=frozenset({PEER}), allowed_hosts=frozenset({"tts.lan"}))
    with live_server({"piper": piper}, settings=settings) as server:
        yield server


def client(live, local_address: str = "127.0.0.1") -> httpx.Client:
    return httpx.Client(base_url=live.base_url, transport=httpx.HTTPTransport(local_address=local_address), timeout=60)


def code(response: httpx.Response) -> str:
    return response.json()["error"]["code"]


@pytest.mark.parametrize(
    "forged",
    [
        {"X-Forwarded-For": PEER},
        {"X-Forwarded-For": f"{PEER}, {PEER}"},
        {"X-Real-IP": PEER},
        {"Forwarded": f"for={PEER}"},
    ],
)
def test_a_forged_forwarded_header_is_no_trusted_peer(live, forged):
    with client(live) as anyone:
        refused = anyone.delete(NOT_A_VOICE, headers=forged)
        upload = anyone.post("/v1/voices", headers=forged, data={"name": "x"}, files={"file": ("a.wav", b"RIFF")})
    assert refused.status_code == 401 and code(refused) == "unauthorized"
    assert upload.status_code == 401
    with client(live, PEER) as peer:
        assert peer.delete(NOT_A_VOICE).status_code == UPLOADS_OFF


def test_the_forwarded_peer_counts_only_from_a_trusted_proxy(piper):
    settings = HttpSettings(token=TOKEN, trusted_peers=frozenset({PEER}), trusted_proxies=frozenset({"127.0.0.1"}))
    with live_server({"piper": piper}, settings=settings) as live:
        with client(live) as proxy:
            assert proxy.delete(NOT_A_VOICE, headers={"X-Forwarded-For": PEER}).status_code == UPLOADS_OFF
            assert proxy.delete(NOT_A_VOICE).status_code == 401, "the proxy itself is not the trusted peer"
        with client(live, "127.0.0.3") as stranger:
            assert stranger.delete(NOT_A_VOICE, headers={"X-Forwarded-For": PEER}).status_code == 401


@pytest.mark.parametrize(
    "browser",
    [
        {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"},
        {"Origin": "http://localhost:3000", "Sec-Fetch-Site": "same-site"},
        {"Origin": "http://evil.example"},  # a browser without Sec-Fetch-*
        {"Origin": "null"},  # a sandboxed frame or a file: page
    ],
)
def test_a_page_of_another_site_changes_nothing(live, browser):
    # The browser is the trusted peer (the add-on's ingress proxy forwards its headers) or the
    # loopback user's browser: either way a form another site posts is refused.
    form = {"data": {"name": "planted", "description": "x"}, "files": {"file": ("a.wav", b"RIFF....WAVE", "audio/wav")}}
    with client(live, PEER) as peer:
        for response in (
            peer.post("/v1/voices", headers=browser, **form),
            peer.delete(NOT_A_VOICE, headers=browser),
            peer.post("/v1/prerender", headers=browser, json={"voice": "en_US-joe-medium", "text": "Planted."}),
        ):
            assert response.status_code == 403 and code(response) == "cross_site", response.text
    with client(live) as loopback:
        # Speech needs no token on loopback, so the site check is what refuses it.
        speech = loopback.post("/tts", headers=browser, content=f'{{"text": "{TEXT}"}}')
        assert speech.status_code == 403 and code(speech) == "cross_site"
        assert loopback.delete(NOT_A_VOICE, headers=browser).status_code == 401


def test_the_ingress_proxy_forwarding_its_browser_still_works(live):
    # What the Supervisor sends: the browser's Host, Origin and Sec-Fetch-Site, its own X-Forwarded-For.
    browser = {
        "Host": "homeassistant.local:8123",
        "Origin": "http://homeassistant.local:8123",
        "Sec-Fetch-Site": "same-origin",
        "X-Forwarded-For": "None, 192.168.1.20",
    }
    with client(live, PEER) as peer:
        assert peer.delete(NOT_A_VOICE, headers=browser).status_code == UPLOADS_OFF
        assert peer.get("/v1/voices", headers=browser).status_code == 200
        no_fetch_metadata = {key: value for key, value in browser.items() if key != "Sec-Fetch-Site"}
        assert peer.delete(NOT_A_VOICE, headers=no_fetch_metadata).status_code == UPLOADS_OFF


def test_tokenless_speech_is_refused_to_other_sites(piper):
    with live_server({"piper": piper}) as live:  # loopback, no token: speech needs none
        url = f"{live.base_url}/tts"
        own = {"Origin": live.base_url, "Sec-Fetch-Site": "same-origin"}
        assert httpx.post(url, json={"text": TEXT}, headers=own, timeout=60).status_code == 200
        assert httpx.post(url, json={"text": TEXT}, timeout=60).status_code == 200  # curl, scripts
        other = httpx.post(url, json={"text": TEXT}, headers={"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"})
        assert other.status_code == 403 and code(other) == "cross_site"


def test_a_rebound_host_name_reads_nothing_without_the_token(piper):
    settings = HttpSettings(allowed_hosts=frozenset({"tts.lan", "0.0.0.0"}))  # 0.0.0.0: a --http-uri host
    with live_server({"piper": piper}, settings=settings) as live:
        port = live.http.port
        with client(live) as browser:
            rebound = browser.get("/v1/voices", headers={"Host": f"evil.example:{port}"})
            assert rebound.status_code == 400 and code(rebound) == "unknown_host"
            assert "--http-allowed-host" in rebound.json()["error"]["message"]
            speech = browser.post("/tts", json={"text": TEXT}, headers={"Host": "evil.example"})
            assert speech.status_code == 400
            # Pages reach local servers through 0.0.0.0 (the "0.0.0.0 day"): it is no name of ours.
            assert browser.get("/v1/voices", headers={"Host": f"0.0.0.0:{port}"}).status_code == 400
            for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}", "LOCALHOST.", f"127.0.0.9:{port}", f"tts.lan:{port}"):
                assert browser.get("/v1/voices", headers={"Host": host}).status_code == 200, host
            # The page's files hold no data: any name may load them (then it asks for the token).
            assert browser.get("/", headers={"Host": "evil.example"}).status_code == 200


def test_the_token_is_enough_whatever_the_host(live):
    with client(live, "127.0.0.3") as network:
        response = network.get("/v1/voices", headers={"Host": "homeassistant.local:8099", "Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 200
        assert network.get("/v1/voices", headers={"Host": "homeassistant.local:8099"}).status_code == 400


def test_refused_requests_are_counted_by_their_route(piper):
    with live_server({"piper": piper}, settings=HttpSettings(token=TOKEN)) as live, client(live) as anyone:
        anyone.delete("/v1/voices/one")
        anyone.delete("/v1/voices/two")
        anyone.get("/v1/voices", headers={"Host": "evil.example"})
        metrics = anyone.get("/metrics").text
    assert 'wyoming_indextts_http_requests_total{route="/v1/voices/{name}",status="401"} 2.0' in metrics
    assert 'wyoming_indextts_http_requests_total{route="/v1/voices",status="400"} 1.0' in metrics
    assert 'route="unmatched",status="401"' not in metrics
