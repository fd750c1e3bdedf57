"""The review page in headless Chromium (Debian's ``chromium`` + ``chromium-driver``, Selenium 4):
a multi-minute session of held-out EmoDB speakers scored by a small run trained on EmoDB, the
threshold slider, playing one segment, a review that survives a reload, and the export.

Screenshots (before/after the review) go to the test's folder, and to ``$OPENMER_SCREENSHOTS`` when set.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import time
from pathlib import Path

import pytest

from openmer.data.manifest import Manifest
from tests.helpers.run_folders import FAST, write_manifest
from tests.service.conftest import EMODB, Server, free_port, serve_args, session

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
selenium = pytest.importorskip("selenium", reason="the page test needs selenium (pip install selenium)")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="the page test needs Debian's chromium and chromium-driver (apt-get install -y chromium chromium-driver)")

#: EmoDB's emotion codes (6th letter of a file name)
CODES = {"W": "anger", "L": "boredom", "E": "disgust", "A": "fear", "F": "happiness", "T": "sadness", "N": "neutral"}
KNOWN = ["anger", "neutral", "sadness"]
TRAIN_SPEAKERS, SESSION_SPEAKERS = ("03", "08", "09", "10"), ("11", "12")


@pytest.fixture(scope="module")
def emodb_run(tmp_path_factory, tiny_paper_profile) -> Path:
    """ARPL on the tiny profile, trained on four EmoDB speakers' clips of three classes."""
    from openmer.training.run import train

    if not (EMODB / "wav").is_dir():
        pytest.skip(f"needs {EMODB} (see shared/README.md)")
    root = tmp_path_factory.mktemp("emodb")
    rows = [{"id": w.stem, "audio": str(w), "label": CODES[w.stem[5]], "group": w.stem[:2]}
            for w in sorted((EMODB / "wav").glob("*.wav"))
            if w.stem[:2] in TRAIN_SPEAKERS and CODES[w.stem[5]] in KNOWN]
    manifest = write_manifest(root / "train.csv", rows)
    return train(manifest, KNOWN, method="arpl", profile=tiny_paper_profile, out=root / "run", train_config=FAST,
                 modalities=["audio"], cache_dir=root / "cache", allow_outside_root=True)


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--autoplay-policy=no-user-gesture-required", "--mute-audio", "--window-size=1280,800"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": False})
    try:
        yield driver
    finally:
        driver.quit()


def _shot(driver, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    driver.save_screenshot(str(path))
    target = os.environ.get("OPENMER_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / name)
    return path


def _labels(driver) -> dict[int, str]:
    rows = driver.find_elements("css selector", "#segments tbody tr")
    return {int(r.get_attribute("data-segment")): r.get_attribute("data-label") for r in rows}


def _until(fn, timeout: float = 60.0, what: str = ""):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = fn()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_review_page_end_to_end(tmp_path, emodb_run, tiny_paper_profile, browser):
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    wavs = [w for w in sorted((EMODB / "wav").glob("*.wav")) if w.stem[:2] in SESSION_SPEAKERS][:40]
    rec = session(tmp_path / "session.wav", wavs, gap_s=1.0)  # about 2.3 minutes, speakers not trained on
    data = tmp_path / "data"
    port = free_port()
    args = serve_args(emodb_run, tiny_paper_profile, data, port)
    with Server(args, port, tmp_path / "serve.log").wait_ready() as srv:
        browser.get(srv.url + "/")
        _until(lambda: browser.find_elements("css selector", "#run option"), 20, "the models")
        browser.find_element("id", "file").send_keys(str(rec))
        browser.find_element("id", "start").click()
        _until(lambda: _labels(browser), 60, "the timeline")
        assert browser.find_element("id", "progress").get_attribute("value") == "1"
        before = _labels(browser)
        assert len(browser.find_elements("css selector", "#chart rect.seg")) == len(before)
        _shot(browser, tmp_path, "serve-before-review.png")

        slider = browser.find_element("id", "threshold")
        slider.send_keys(Keys.END)  # above every confidence: every scored segment is unknown
        high = _labels(browser)
        assert "unknown" in high.values() and set(high.values()) <= {"unknown", "error"}
        slider.send_keys(Keys.HOME)  # below every confidence: none is
        low = _labels(browser)
        assert "unknown" not in low.values() and set(low.values()) <= {*KNOWN, "error"}
        assert low != high
        browser.find_element("id", "threshold-reset").click()
        assert _labels(browser) == before
        if "unknown" not in before.values():
            slider.send_keys(Keys.END)

        row = browser.find_element("css selector", '#segments tbody tr[data-label="unknown"]')  # longest first
        n = int(row.get_attribute("data-segment"))
        job = browser.execute_script("return state.result.segments[arguments[0]]", n)
        browser.find_element("css selector", f'#chart rect.seg[data-segment="{n}"]').click()
        seeked = ("const m = document.getElementById('player'); "
                  "return m.readyState >= 1 && m.currentTime > 0 && m.currentTime;")
        t = _until(lambda: browser.execute_script(seeked), 10, "the player to seek")
        assert job["start_s"] - 0.05 <= t <= job["end_s"] + 0.05

        row = browser.find_element("css selector", f'#segments tbody tr[data-segment="{n}"]')
        Select(row.find_element("css selector", "select.choice")).select_by_value("__new__")
        row.find_element("css selector", "input.word").send_keys("contempt")
        row.find_element("css selector", "input.note").send_keys("sneers")
        row.find_element("css selector", "button.save").send_keys(Keys.ENTER)  # keyboard, not a click
        _until(lambda: "reviewed: contempt" in row.find_element("css selector", ".mark").text, 10, "the review")
        browser.execute_script("document.getElementById('timeline-section').scrollIntoView()")
        _shot(browser, tmp_path, "serve-after-review.png")

        browser.refresh()
        _until(lambda: _labels(browser), 30, "the timeline after a reload")
        mark = browser.find_element("css selector", f'#segments tbody tr[data-segment="{n}"] .mark')
        assert mark.text.strip() == "\u2713 reviewed: contempt"

        browser.find_element("id", "export-csv").click()
        text = _until(lambda: browser.execute_script("return window.lastExport"), 10, "the export")
        [exported] = list(csv.DictReader(io.StringIO(text)))
        assert exported["label"] == "contempt" and float(exported["start"]) == job["start_s"]
        [sample] = Manifest.read(data / "reviews.csv")  # what `openmer train --data` reads
        assert sample.label == "contempt" and sample.end == job["end_s"] and (data / sample.audio).is_file()
