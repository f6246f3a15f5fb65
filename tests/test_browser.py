"""The page at ``/`` in a real browser: headless Chromium (Debian's ``chromium`` and
``chromium-driver``; ``.ci/run`` installs them) loads it from a live ``emotune serve``, a text is
typed, the button clicked, and the label is read from the rendered DOM. The screenshot goes to
the test's temporary folder, or to ``$EMOTUNE_SCREENSHOT`` when set (how
``benchmarks/results/serve-page.png`` is refreshed), so a test run never rewrites a tracked file."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from conftest import AUTH, KEY

webdriver = pytest.importorskip("selenium.webdriver")
DRIVER = shutil.which("chromedriver")
BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = pytest.mark.skipif(not (DRIVER and BROWSER), reason="needs chromium and chromium-driver")


@pytest.fixture
def browser():  # type: ignore[no-untyped-def]
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=900,1000"):
        options.add_argument(flag)
    options.binary_location = BROWSER
    driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def test_typing_a_text_shows_its_label_and_bars(server: str, browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    from emotune.inference.predict import Predictor

    browser.get(f"{server}/")
    browser.find_element(By.TAG_NAME, "summary").click()  # opens the key field
    browser.find_element(By.ID, "key").send_keys(KEY)
    browser.find_element(By.ID, "text").send_keys("a wonderful film")
    browser.find_element(By.ID, "go").click()
    WebDriverWait(browser, 60).until(lambda d: d.find_element(By.ID, "label").get_attribute("data-label"))
    shown = browser.find_element(By.ID, "label").get_attribute("data-label")
    bars = [row.get_attribute("data-label") for row in browser.find_elements(By.CSS_SELECTOR, "#bars .row")]
    WebDriverWait(browser, 30).until(ready.text_to_be_present_in_element((By.ID, "model"), "labels:"))
    info = browser.find_element(By.ID, "model").text
    screenshot = Path(os.environ.get("EMOTUNE_SCREENSHOT") or tmp_path / "serve-page.png")
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(screenshot))
    run = Path(httpx_model(server)["run"])
    assert shown == Predictor.load(run).predict("a wonderful film")[0].label
    assert sorted(bars) == ["negative", "positive"]
    assert "negative, positive" in info
    assert browser.find_element(By.ID, "error").text == ""


def httpx_model(server: str) -> dict[str, object]:
    import httpx

    return dict(httpx.get(f"{server}/v1/model", headers=AUTH).json())


def test_the_page_highlights_the_words_that_decided_and_abstains(server: str, browser) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from emotune.inference.predict import Predictor

    browser.get(f"{server}/")
    browser.find_element(By.TAG_NAME, "summary").click()
    browser.find_element(By.ID, "key").send_keys(KEY)
    browser.find_element(By.ID, "text").send_keys("a wonderful film")
    browser.find_element(By.ID, "explain").click()
    WebDriverWait(browser, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#why .word"))
    spans = browser.find_elements(By.CSS_SELECTOR, "#why .word")
    expected = Predictor.load(Path(httpx_model(server)["run"])).explain("a wonderful film")[0]
    assert [s.text for s in spans] == ["a", "wonderful", "film"]
    for span, (word, score) in zip(spans, expected.words, strict=True):
        assert span.text == word and float(span.get_attribute("data-score")) == pytest.approx(score, abs=1e-5)
        warm = score >= 0
        assert ("230, 110, 40" in span.get_attribute("style")) == warm  # warm for the label, cool against
    # A minimum confidence above every probability: no label, the bars still shown.
    browser.find_element(By.ID, "minconf").send_keys("1")
    browser.find_element(By.ID, "go").click()
    WebDriverWait(browser, 60).until(lambda d: "no label" in d.find_element(By.ID, "label").text)
    assert browser.find_element(By.ID, "label").get_attribute("class") == "abstained"
    assert len(browser.find_elements(By.CSS_SELECTOR, "#bars .row")) == 2


def test_the_page_takes_labels_per_request(server: str, browser) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{server}/")
    browser.find_element(By.TAG_NAME, "summary").click()
    browser.find_element(By.ID, "key").send_keys(KEY)
    browser.find_element(By.ID, "text").send_keys("a wonderful film")
    browser.find_element(By.ID, "labels").send_keys("joy, anger, sadness")
    browser.find_element(By.ID, "go").click()
    WebDriverWait(browser, 60).until(lambda d: d.find_element(By.ID, "label").get_attribute("data-label"))
    bars = [row.get_attribute("data-label") for row in browser.find_elements(By.CSS_SELECTOR, "#bars .row")]
    assert sorted(bars) == ["anger", "joy", "sadness"]
    assert browser.find_element(By.ID, "label").get_attribute("data-label") in bars
