"""Screenshots of `condgan serve`'s page for docs/serving.md, taken in headless Chromium as
tests/test_serve_browser.py drives it (Debian's chromium and chromium-driver, Selenium).

For each model: open the page on it (it generates once on open), choose "every class" in each class field
that takes several values (rows, and label B's columns for a two-stage model), set the count, generate,
and save the page as OUT/serve-NAME.png (the strip below the grid then holds both results).

Usage: PYTHONPATH=src python scripts/serve_screenshots.py [NAME=]RUN_OR_EXPORT ... [--out docs/img] [--n 8]
(a model whose fields need an upload is skipped: the page waits for a file there).
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import threading
from pathlib import Path

WAIT_S = 120


def chrome():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
    driver = shutil.which("chromedriver") or "/usr/lib/chromium/chromedriver"
    if binary is None or not Path(driver).exists():
        sys.exit("serve_screenshots: needs chromium and chromedriver (Debian: apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1100,900",
                "--no-first-run", "--disable-extensions", "--hide-scrollbars"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(driver), options=options)


def shown(driver, previous: str | None):
    """Wait for a grid that is not `previous`, decoded, with the page idle again; its src."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT_S).until(lambda d: d.execute_script(
        "const img = document.getElementById('result');"
        "return img.complete && img.naturalWidth > 0 && img.src !== arguments[0] && !document.getElementById('generate').disabled"
        " && !document.getElementById('output').hidden ? img.src : null;", previous))


def screenshot(driver, url: str, model: dict, n: int, out: Path) -> Path:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver.set_window_size(1100, 900)
    driver.get(f"{url}?model={model['name']}")
    first = shown(driver, None)
    several = [f for f in model["fields"] if f["kind"] == "class" and f.get("multiple")]
    for f in several:
        Select(driver.find_element(By.ID, f"field-{f['name']}")).select_by_value("all")
    images_per_n = math.prod(len(f["class_names"]) for f in several)
    count = driver.find_element(By.ID, "count")
    count.clear()
    count.send_keys(str(max(1, min(n, 256 // images_per_n))))
    driver.find_element(By.ID, "generate").click()
    shown(driver, first)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1100, max(900, height + 120))  # the whole page, grid and strip included
    path = out / f"serve-{model['name']}.png"
    driver.save_screenshot(str(path))
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", metavar="[NAME=]RUN_OR_EXPORT")
    parser.add_argument("--out", type=Path, default=Path("docs/img"))
    parser.add_argument("--n", type=int, default=8, help="images per row (fewer where the grid would pass 256)")
    args = parser.parse_args(argv)

    from condgan.serve.app import load_models, make_server

    models = load_models(args.models, device="cpu")
    server = make_server(models, "127.0.0.1", 0, quiet=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    args.out.mkdir(parents=True, exist_ok=True)
    driver = chrome()
    try:
        for model in (m.describe() for m in models):
            if any(f["kind"] == "image" for f in model["fields"]):
                print(f"skipped {model['name']!r}: its fields need an upload")
                continue
            print(f"wrote {screenshot(driver, server.url, model, args.n, args.out)}")
    finally:
        driver.quit()
        server.shutdown()
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
