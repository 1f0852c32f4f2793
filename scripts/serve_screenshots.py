"""Screenshots of `condgan serve`'s page for docs/serving.md, taken in headless Chromium as
tests/test_serve_browser.py drives it (Debian's chromium and chromium-driver, Selenium).

For each model that generates: open the page on it (it generates once on open), choose "every class" in each
class field that takes several values (rows, and label B's columns for a two-stage model), set the count,
generate, and save the page as OUT/serve-NAME.png (the strip below the grid then holds both results). A model
that interpolates also gets OUT/serve-NAME-strip.png: every class, one seed-to-seed strip each (--seeds, --steps).
A similarity model gets OUT/serve-NAME-compare.png (the Compare tab on --compare A B) and, with a
--search-folder and a --query, OUT/serve-NAME-search.png (the Search tab's nearest --k images).

Usage: PYTHONPATH=src python scripts/serve_screenshots.py [NAME=]RUN_OR_EXPORT ... [--out docs/img] [--n 8]
       [--seeds 0 7] [--steps 10] [--search-folder [NAME=]DIR] [--compare A.png B.png] [--query Q.png] [--k 12]
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
    return whole_page(driver, out / f"serve-{model['name']}.png")  # the whole page, grid and strip included


def whole_page(driver, path: Path) -> Path:
    """Grow the window to the page's height (the results included) and save it."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1100, max(900, height + 120))
    driver.save_screenshot(str(path))
    return path


def strip(driver, url: str, model: dict, seeds: list[int], steps: int, out: Path) -> Path:
    """Every class of the model, one strip each from seed A to seed B."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver.set_window_size(1100, 900)
    driver.get(f"{url}?model={model['name']}")
    first = shown(driver, None)
    Select(driver.find_element(By.ID, "field-label")).select_by_value("all")
    for box, value in (("seed", seeds[0]), ("seed-b", seeds[1]), ("steps", steps)):
        driver.find_element(By.ID, box).clear()
        driver.find_element(By.ID, box).send_keys(str(value))
    driver.find_element(By.ID, "interpolate").click()
    shown(driver, first)
    return whole_page(driver, out / f"serve-{model['name']}-strip.png")


def similar(driver, url: str, model: dict, args) -> list[Path]:
    """The Compare tab on two images, and the Search tab's answer for a query (when the model has a folder)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def pick(input_id: str, path: Path) -> None:
        driver.find_element(By.ID, input_id).send_keys(str(path.resolve()))
        WebDriverWait(driver, WAIT_S).until(lambda d: d.execute_script(f"return picked['{input_id}'] !== undefined;"))

    written = []
    driver.set_window_size(1100, 900)
    driver.get(f"{url}?model={model['name']}")
    WebDriverWait(driver, WAIT_S).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#model option"))
    if args.compare:
        pick("upload-a", args.compare[0])
        pick("upload-b", args.compare[1])
        driver.find_element(By.ID, "compare").click()
        WebDriverWait(driver, WAIT_S).until(lambda d: d.find_element(By.ID, "verdict").is_displayed())
        written.append(whole_page(driver, args.out / f"serve-{model['name']}-compare.png"))
    if args.query and model["folders"]:
        driver.find_element(By.ID, "tab-search").click()
        pick("upload-query", args.query)
        driver.find_element(By.ID, "k").clear()
        driver.find_element(By.ID, "k").send_keys(str(args.k))
        driver.find_element(By.ID, "search").click()
        WebDriverWait(driver, WAIT_S).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#matches-list figure") and d.execute_script(
            "return [...document.querySelectorAll('#matches-list img')].every((im) => im.complete && im.naturalWidth > 0);"))
        written.append(whole_page(driver, args.out / f"serve-{model['name']}-search.png"))
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", metavar="[NAME=]RUN_OR_EXPORT")
    parser.add_argument("--out", type=Path, default=Path("docs/img"))
    parser.add_argument("--n", type=int, default=8, help="images per row (fewer where the grid would pass 256)")
    parser.add_argument("--seeds", type=int, nargs=2, default=[0, 7], metavar=("A", "B"), help="a strip's two seeds")
    parser.add_argument("--steps", type=int, default=10, help="images in a strip")
    parser.add_argument("--search-folder", action="append", default=[], metavar="[NAME=]DIR")
    parser.add_argument("--compare", type=Path, nargs=2, metavar=("A", "B"), help="two images for the Compare tab")
    parser.add_argument("--query", type=Path, help="the query image for the Search tab")
    parser.add_argument("--k", type=int, default=12, help="search results to show")
    args = parser.parse_args(argv)

    from condgan.serve.app import load_models, make_server
    from condgan.serve.folders import index_folders

    models = load_models(args.models, device="cpu")
    index_folders(models, args.search_folder)
    server = make_server(models, "127.0.0.1", 0, quiet=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    args.out.mkdir(parents=True, exist_ok=True)
    driver = chrome()
    try:
        for model in (m.describe() for m in models):
            if "compare" in model["tools"]:
                for path in similar(driver, server.url, model, args):
                    print(f"wrote {path}")
            elif any(f["kind"] == "image" for f in model["fields"]):
                print(f"skipped {model['name']!r}: its fields need an upload")
                continue
            if "generate" in model["tools"]:
                print(f"wrote {screenshot(driver, server.url, model, args.n, args.out)}")
            if "interpolate" in model["tools"]:
                print(f"wrote {strip(driver, server.url, model, args.seeds, args.steps, args.out)}")
    finally:
        driver.quit()
        server.shutdown()
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
