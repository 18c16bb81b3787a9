"""The bench screen in a real browser: headless Chromium (Debian's chromium + chromium-driver)
driven by selenium. Loads the page, uploads an image, reads the result card, runs a slide
session, and saves screenshots into results/serve/.

selenium never downloads a driver here: the chromedriver path is given. Without chromium the
test skips, except under CI=true, where it fails (.ci/run installs chromium). Screenshots go
to $ALLEDGE_SCREENSHOTS when set (the committed ones: results/serve/), else to tmp_path.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from serve_helpers import plain_bundle, server, write_smears


@pytest.fixture(scope="module", autouse=True)
def _plain_bundle(tmp_path_factory):
    with plain_bundle(tmp_path_factory):
        yield

# $ALLEDGE_CHROMIUM / $ALLEDGE_CHROMEDRIVER name other binaries (and let a test hide them)
CHROMIUM = (os.environ.get("ALLEDGE_CHROMIUM") or shutil.which("chromium")
            or "/usr/bin/chromium")
CHROMEDRIVER = (os.environ.get("ALLEDGE_CHROMEDRIVER") or shutil.which("chromedriver")
                or "/usr/bin/chromedriver")


@pytest.fixture(scope="module")
def browser():
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing.append("selenium (pip install -e '.[dev]')")
    if missing:
        why = f"no {', '.join(map(str, missing))}: apt-get install chromium chromium-driver"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{why}; the browser test is required under CI=true")
        pytest.skip(why)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,1100"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def _wait(driver, condition, timeout=60):
    from selenium.webdriver.support.ui import WebDriverWait
    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(condition)


def test_upload_shows_the_result_card(browser, tmp_path):
    from selenium.webdriver.common.by import By
    shots = Path(os.environ.get("ALLEDGE_SCREENSHOTS") or tmp_path)
    images = write_smears(tmp_path / "smears", 6)
    with server(tmp_path, "--source", images[0].parent) as (port, _):
        browser.get(f"http://127.0.0.1:{port}/")
        assert "research tool, not a diagnosis" in browser.find_element(By.ID, "disclaimer").text
        # the live view from --source: a frame and the focus meter's value
        _wait(browser, lambda d: d.find_element(By.ID, "focus-value").text != "")
        assert "quality gate" in browser.find_element(By.ID, "gate").text

        browser.find_element(By.ID, "image").send_keys(str(images[1]))
        card = browser.find_element(By.ID, "result")
        _wait(browser, lambda d: "Answered" in card.text)
        assert "Class:" in card.text and images[1].name in card.text
        _wait(browser, lambda d: card.find_element(By.TAG_NAME, "img")
              .get_property("naturalWidth") > 0)
        _wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#history tbody tr")) == 1)
        shots.mkdir(parents=True, exist_ok=True)
        assert browser.save_screenshot(str(shots / "upload-result.png"))

        # a slide session: three fields captured from the live view, then the summary
        browser.find_element(By.ID, "session-name").send_keys("slide-A")
        fields = browser.find_element(By.ID, "session-fields")
        fields.clear()
        fields.send_keys("3")
        browser.find_element(By.CSS_SELECTOR, "#session-form button[type=submit]").click()
        _wait(browser, lambda d: "field 0 of 3" in d.find_element(By.ID, "session").text)
        for n in (1, 2, 3):
            browser.find_element(By.ID, "capture").click()
            _wait(browser, lambda d: f"field {n} of 3" in d.find_element(By.ID, "session").text)
        text = browser.find_element(By.ID, "session").text
        assert "Slide: inconclusive" in text and "only 3 answered" in text
        assert browser.save_screenshot(str(shots / "slide-session.png"))

        # a text file named .jpg: the card says why, in words
        junk = tmp_path / "notes.jpg"
        junk.write_text("not an image")
        browser.find_element(By.ID, "image").send_keys(str(junk))
        _wait(browser, lambda d: "Could not classify" in card.text)
        assert "not a JPEG or PNG image" in card.text


def test_a_blurred_capture_is_rejected_in_words(browser, tmp_path):
    from selenium.webdriver.common.by import By
    shots = Path(os.environ.get("ALLEDGE_SCREENSHOTS") or tmp_path)
    blurred = write_smears(tmp_path / "blurred", 2, blur=True)
    with server(tmp_path, "--source", blurred[0].parent) as (port, _):
        browser.get(f"http://127.0.0.1:{port}/")
        gate = browser.find_element(By.ID, "gate")
        _wait(browser, lambda d: "Would be rejected: out of focus" in gate.text)
        browser.find_element(By.ID, "capture").click()
        card = browser.find_element(By.ID, "result")
        _wait(browser, lambda d: "Rejected: out of focus: sharpness" in card.text)
        assert "Class:" not in card.text and "not a diagnosis" in card.text
        shots.mkdir(parents=True, exist_ok=True)
        assert browser.save_screenshot(str(shots / "rejected-capture.png"))


def test_without_chromium_ci_fails_and_a_developer_skips(tmp_path):
    run = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
           f"--basetemp={tmp_path / 'bt'}", f"{__file__}::test_upload_shows_the_result_card"]
    hidden = {**os.environ, "ALLEDGE_CHROMIUM": str(tmp_path / "no-chromium")}
    ci = subprocess.run(run, env={**hidden, "CI": "true"}, capture_output=True, text=True)
    assert ci.returncode == 1 and "required under CI=true" in ci.stdout
    dev = subprocess.run(run, env={**hidden, "CI": ""}, capture_output=True, text=True)
    assert dev.returncode == 0 and "1 skipped" in dev.stdout
