"""End to end in headless Chromium (Debian's chromium + chromium-driver, driven by Selenium): the page lists the
models, builds each model's controls from its fields, generates (once on open too), shows the grid, keeps the
tab's earlier results in a strip, and offers the grid, one image or a zip for download; a class-conditional
model's seed-to-seed strip; a similarity model's Compare and Search tabs. (The screenshots of docs/serving.md
are taken by scripts/serve_screenshots.py, with real models: the tiny test models draw noise.)
"""

import json
import os
import shutil
import zipfile

import numpy as np
import pytest
from PIL import Image

from condgan.conditions import ClassField, Spec
from condgan.registry import get as get_task
from condgan.serve.app import ServedModel, load_models
from serve_helpers import a_mask, a_two_stage, gallery, png_b64, request, running, similarity_models, tiny_runs  # noqa: F401


def _find(names, extra=()):
    return next((p for p in [*(shutil.which(n) for n in names), *extra] if p and os.access(p, os.X_OK)), None)


CHROMIUM = _find(("chromium", "chromium-browser", "google-chrome"))
DRIVER = _find(("chromedriver",), ("/usr/lib/chromium/chromedriver",))
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER),
    reason=f"no headless browser: chromium {'found' if CHROMIUM else 'not found'}, chromedriver "
           f"{'found' if DRIVER else 'not found'} (install Debian's chromium and chromium-driver; "
           "`make test` does when it runs as root with apt-get)")

HOSTILE = "<img src=x onerror=window.pwned=1>"  # a class name from someone's folder: must show as text


@pytest.fixture(scope="module")
def page_server(tiny_runs, similarity_models):
    say = lambda *_: None  # noqa: E731
    shoes, edges = load_models([str(tiny_runs["shoes"]), str(tiny_runs["edges"])], say=say)
    hostile = load_models([f"hostile={tiny_runs['shoes']}"], say=say)[0]
    spec = Spec(hostile.pipeline.spec)
    spec["label"] = ClassField((HOSTILE, "sandal", "sneaker"))
    hostile.pipeline.spec = spec
    colours = ServedModel("colours", "memory", a_two_stage(), get_task("two-stage").controls)
    with running([shoes, edges, hostile, colours, *similarity_models]) as server:
        yield server


@pytest.fixture(scope="module")
def downloads(tmp_path_factory):
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def browser(downloads):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1100,900",
                "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def wait(driver, condition, timeout=30):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(lambda d: condition(d))


def choose(driver, select_id: str, value: str | None = None, text: str | None = None):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    select = Select(driver.find_element(By.ID, select_id))
    select.select_by_value(value) if value is not None else select.select_by_visible_text(text)


def set_number(driver, input_id: str, value: int):
    from selenium.webdriver.common.by import By

    box = driver.find_element(By.ID, input_id)
    box.clear()
    box.send_keys(str(value))


def shown_result(driver, previous_src: str | None = None) -> dict:
    """Wait for a decoded image (naturalWidth > 0) that is not the previous one, and the page idle again."""
    return wait(driver, lambda d: d.execute_script(
        "const img = document.getElementById('result');"
        "return img.complete && img.naturalWidth > 0 && img.src !== arguments[0] && !document.getElementById('output').hidden"
        " ? {src: img.src, width: img.naturalWidth, height: img.naturalHeight,"
        "    download: document.getElementById('download').getAttribute('download'),"
        "    href: document.getElementById('download').href} : null;", previous_src)
                and not d.execute_script("return document.getElementById('generate').disabled") and d.execute_script(
        "const img = document.getElementById('result'); return {src: img.src, width: img.naturalWidth,"
        " height: img.naturalHeight, download: document.getElementById('download').getAttribute('download'),"
        " href: document.getElementById('download').href};"))


def generate_and_wait(driver, previous_src: str | None = None) -> dict:
    """Click Generate; wait for its grid."""
    from selenium.webdriver.common.by import By

    driver.find_element(By.ID, "generate").click()
    return shown_result(driver, previous_src)


def open_page(driver, url: str) -> dict:
    """Open the page; wait for the grid it generates on open (the first model, its default values)."""
    driver.get(url)
    return shown_result(driver)


def test_choose_a_class_generate_and_download(page_server, browser, tmp_path):
    from selenium.webdriver.common.by import By

    opened = open_page(browser, page_server.url)
    names = [o.get_attribute("value") for o in browser.find_elements(By.CSS_SELECTOR, "#model option")]
    assert {"shoes", "edges", "hostile"} <= set(names)

    choose(browser, "model", "shoes")
    labels = [o.text for o in browser.find_elements(By.CSS_SELECTOR, "#field-label option")]
    assert labels == ["boot", "sandal", "sneaker", "every class (one row each)"]
    choose(browser, "field-label", "all")
    set_number(browser, "count", 4)
    set_number(browser, "seed", 3)
    shown = generate_and_wait(browser, opened["src"])
    assert (shown["width"], shown["height"]) == (2 + 4 * 18, 2 + 3 * 18), "3 rows (every class) of 4 images of 16 px"
    assert shown["download"] == "shoes-seed3.png" and shown["href"].startswith("blob:")

    set_number(browser, "count", 1000)  # refused by the server: its message is shown, the old grid stays
    browser.find_element(By.ID, "generate").click()
    status = wait(browser, lambda d: d.find_element(By.ID, "status").text.startswith("error") and d.find_element(By.ID, "status"))
    assert status.text == "error 400: 'n' must be an integer between 1 and 256, got 1000"
    assert "error" in status.get_attribute("class")

    choose(browser, "field-label", text="sandal")
    set_number(browser, "count", 16)
    set_number(browser, "seed", 0)
    generate_and_wait(browser, shown["src"])
    shot = tmp_path / "serve-page.png"
    browser.save_screenshot(str(shot))
    assert Image.open(shot).size[0] > 0


def test_upload_an_input_image_to_a_translator(page_server, browser, tmp_path):
    from selenium.webdriver.common.by import By

    browser.get(page_server.url + "?model=edges")  # a model that needs an upload: nothing is generated before one
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#model option"))
    assert browser.find_element(By.ID, "model").get_attribute("value") == "edges"
    assert browser.find_element(By.ID, "output").get_attribute("hidden") is not None
    assert browser.find_elements(By.CSS_SELECTOR, "#field-label") == [], "a translator without labels has no dropdown"
    upload = browser.find_element(By.ID, "field-source")
    assert upload.get_attribute("type") == "file"

    browser.find_element(By.ID, "generate").click()  # nothing chosen yet: the page says so, nothing is sent
    wait(browser, lambda d: d.find_element(By.ID, "status").text == "choose an image file for source")

    Image.fromarray(np.kron(a_mask(), np.ones((4, 4), dtype=np.uint8))).save(tmp_path / "mask.png")
    upload.send_keys(str(tmp_path / "mask.png"))
    wait(browser, lambda d: d.execute_script("const p = document.querySelector('img.preview');"
                                             "return !p.hidden && p.naturalWidth === 64;"))
    first = shown_result(browser)  # the upload was what the page waited for: it generates once
    assert (first["width"], first["height"]) == (2 + 4 * 18, 2 + 4 * 18), "the default 16 outputs"
    set_number(browser, "count", 9)
    shown = generate_and_wait(browser, first["src"])
    assert (shown["width"], shown["height"]) == (2 + 3 * 18, 2 + 3 * 18), "9 outputs of 16 px in a 3×3 grid"
    assert shown["download"] == "edges-seed0.png"


def test_class_names_from_data_are_shown_as_text(page_server, browser):
    from selenium.webdriver.common.by import By

    opened = open_page(browser, page_server.url)
    choose(browser, "model", "hostile")
    options = [o.text for o in browser.find_elements(By.CSS_SELECTOR, "#field-label option")]
    assert options[0] == HOSTILE, "the name must be shown as the text it is"
    assert browser.find_elements(By.CSS_SELECTOR, "#fields img:not(.preview)") == [], "no element made from a name"
    assert browser.execute_script("return window.pwned === undefined")
    generate_and_wait(browser, opened["src"])
    assert browser.find_element(By.ID, "rows").text == f"label: {HOSTILE}"
    assert browser.execute_script("return window.pwned === undefined")


def test_generated_on_open_history_restores_and_downloads(page_server, browser, downloads):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    opened = open_page(browser, page_server.url)  # the first model, its first class, 16 images, seed 0
    first = browser.find_element(By.ID, "model").get_attribute("value")
    assert first == "shoes" and opened["download"] == "shoes-seed0.png"
    choose(browser, "field-label", text="sneaker")
    set_number(browser, "count", 4)
    set_number(browser, "seed", 9)
    latest = generate_and_wait(browser, opened["src"])
    strip = browser.find_elements(By.CSS_SELECTOR, "#history-strip button")
    assert len(strip) == 2 and "active" in strip[0].get_attribute("class"), "newest first, the one on show marked"

    strip[1].click()  # back to the result made on open: its settings and its grid
    wait(browser, lambda d: d.find_element(By.ID, "result").get_attribute("src") == opened["src"])
    assert [browser.find_element(By.ID, i).get_attribute("value") for i in ("model", "field-label", "count", "seed")] == \
        ["shoes", "0", "16", "0"]
    browser.find_elements(By.CSS_SELECTOR, "#history-strip button")[0].click()
    wait(browser, lambda d: d.find_element(By.ID, "result").get_attribute("src") == latest["src"])
    assert browser.find_element(By.ID, "field-label").get_attribute("value") == "2"

    result = browser.find_element(By.ID, "result")  # 2×2 grid of 16 px: click the bottom right image
    scale = result.size["width"] / latest["width"]
    ActionChains(browser).move_to_element_with_offset(result, int((20 + 8 - latest["width"] / 2) * scale),
                                                      int((20 + 8 - latest["height"] / 2) * scale)).click().perform()
    one = wait(browser, lambda d: not d.find_element(By.ID, "download-one").get_attribute("hidden")
               and d.find_element(By.ID, "download-one"))
    assert one.get_attribute("download") == "shoes-seed9-003.png" and one.get_attribute("href").startswith("blob:")
    browser.find_element(By.ID, "download-zip").click()
    saved = wait(browser, lambda d: {p.name for p in downloads.iterdir()} >= {"shoes-seed9-003.png", "shoes-seed9.zip"}
                 and not any(p.suffix == ".crdownload" for p in downloads.iterdir()), timeout=20)
    assert saved
    assert Image.open(downloads / "shoes-seed9-003.png").size == (16, 16)
    with zipfile.ZipFile(downloads / "shoes-seed9.zip") as archive:
        assert json.loads(archive.read("request.json"))["label"] == ["sneaker"] and len(archive.namelist()) == 6

    choose(browser, "model", "colours")  # a two-stage model: one row per label A (n each), one column per label B
    assert browser.find_elements(By.CSS_SELECTOR, "#field-label_b option")[-1].text == "every class (one column each)"
    choose(browser, "field-label_a", "all")
    choose(browser, "field-label_b", "all")
    set_number(browser, "count", 2)
    grid = generate_and_wait(browser, latest["src"])
    assert (grid["width"], grid["height"]) == (2 + 3 * 18, 2 + 4 * 18)
    assert browser.find_element(By.ID, "rows").text == "rows: bar, post · columns: red, green, blue"
    browser.set_window_size(1100, 1400)  # the grid drawn 13× is about 1000 px tall: all of it in view
    result = browser.find_element(By.ID, "result")  # grid row 3 (post, draw 1), column 3 (blue): image 11
    scale = result.size["width"] / grid["width"]
    ActionChains(browser).move_to_element_with_offset(result, int((2 + 2 * 18 + 8 - grid["width"] / 2) * scale),
                                                      int((2 + 3 * 18 + 8 - grid["height"] / 2) * scale)).click().perform()
    wait(browser, lambda d: d.find_element(By.ID, "download-one").get_attribute("download") == "colours-seed9-011.png")
    assert browser.find_element(By.ID, "download-one").text == "Save image 12 (post, blue)"
    browser.set_window_size(1100, 900)


def test_a_seed_to_seed_strip_ends_at_each_seeds_own_image(page_server, browser):
    import base64
    import io

    from selenium.webdriver.common.by import By

    opened = open_page(browser, page_server.url + "?model=shoes")
    assert not browser.find_element(By.ID, "interpolation").get_attribute("hidden"), "a class-conditional model interpolates"
    choose(browser, "field-label", text="sneaker")
    set_number(browser, "seed", 3)
    set_number(browser, "seed-b", 11)
    set_number(browser, "steps", 6)
    browser.find_element(By.ID, "interpolate").click()
    strip = shown_result(browser, opened["src"])
    assert (strip["width"], strip["height"]) == (2 + 6 * 18, 2 + 18), "one row of 6 images of 16 px"
    assert strip["download"] == "shoes-seed3-to-11.png"
    pngs = browser.execute_script("return shown.answer.images.map((im) => im.png);")
    assert len(pngs) == 6

    def decoded(png: str) -> np.ndarray:
        return np.array(Image.open(io.BytesIO(base64.b64decode(png)))).astype(int)

    for end, seed in ((pngs[0], 3), (pngs[-1], 11)):  # the ends on the page against plain generation, through the API
        status, _, body = request(page_server, "POST", "/api/generate", {"model": "shoes", "label": "sneaker", "n": 1,
                                                                        "seed": seed, "format": "json"})
        plain = decoded(json.loads(body)["images"][0]["png"])
        assert status == 200 and np.abs(decoded(end) - plain).max() <= 1, "equal but for float rounding of a batch"
    assert np.abs(decoded(pngs[0]) - decoded(pngs[-1])).mean() > 5, "the two ends differ"
    history = browser.find_elements(By.CSS_SELECTOR, "#history-strip button")
    assert history[0].text == "shoes · 3→11" and "active" in history[0].get_attribute("class")


def upload(browser, input_id: str, path) -> None:
    from selenium.webdriver.common.by import By

    browser.find_element(By.ID, input_id).send_keys(str(path))
    wait(browser, lambda d: d.execute_script(f"return picked['{input_id}'] !== undefined;"))


def test_a_similarity_model_compares_and_searches(page_server, browser, gallery):
    from selenium.webdriver.common.by import By

    browser.get(page_server.url + "?model=sim")
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#model option"))
    assert browser.find_element(By.ID, "make").get_attribute("hidden") is not None, "no generate controls"
    assert browser.find_element(By.ID, "similar").get_attribute("hidden") is None
    assert browser.find_element(By.ID, "output").get_attribute("hidden") is not None, "nothing generated on open"
    a, b = gallery / "bars" / "000.png", gallery / "posts" / "002.png"
    upload(browser, "upload-a", a)
    upload(browser, "upload-b", b)
    browser.find_element(By.ID, "compare").click()
    text = wait(browser, lambda d: d.find_element(By.ID, "verdict").is_displayed() and d.find_element(By.ID, "verdict-text").text)
    answer = json.loads(request(page_server, "POST", "/api/compare", {"model": "sim", "a": png_b64(np.array(Image.open(a))),
                                                                      "b": png_b64(np.array(Image.open(b)))})[2])
    assert text == ("the same, to this model" if answer["same"] else "different, to this model")
    assert f"similarity {answer['similarity']:.4f}" in browser.find_element(By.ID, "verdict-info").text

    browser.find_element(By.ID, "tab-search").click()
    assert not browser.find_element(By.ID, "verdict").is_displayed(), "each tab shows its own answer"
    assert [o.text for o in browser.find_elements(By.CSS_SELECTOR, "#folder option")] == ["shoes (8 images)"]
    upload(browser, "upload-query", gallery / "posts" / "001.png")
    set_number(browser, "k", 3)
    browser.find_element(By.ID, "search").click()
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#matches-list figure")) == 3 and d.execute_script(
        "return [...document.querySelectorAll('#matches-list img')].every((im) => im.complete && im.naturalWidth === 28);"))
    captions = [f.text for f in browser.find_elements(By.CSS_SELECTOR, "#matches-list figcaption")]
    assert captions[0].startswith("1. posts/001.png · 1.0000") and captions[2].startswith("3. ")
    src = browser.find_element(By.CSS_SELECTOR, "#matches-list img").get_attribute("src")
    assert src.startswith(page_server.url + "api/search-image?model=sim&folder=0&item=") and str(gallery) not in src

    choose(browser, "model", "bare")  # the same kind of model, started without --search-folder
    assert browser.find_element(By.ID, "search-panel").is_displayed(), "the Search tab stays chosen"
    off = browser.find_element(By.ID, "search-off")
    assert off.is_displayed() and "--search-folder DIR" in off.text
    assert not browser.find_element(By.ID, "search-on").is_displayed() and not browser.find_element(By.ID, "matches").is_displayed()
