"""The web page in a real headless Chromium (Debian's, driven by Playwright): list voices, upload
a clip and watch it become a voice (tiny IndexTTS model), type text and receive audio; directly
and through a stand-in of Home Assistant's ingress proxy, whose prefix the page never sees."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from wyoming_indextts.engines.indextts import IndexTTSEngine, IndexTTSOptions
from wyoming_indextts.http import HttpAddress, HttpServer, HttpSettings
from wyoming_indextts.http.library import UploadLimits
from wyoming_indextts.synthesizer import ChainSettings

from tests.http.conftest import live_server
from tests.indextts.conftest import voiced_clip, write_clip
from tests.indextts.ingress_standin import IngressProxy

CHROMIUM = "/usr/bin/chromium"
TOKEN = "page-token"
# Seeded sampling, not greedy: on the tiny GPT greedy decoding often stops at once (no audio).
OPTIONS = IndexTTSOptions(do_sample=True, diffusion_steps=2, max_mel_tokens=16, seed=3)
# Typed into the page: must show as text, never run.
HOSTILE = '<img src=x onerror="window.pwned=1">Opa'

PLAYER_DURATION = """new Promise((resolve) => {
  const player = document.getElementById("player");
  if (player.readyState >= 1) resolve(player.duration);
  else player.addEventListener("loadedmetadata", () => resolve(player.duration));
})"""

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (test extra)")
if shutil.which("chromium") is None and not Path(CHROMIUM).exists():
    pytest.skip("Debian's chromium is not installed (script/test installs it with apt-get as root)", allow_module_level=True)
expect = sync_api.expect


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    with sync_api.sync_playwright() as playwright:
        profile = tmp_path_factory.mktemp("chromium-profile")
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--autoplay-policy=no-user-gesture-required",
            ],
        )
        yield context
        context.close()


@pytest.fixture(scope="module")
def server(tiny_model_dir, piper, tmp_path_factory):
    voices = tmp_path_factory.mktemp("page") / "voices"
    write_clip(voices / "nainai.wav", voiced_clip(3.0, 22050, seed=4), 22050)
    engine = IndexTTSEngine.load(tiny_model_dir, voices, tmp_path_factory.mktemp("conditioning"), OPTIONS)
    try:
        with live_server(
            {"indextts": engine, "piper": piper},
            "en_US-joe-medium",
            chain=ChainSettings(default_deadline=120),
            settings=HttpSettings(token=TOKEN),
            uploads=UploadLimits(),
        ) as live:
            yield live
    finally:
        engine.close()


@pytest.fixture(scope="module")
def ingress(server):
    proxy = IngressProxy(server.base_url)
    http = HttpServer(proxy, HttpAddress("127.0.0.1", 0))  # type: ignore[arg-type]
    server.run(http.start())
    yield f"http://127.0.0.1:{http.port}{proxy.prefix}/"
    server.run(http.stop())
    server.run(proxy.client.aclose())


def use_the_page(browser, url: str, clip: Path, voice: str) -> None:
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(url)
    page.fill("#token", TOKEN)
    page.dispatch_event("#token", "change")
    page.wait_for_selector("tr[data-voice=nainai]")
    assert "Engine indextts" in page.inner_text("#status")
    expect(page.locator("#status")).to_contain_text("Pre-rendersnone listed")

    page.fill("#upload-form input[name=name]", voice)
    page.fill("#upload-form input[name=description]", HOSTILE)
    page.fill("#upload-form input[name=languages]", "zh")
    page.set_input_files("#upload-form input[name=file]", str(clip))
    page.click("#upload-form button[type=submit]")
    # Locators, not wait_for_function: the page's CSP (rightly) forbids evaluating strings.
    expect(page.locator("#upload-status")).to_contain_text("ready", timeout=120_000)
    row = page.locator(f"tr[data-voice={voice}]")
    row.wait_for()
    assert row.locator("td").nth(3).inner_text() == HOSTILE
    assert page.locator("img").count() == 0 and not page.evaluate("window.pwned")

    page.fill("#speak-text", "欢迎回家。")
    page.select_option("#speak-voice", voice)
    with page.expect_response(lambda r: r.url.endswith("v1/audio/speech")) as speech:
        page.click("#speak-form button[type=submit]")
    assert speech.value.status == 200 and speech.value.headers["x-voice"] == voice
    expect(page.locator("#speak-status")).to_contain_text("Done", timeout=120_000)
    seconds = float(page.inner_text("#speak-status").split()[1])
    assert seconds > 0
    # The replay copy the page built from the streamed PCM is a WAV the browser can decode.
    duration = page.evaluate(PLAYER_DURATION)
    assert abs(duration - seconds) < 0.01

    page.click(f"tr[data-voice={voice}] button:has-text('Delete')")
    page.wait_for_selector(f"tr[data-voice={voice}]", state="detached")
    assert errors == []
    page.close()


def test_page_uploads_a_voice_and_speaks_with_it(browser, server, tmp_path):
    clip = write_clip(tmp_path / "opa.wav", voiced_clip(4.0, 44100, seed=9), 44100)
    use_the_page(browser, server.base_url + "/", clip, "opa")
    assert "opa" not in {voice.name for voice in server.harness.catalogue.voices()}


def test_page_works_behind_an_ingress_prefix(browser, server, ingress, tmp_path):
    import soundfile as sf

    clip = tmp_path / "oma.ogg"
    sf.write(clip, voiced_clip(4.0, 16000, seed=5), 16000, format="OGG", subtype="VORBIS")
    use_the_page(browser, ingress, clip, "oma")
