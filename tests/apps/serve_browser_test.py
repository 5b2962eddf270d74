"""glia-serve's page in headless Chromium (Selenium): the fixture's tumour and no-tumour phantoms
are uploaded together through the page's file picker; the test waits for both results and checks
that each probability shown (the bar's text and the card's exact value) equals the API's JSON for
the same file, that the mask panel and its area are shown for the tumour and hidden for the
other, that the Grad-CAM is shown for both, that the results table has a row per file, that the
model panel shows the parameter count of /model/info, and that the disclaimer is visible. Then a
non-image shows the API's error. Saves DIR/serve-page.png (a screenshot of the two results).

usage: serve_browser_test.py GLIA_SERVE GLIA_SERVE_FIXTURE DIR [CKPT TUMOUR NO_TUMOUR]
The optional three run the same checks on another checkpoint and pair of images (a trained
model's screenshot for bench/results/); the images must fall on either side of cls_threshold.
Exit status 77 (ctest: skipped) when chromium, chromedriver or selenium is missing."""

import json
import os
import shutil
import subprocess
import sys
import urllib.request

SKIP = 77


def skip(why):
    print(f"SKIPPED: {why}")
    sys.exit(SKIP)


try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:
    skip("python3-selenium is not installed (scripts/setup installs it)")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
if not CHROMIUM or not DRIVER:
    skip("chromium or chromedriver is not installed (scripts/setup installs them)")


def api(port, path, data=None, content_type="application/octet-stream"):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data)
    if data is not None:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.load(response)
    except urllib.error.HTTPError as e:
        return json.load(e)


def main():
    serve_bin, fixture_bin, out = sys.argv[1:4]
    os.makedirs(out, exist_ok=True)
    if len(sys.argv) == 7:
        checkpoint, tumour, no_tumour = sys.argv[4:7]
    else:
        checkpoint, tumour, no_tumour = subprocess.run(
            [fixture_bin, os.path.join(out, "fixture")], check=True, capture_output=True,
            text=True).stdout.split()
    # As scripts/serve runs it: spinning OpenMP threads would take the cores from the requests.
    env = dict(os.environ, OMP_WAIT_POLICY=os.environ.get("OMP_WAIT_POLICY", "passive"))
    server = subprocess.Popen([serve_bin, "--checkpoint", checkpoint, "--port", "0"],
                              stdout=subprocess.PIPE, text=True, env=env)
    driver = None
    try:
        line = server.stdout.readline()
        assert "listening on http://" in line, line
        port = int(line.strip().rstrip("/").rsplit(":", 1)[1])
        want = {}
        for path in (tumour, no_tumour):
            with open(path, "rb") as f:
                want[os.path.basename(path)] = api(port, "/predict_multitask", f.read(), "image/png")
        info = api(port, "/model/info")

        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1280,1500"):
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service(DRIVER), options=options)
        driver.get(f"http://127.0.0.1:{port}/")
        wait = WebDriverWait(driver, 60)
        wait.until(lambda d: d.find_element(By.ID, "model-facts"))
        facts = driver.find_element(By.ID, "model-facts").text
        assert f"{info['parameters']['total']:,}" in facts, facts
        assert driver.find_element(By.ID, "disclaimer").is_displayed()
        assert "not a diagnosis" in driver.find_element(By.ID, "disclaimer").text

        driver.find_element(By.ID, "file-input").send_keys(f"{tumour}\n{no_tumour}")
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-done") == "2")
        for name, answer in want.items():
            card = driver.find_element(By.CSS_SELECTOR, f'.card[data-file="{name}"]')
            assert card.get_attribute("data-state") == "done", (name, card.text)
            p = answer["classification"]["tumor_probability"]
            # The exact number the page received, and the one it shows.
            assert float(card.get_attribute("data-probability")) == p, (name, p)
            shown = card.find_element(By.CSS_SELECTOR, '[data-testid="probability"]').text
            assert shown == f"{100 * p:.2f}%", (name, shown, p)
            mask = card.find_element(By.CSS_SELECTOR, 'figure[data-panel="mask"]')
            stats = card.find_element(By.CSS_SELECTOR, '[data-testid="mask-stats"]')
            cam = card.find_element(By.CSS_SELECTOR, 'figure[data-panel="gradcam"]')
            assert cam.is_displayed(), name
            verdict = card.find_element(By.CSS_SELECTOR, '[data-testid="verdict"]').text
            recommendation = card.find_element(By.CSS_SELECTOR, '[data-testid="recommendation"]').text
            assert answer["recommendation"] in recommendation, (name, recommendation)
            if answer["segmentation"]["mask_available"]:
                assert mask.is_displayed() and stats.is_displayed(), name
                assert f"{answer['segmentation']['tumor_area_pixels']} px" in stats.text, stats.text
                assert "Tumour detected" in verdict, verdict
            else:
                assert not mask.is_displayed() and not stats.is_displayed(), name
                assert "No tumour detected" in verdict, verdict
            print(f"{name}: p = {p:.4f}, shown {shown}, verdict '{verdict}', mask "
                  f"{'shown' if mask.is_displayed() else 'hidden'}")
        assert want[os.path.basename(tumour)]["segmentation"]["mask_available"]
        assert not want[os.path.basename(no_tumour)]["segmentation"]["mask_available"]
        rows = driver.find_elements(By.CSS_SELECTOR, "#results-table tbody tr")
        assert len(rows) == 2 and driver.find_element(By.ID, "results-table").is_displayed()
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1280, height + 40)
        screenshot = os.path.join(out, "serve-page.png")
        driver.save_screenshot(screenshot)
        print(f"screenshot: {screenshot}")

        # An upload the API refuses: its error is shown on the page.
        bad = os.path.join(out, "notes.png")
        with open(bad, "w") as f:
            f.write("not an image")
        driver.find_element(By.ID, "file-input").send_keys(bad)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, '.card[data-file="notes.png"][data-state="error"]'))
        error = driver.find_element(By.CSS_SELECTOR, '[data-testid="error"]').text
        assert "not an image" in error and "400" in error, error
        print("browser test passed")
    finally:
        if driver is not None:
            driver.quit()
        server.terminate()
        assert server.wait(timeout=30) == 0, "glia-serve did not exit 0 on SIGTERM"


if __name__ == "__main__":
    main()
