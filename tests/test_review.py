"""Human review (issue #16): the review page in a real headless browser (Debian's chromium driven by
selenium) against the real app on a real HTTP server on 127.0.0.1; ratings kept across a reload in
the append-only reviews.jsonl; `review --stats` agreement; `dataset --drop-rejected`; bad input."""

from __future__ import annotations

import json
import shutil
import urllib.request
from pathlib import Path

import pytest

from culturellm.jsonio import read_jsonl, write_jsonl
from serve_helpers import uvicorn_thread

SEEDS = {
    "Q27": "One of my main goals in life has been to make my parents proud",
    "Q28": "When a mother works for pay, the children suffer",
}
SAMPLES = [
    ("Q27", "paraphrase", "Making my parents proud has been one of my main aims in life"),
    ("Q27", "synonym", "One of my main aims in life has been to make my parents proud"),
    ("Q28", "paraphrase", "Children suffer when their mother has a paid job"),
    ("Q28", "synonym", "When a father works for pay, the children suffer"),
]


def _aug_dir(root: Path) -> Path:
    from culturellm.augment.pipeline import record_id

    rows = []
    for q, seed in SEEDS.items():
        mine = [s for s in SAMPLES if s[0] == q]
        sid = record_id(q, "seed", seed)
        rows.append({"id": sid, "question_id": q, "step": "seed", "text": seed, "parent": None,
                     "similarity": 1.0, "group_size": 1 + len(mine)})  # fmt: skip
        for _, step, text in mine:
            extra = {"swaps": [["goals", "aims"]]} if step == "synonym" else {}
            rows.append({"id": record_id(q, step, text), "question_id": q, "step": step, "text": text,
                         "parent": sid, "similarity": 0.9, **extra})  # fmt: skip
    d = root / "aug"
    d.mkdir()
    write_jsonl(d / "augmented.jsonl", rows)
    return d


def _ids(d: Path) -> list[str]:
    return [r["id"] for r in read_jsonl(d / "augmented.jsonl") if r["step"] != "seed"]


@pytest.fixture()
def server(tmp_path):
    """The review app on a real uvicorn server (127.0.0.1, a free port), stopped after the test."""
    from culturellm.review.app import make_app

    d = _aug_dir(tmp_path)
    with uvicorn_thread(make_app(d)) as port:
        yield d, f"http://127.0.0.1:{port}"


def _chromium() -> tuple[str, str] | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@pytest.fixture()
def browser():
    found = _chromium()
    if found is None:
        pytest.skip("no chromium + chromedriver on PATH (Debian: apt-get install chromium chromium-driver)")
    import os

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager look for a driver online
    opts = webdriver.ChromeOptions()
    opts.binary_location = found[0]
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        opts.add_argument(arg)
    drv = webdriver.Chrome(service=Service(found[1]), options=opts)
    drv.set_page_load_timeout(60)
    yield drv
    drv.quit()


def _wait(drv, cond, timeout=30):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(drv, timeout).until(lambda d: cond(d))


def test_review_page_in_real_browser_rate_with_keyboard_reload_keeps_ratings(server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    d, url = server
    ids = _ids(d)
    browser.get(f"{url}/?reviewer=alice")
    _wait(browser, lambda b: b.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1")
    body = browser.find_element(By.TAG_NAME, "body")
    assert browser.find_element(By.ID, "seed").text == SEEDS["Q27"]
    assert browser.find_element(By.ID, "candidate").text == SAMPLES[0][2]
    assert "0 / 4 rated" in browser.find_element(By.ID, "progress").text
    body.send_keys("1")  # same meaning -> moves to the second sample
    _wait(browser, lambda b: b.find_element(By.TAG_NAME, "body").get_attribute("data-id") == ids[1])
    body.send_keys("j")  # skip the second sample
    _wait(browser, lambda b: b.find_element(By.TAG_NAME, "body").get_attribute("data-id") == ids[2])
    body.send_keys("1")
    _wait(browser, lambda b: b.find_element(By.TAG_NAME, "body").get_attribute("data-id") == ids[3])
    body.send_keys("2")  # "When a father works ...": changed meaning
    _wait(browser, lambda b: "3 / 4 rated" in b.find_element(By.ID, "progress").text)
    body.send_keys(Keys.ARROW_LEFT)
    _wait(browser, lambda b: b.find_element(By.TAG_NAME, "body").get_attribute("data-id") == ids[2])

    browser.refresh()  # ratings come back from the file; the page opens on the first unrated sample
    _wait(browser, lambda b: b.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1")
    body = browser.find_element(By.TAG_NAME, "body")
    assert "3 / 4 rated" in browser.find_element(By.ID, "progress").text
    assert body.get_attribute("data-id") == ids[1] and body.get_attribute("data-rating") == ""
    body.send_keys("3")  # broken
    _wait(browser, lambda b: "4 / 4 rated" in b.find_element(By.ID, "progress").text)
    _wait(browser, lambda b: b.find_element(By.TAG_NAME, "body").get_attribute("data-id") == ids[2])
    body.send_keys("k")
    _wait(browser, lambda b: b.find_element(By.ID, "rating").text == "broken")
    body.send_keys(Keys.ARROW_RIGHT, Keys.ARROW_RIGHT)
    _wait(browser, lambda b: b.find_element(By.ID, "rating").text == "changed meaning")

    rows = read_jsonl(d / "reviews.jsonl")
    assert [(r["id"], r["rating"], r["reviewer"]) for r in rows] == [
        (ids[0], "same", "alice"),
        (ids[2], "same", "alice"),
        (ids[3], "changed", "alice"),
        (ids[1], "broken", "alice"),
    ]


def _post(url: str, body: dict) -> tuple[int, dict]:
    req = urllib.request.Request(
        f"{url}/api/ratings", json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_api_refuses_bad_ratings_and_keeps_the_file(server):
    d, url = server
    ids = _ids(d)
    assert _post(url, {"reviewer": "bob", "id": ids[0], "rating": "same"})[0] == 200
    for bad in (
        {"reviewer": "bob", "id": ids[0], "rating": "maybe"},
        {"reviewer": "bob", "id": "Q1-nope", "rating": "same"},
        {"reviewer": "", "id": ids[0], "rating": "same"},
        {"reviewer": "<script>", "id": ids[0], "rating": "same"},
    ):
        code, body = _post(url, bad)
        assert code == 400 and body["detail"], bad
    assert len(read_jsonl(d / "reviews.jsonl")) == 1


def _rate_two_reviewers(d: Path) -> None:
    from culturellm.review.store import ReviewStore

    store = ReviewStore(d)
    ids = _ids(d)
    for rid, a, b in zip(
        ids, ("same", "same", "same", "changed"), ("same", "broken", "same", "changed"), strict=True
    ):
        store.rate("alice", rid, a)
        store.rate("bob", rid, b)
    store.rate("alice", ids[1], "broken")  # alice changes her mind: the latest rating counts


def test_review_stats_prints_acceptance_and_agreement(tmp_path, cli):
    import krippendorff
    import numpy as np

    d = _aug_dir(tmp_path)
    _rate_two_reviewers(d)
    out = cli("review", str(d), "--stats")
    assert out.code == 0, out.err
    assert "Krippendorff's alpha (nominal) 1.0" in out.out and "Cohen's kappa alice / bob: 1.0" in out.out
    # a disagreement: bob calls the father swap the same meaning
    from culturellm.review.store import ReviewStore, stats

    ReviewStore(d).rate("bob", _ids(d)[3], "same")
    s = stats(d)
    codes = {"same": 0, "changed": 1, "broken": 2}
    alice, bob = ["same", "broken", "same", "changed"], ["same", "broken", "same", "same"]
    expected = krippendorff.alpha(
        reliability_data=np.array([[codes[x] for x in alice], [codes[x] for x in bob]], dtype=float),
        level_of_measurement="nominal",
    )
    assert s["agreement"]["krippendorff_alpha"] == round(float(expected), 4) < 1.0
    assert s["steps"]["paraphrase"] == {
        "samples": 2, "reviewed": 2, "ratings": 4, "same": 4, "changed": 0, "broken": 0, "acceptance": 1.0,
    }  # fmt: skip
    assert s["steps"]["synonym"]["acceptance"] == 0.25 and s["reviewers"] == {"alice": 4, "bob": 4}


def test_dataset_drops_samples_reviewers_rejected(tmp_path):
    from culturellm.dataset import DatasetConfig, build_training_set

    d = _aug_dir(tmp_path)
    _rate_two_reviewers(d)
    full = build_training_set(["german"], d / "augmented.jsonl", tmp_path / "all.jsonl")
    man = build_training_set(
        ["german"], d / "augmented.jsonl", tmp_path / "kept.jsonl", DatasetConfig(drop_rejected=True)
    )
    ids = _ids(d)
    assert man["review"]["dropped"] == sorted([ids[1], ids[3]])
    assert man["counts"]["records"] == full["counts"]["records"] - 2
    texts = [r["messages"][1]["content"] for r in read_jsonl(tmp_path / "kept.jsonl")]
    assert not any("father" in t for t in texts) and any(SAMPLES[0][2] in t for t in texts)


def test_review_cli_errors(tmp_path, cli):
    for args, needle in (
        (["review", str(tmp_path / "nope"), "--stats"], "augmented set not found"),
        (["dataset", "--culture", "german", "--augmented", str(_aug_dir(tmp_path) / "augmented.jsonl"),
          "--out", str(tmp_path / "t.jsonl"), "--drop-rejected"], "no reviews"),
    ):  # fmt: skip
        p = cli(*args)
        assert p.code == 2 and needle in p.err and "Traceback" not in p.err, p.err
    assert not (tmp_path / "t.jsonl").exists()
