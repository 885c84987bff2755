"""The restore page in a real browser: headless Chromium (Debian's chromium and chromedriver)
driven by Selenium uploads a real masked photo, brushes a stroke on its hole, restores again, and
saves the page as docs/images/app.png. Run by `make test-browser` only (it installs Chromium and
Selenium); `make test` deselects the `browser` marker. The shipped model serves the page.
"""

import io
import json
import time
import urllib.parse
import urllib.request

import numpy as np
import pytest
from PIL import Image

from conftest import REPO
from test_app import start_app, stop_app

pytestmark = pytest.mark.browser

PHOTO = REPO / "sample_data" / "realmask" / "0_0_50.jpg"
SCREENSHOT = REPO / "docs" / "images" / "app.png"
# Chromium on a machine with no way out: no sandbox (root), no GPU, and none of its background
# calls home (updates, sync, field trials); a fresh profile.
CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--window-size=1400,2000")


@pytest.fixture
def browser(tmp_path):
  webdriver = pytest.importorskip("selenium.webdriver", reason="make test-browser installs it")
  from selenium.webdriver.chrome.service import Service
  options = webdriver.ChromeOptions()
  options.binary_location = "/usr/bin/chromium"
  for flag in CHROMIUM_FLAGS + (f"--user-data-dir={tmp_path / 'profile'}",):
    options.add_argument(flag)
  options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
  driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
  driver.set_page_load_timeout(120)
  yield driver
  driver.quit()


@pytest.fixture
def page(tmp_path):
  proc, url = start_app([], tmp_path / "app.log")  # the shipped model
  yield url
  stop_app(proc)


def wait_for(predicate, what: str, timeout: float = 120):
  deadline = time.time() + timeout
  while time.time() < deadline:
    value = predicate()
    if isinstance(value, np.ndarray) or value:
      return value
    time.sleep(0.5)
  raise AssertionError(f"timed out waiting for {what}")


def report(driver) -> str:
  return driver.find_element("css selector", "#report textarea").get_attribute("value") or ""


def hole_download(driver, url: str) -> np.ndarray:
  """The hole PNG the page offers for download, read through its link: (H, W) uint8 0/255."""
  links = driver.find_elements("css selector", "#downloads a")
  href = next(a.get_attribute("href") for a in links if "_hole.png" in
              urllib.parse.unquote(a.get_attribute("href") or ""))
  with urllib.request.urlopen(urllib.parse.urljoin(url, href), timeout=30) as r:
    return np.asarray(Image.open(io.BytesIO(r.read())))


def outside_hosts(driver) -> set[str]:
  """Hosts other than the page's that the browser sent a network request to."""
  hosts = set()
  for entry in driver.get_log("performance"):
    message = json.loads(entry["message"])["message"]
    if message["method"] == "Network.requestWillBeSent":
      parts = urllib.parse.urlsplit(message["params"]["request"]["url"])
      # chrome://, data: and blob: URLs stay inside the browser.
      if parts.scheme in ("http", "https", "ws", "wss") and \
          parts.hostname not in ("127.0.0.1", "localhost"):
        hosts.add(parts.hostname)
  return hosts


def test_upload_brush_restore_again_in_chromium(browser, page):
  from selenium.webdriver.common.action_chains import ActionChains
  browser.get(page)
  wait_for(lambda: browser.find_elements("id", "restore"), "the page", 120)

  def uploaded():  # the file box may answer only once the page's scripts have all run
    if "0_0_50" not in browser.find_element("id", "photos").text:
      inputs = browser.find_elements("css selector", "#photos input[type=file]")
      inputs and inputs[0].send_keys(str(PHOTO))
      time.sleep(2)
    return "0_0_50" in browser.find_element("id", "photos").text
  wait_for(uploaded, "the upload", 60)
  browser.find_element("id", "restore").click()
  wait_for(lambda: "ok      0_0_50.jpg: 1 of 1 face(s) restored" in report(browser),
           "the restoration")
  before = wait_for(lambda: browser.find_elements("css selector", "#downloads a") and
                    hole_download(browser, page), "the downloads")
  # A red stroke (the brush the editor starts with) just under the mask's upper edge, its brush
  # reaching above it onto the nose (the photo fills the canvas's height): the hole grows.
  canvas = wait_for(lambda: browser.find_elements("css selector", "#hole_editor canvas"),
                    "the editor's canvas")[0]
  stroke = ActionChains(browser).move_to_element_with_offset(
      canvas, -50, canvas.size["height"] // 16).click_and_hold()
  for _ in range(10):
    stroke = stroke.move_by_offset(10, 0)
  stroke.release().perform()
  text_before = report(browser)
  browser.find_element("id", "restore_again").click()
  wait_for(lambda: report(browser) != text_before and "edited hole" in report(browser),
           "the second restoration")
  assert "ok      0_0_50.jpg: 1 of 1 face(s) restored" in report(browser), report(browser)
  after = wait_for(lambda: (lambda hole: hole if not np.array_equal(hole, before) else None)(
      hole_download(browser, page)), "the edited hole's download")
  assert after.shape == before.shape
  assert (after > 0).sum() > (before > 0).sum()  # the stroke was added to the hole
  browser.execute_script("window.scrollTo(0, 0)")
  SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
  browser.set_window_size(1400, browser.execute_script(
      "return document.body.scrollHeight") + 40)
  browser.save_screenshot(str(SCREENSHOT))
  assert outside_hosts(browser) == set()  # the page fetched nothing from outside
