"""HTML pages and form handling through Flask's test client (no WebSocket here)."""

import hashlib
import os
import re

from conftest import ROOT


def test_catalog_lists_every_experiment(client):
    page = client.get("/").get_data(as_text=True)
    for slug in ("hello-threads", "io-bound", "cpu-bound", "race-condition"):
        assert f'href="/experiments/{slug}"' in page


def test_a_shared_link_prefills_the_form_and_shows_the_code(client):
    page = client.get("/experiments/io-bound?threads=8&sleep_ms=200").get_data(as_text=True)
    assert re.search(r'name="threads" value="8"', page)
    assert re.search(r'name="sleep_ms" value="200"', page)
    assert "all_at_once" in page and 'class="code"' in page  # highlighted source
    assert 'hx-push-url="true"' in page


def test_a_bad_link_shows_the_error_beside_the_field(client):
    response = client.get("/experiments/io-bound?threads=999&sleep_ms=abc&thread=3")
    page = response.get_data(as_text=True)
    assert response.status_code == 200  # the page still renders, with the messages inline
    assert 'data-field="threads"' in page and "threads must be at most 32" in page
    assert 'data-field="sleep_ms"' in page
    assert "thread is not a parameter" in page


def test_htmx_gets_the_form_fragment_alone(client):
    response = client.get("/experiments/cpu-bound?threads=0", headers={"HX-Request": "true"})
    fragment = response.get_data(as_text=True)
    assert fragment.lstrip().startswith("<form") and "<html" not in fragment
    assert "threads must be at least 1" in fragment


def test_a_bad_form_post_rerenders_with_errors_and_starts_nothing(client, app):
    response = client.post("/runs", data={"experiment": "io-bound", "threads": "-3", "sleep_ms": "10"})
    assert response.status_code == 422
    assert "threads must be at least 1" in response.get_data(as_text=True)
    assert app.extensions["playground"].store.recent_runs() == []
    assert app.extensions["playground"].pool.statistics()["started"] is False


def test_json_errors_name_the_field_and_rule(client, app):
    response = client.post(
        "/runs", json={"experiment": "race-condition", "params": {"variant": "sloppy", "threads": 2.5}}
    )
    assert response.status_code == 422
    errors = {e["field"]: e["rule"] for e in response.get_json()["errors"]}
    assert errors == {"variant": "enum", "threads": "type"}
    assert client.post("/runs", json={"experiment": "nope", "params": {}}).status_code == 404
    assert client.post("/runs", json=[1, 2]).status_code == 400
    assert client.post("/runs", json={"experiment": "io-bound", "params": [], "x": 1}).status_code == 400
    assert client.post("/runs", data="{", content_type="application/json").status_code == 400
    assert client.post("/runs", json={"experiment": "io-bound", "params": {"pad": "x" * 100_000}}).status_code == 413
    assert app.extensions["playground"].store.recent_runs() == []


def test_unknown_pages_are_404(client):
    assert client.get("/experiments/nope").status_code == 404
    assert client.get("/runs/nope").status_code == 404
    assert client.get("/api/runs/nope").status_code == 404


def test_api_catalog_has_parameter_and_metric_schemas(client):
    catalog = client.get("/api/experiments").get_json()["experiments"]
    io = next(e for e in catalog if e["slug"] == "io-bound")
    threads = next(p for p in io["params"] if p["name"] == "threads")
    assert threads["type"] == "integer" and threads["minimum"] == 1 and "default" in threads
    assert {"sequential_ms", "threaded_ms", "speedup", "wall_ms"} <= {m["name"] for m in io["metrics"]}


def test_vendored_htmx_matches_its_checksum():
    vendor = os.path.join(ROOT, "static", "vendor")
    lines = open(os.path.join(vendor, "SHA256SUMS")).read().split("\n")
    checked = 0
    for line in filter(None, lines):
        digest, name = line.split()
        with open(os.path.join(vendor, name), "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == digest, name
        checked += 1
    assert checked >= 1 and any(re.match(r"htmx-2\.0\.\d+\.min\.js", n.split()[-1]) for n in lines if n)


def test_no_cdn_anywhere_in_templates_or_static():
    for folder in ("templates", "static/js", "static/css"):
        for name in os.listdir(os.path.join(ROOT, folder)):
            text = open(os.path.join(ROOT, folder, name), encoding="utf-8").read()
            assert not re.search(r"(src|href)=\"(https?:)?//", text), f"{folder}/{name} links off-site"
