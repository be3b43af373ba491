"""The request model and generators for test_fuzz.py.

``cases`` draws requests to every input boundary (``Case``); ``judge`` says
whether each is surely valid, surely invalid or either; ``check`` holds an
answer to what the model expects: never a 5xx, a 4xx that names the field at
fault, the security headers always. test_fuzz.py says what is sent and why.
"""

from __future__ import annotations

import json
import math
import urllib.parse
from dataclasses import dataclass, field

from hypothesis import strategies as st

from playground.runs import _ID_ALPHABET

SECURITY_HEADERS = ("Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy")


# -- the model: is a request surely valid, surely invalid, or either? ---------------


def judge_value(param, value) -> bool | None:
    """True: the validator must accept it; False: must refuse it; None: either."""
    if value is None:
        return not param.required
    if param.kind is bool:
        if isinstance(value, bool):
            return True
        return isinstance(value, str) and value.strip().lower() in {"1", "true", "yes", "on", "0", "false", "no", "off"}
    if param.kind is int:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            return False
        if isinstance(value, float):
            if not (math.isfinite(value) and value.is_integer()):
                return False
            value = int(value)
        elif isinstance(value, str):
            try:
                value = int(value.strip())
            except ValueError:
                return False
        return (param.min is None or value >= param.min) and (param.max is None or value <= param.max)
    if param.kind is float:
        return None  # not modelled: the fuzz still checks it never fails
    if not isinstance(value, str):
        return False
    return not param.choices or value in param.choices


def judge(declared: tuple, raw: dict) -> tuple[str, set]:
    """("valid" | "invalid" | "either", the names surely at fault)."""
    by_name = {p.name: p for p in declared}
    bad, unsure = set(), False
    for name, value in raw.items():
        param = by_name.get(name)
        verdict = False if param is None else judge_value(param, value)
        if verdict is False:
            bad.add(name)
        elif verdict is None:
            unsure = True
    bad |= {p.name for p in declared if p.required and raw.get(p.name) is None}
    return ("invalid" if bad else "either" if unsure else "valid"), bad


@dataclass
class Expect:
    statuses: set  # what the answer may be (503 is added for "valid"/"either" runs)
    fields: set = field(default_factory=set)  # fields the errors must name
    run: str = "none"  # "valid" | "either" | "none": whether a run may be asked for
    json: bool = True  # a JSON API answer ({"error", "errors"}) or an HTML page


def expect_start(body, declared: dict) -> Expect:
    """What ``POST /runs`` with this JSON body must answer."""
    if not isinstance(body, dict):
        return Expect({400})
    unknown = set(body) - {"experiment", "params"}
    if unknown:
        return Expect({400}, unknown)
    slug, params = body.get("experiment"), body.get("params", {})
    if not isinstance(slug, str):
        return Expect({400}, {"experiment"})
    if not isinstance(params, dict):
        return Expect({400}, {"params"})
    if slug not in declared:
        return Expect({404}, {"experiment"})
    verdict, bad = judge(declared[slug], params)
    if verdict == "invalid":
        return Expect({422}, bad)
    return Expect({422}, run=verdict)  # 422 only for "either", or "requires" on python: see check()


@dataclass
class Case:
    kind: str
    method: str
    path: str
    body: bytes | None = None
    headers: dict = field(default_factory=dict)
    expect: Expect = field(default_factory=lambda: Expect(set()))


# -- strategies ---------------------------------------------------------------------

ODD_NUMBERS = st.sampled_from(
    ["NaN", "nan", "-inf", "Infinity", "1e999", "-0", "0x10", "1_0", "+5", " 7 ", "٣", "８", "1.5", "8.0", "", " "]
    + ["\x00", "true", "null", "[]", "9" * 5000, "-" + "9" * 40, "1" * 4301]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**300), max_value=2**300)
    | st.floats()
    | st.text(max_size=20)
    | ODD_NUMBERS
)
# Two levels of nesting, built once: as varied as st.recursive here, and cheaper to draw.
CONTAINERS = st.lists(SCALARS, max_size=3) | st.dictionaries(st.text(max_size=8), SCALARS, max_size=3)
JSON_VALUES = (
    SCALARS
    | CONTAINERS
    | st.lists(CONTAINERS, max_size=2)
    | st.dictionaries(st.text(max_size=8), CONTAINERS, max_size=2)
)
TEXT_KEYS = st.text(max_size=12)


def value_strategy(param):
    """Values for ``param``: valid in each accepted spelling, surely invalid, anything, or null."""
    if param.choices:
        valid = st.sampled_from(param.choices)
        bad = st.text(max_size=12).filter(lambda s: s not in param.choices) | st.integers() | st.booleans()
    elif param.kind is int:
        low = int(param.min) if param.min is not None else -(2**31)
        high = int(param.max) if param.max is not None else 2**31
        number = st.integers(low, high)
        valid = number | number.map(str) | number.map(lambda n: f" {n} ") | number.map(float)
        outside = st.integers(max_value=low - 1) | st.integers(min_value=high + 1)
        bad = outside | outside.map(str) | st.floats().filter(lambda f: not f.is_integer()) | st.booleans()
    else:
        valid = bad = JSON_VALUES
    return st.sampled_from(["valid", "valid", "valid", "bad", "any", "none"]).flatmap(
        {"valid": valid, "bad": bad, "any": JSON_VALUES, "none": st.none()}.__getitem__
    )


def params_strategy(declared: tuple, values=value_strategy):
    """Some of the declared parameters, and now and then names that are not parameters."""
    known = st.fixed_dictionaries({}, optional={p.name: values(p) for p in declared})
    extra = st.sampled_from([0, 0, 0, 0, 1]).flatmap(
        lambda n: st.dictionaries(TEXT_KEYS, JSON_VALUES, min_size=n, max_size=3 * n)
    )
    return st.builds(lambda mine, other: {**other, **mine}, known, extra)


def start_bodies(declared: dict):
    slugs = sorted(declared)
    by_slug = {slug: params_strategy(declared[slug]) for slug in slugs}
    known = st.sampled_from(slugs).flatmap(
        lambda slug: by_slug[slug].map(lambda params: {"experiment": slug, "params": params})
    )
    shapes = st.one_of(
        known,
        known.map(lambda body: {k: v for k, v in body.items() if k != "params"}),  # params left out
        st.fixed_dictionaries({"experiment": st.sampled_from(slugs) | JSON_VALUES, "params": JSON_VALUES}),
        st.builds(lambda body, extra: {**body, **extra}, known, st.dictionaries(TEXT_KEYS, JSON_VALUES, max_size=2)),
        st.dictionaries(TEXT_KEYS, JSON_VALUES, max_size=4),
        JSON_VALUES,
    )
    return shapes


CONTENT_TYPES = st.sampled_from(
    [
        "application/json",
        "application/json; charset=utf-8",
        "application/vnd.api+json",
        "application/json; charset=latin-1",
    ]
)
RAW_BODIES = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200).map(lambda s: s.encode("utf-8", "surrogatepass")),
    st.integers(1, 60_000).map(lambda depth: b"[" * depth),  # deep nesting: RecursionError in json
    st.integers(1, 8_000).map(lambda depth: b'{"a":' * depth),
    st.sampled_from(
        [
            b'{"experiment": "\\ud800", "params": {"\\udc00": 1}}',  # lone surrogates
            b'{"experiment": "io-bound", "params": {"threads": ' + b"9" * 5000 + b"}}",  # past int's digit limit
            b'{"experiment": "io-bound", "params": {"threads": NaN, "sleep_ms": -Infinity}}',
            b'{"experiment": "io-bound", "params": {"threads": 1e999}}',
            b'{"experiment": "io-bound"',
            b"",
            b"null",
            b'"\\u0000"',
            b"\xff\xfe{\x00}\x00",
        ]
    ),
)


def quoted(text: str) -> str:
    return urllib.parse.quote(text, safe="")


def run_ids(real: list[str]):
    well_formed = st.text(alphabet=_ID_ALPHABET, min_size=10, max_size=10)
    near = st.sampled_from(real).flatmap(
        lambda rid: st.sampled_from([rid.upper(), rid + "2", rid[:-1], rid[:-1] + "0", " " + rid, rid + "\n"])
    )
    return st.one_of(st.sampled_from(real), well_formed, near, st.text(min_size=1, max_size=24))


def cases(declared: dict, real_ids: list[str]):
    slugs = sorted(declared)

    def start_json(body):
        return Case(
            "start-json",
            "POST",
            "/runs",
            json.dumps(body).encode(),
            {"Content-Type": "application/json"},
            expect_start(body, declared),
        )

    def start_raw(body, content_type):
        return Case(
            "start-raw",
            "POST",
            "/runs",
            body,
            {"Content-Type": content_type},
            Expect({400, 404, 413, 422}, run="either"),
        )

    def as_text(value) -> str:
        return "" if value is None else value if isinstance(value, str) else json.dumps(value)

    def form_values(param):
        return value_strategy(param).map(as_text) | ODD_NUMBERS

    form_params = {slug: params_strategy(declared[slug], values=form_values) for slug in slugs}
    no_params = st.dictionaries(TEXT_KEYS, st.text(max_size=12), max_size=3)

    any_slug = st.sampled_from(slugs) | st.text(max_size=12)

    @st.composite
    def form(draw):
        slug = draw(any_slug)
        params = {key: as_text(value) for key, value in draw(form_params.get(slug, no_params)).items()}
        params.pop("experiment", None)
        data = urllib.parse.urlencode({"experiment": slug, **params}).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if slug not in declared:
            return Case("form", "POST", "/runs", data, headers, Expect({404}, json=False))
        verdict, bad = judge(declared[slug], params)  # judged on the strings the server gets
        if verdict == "invalid":
            fields = bad & {p.name for p in declared[slug]}
            return Case("form", "POST", "/runs", data, headers, Expect({422}, fields, json=False))
        return Case("form", "POST", "/runs", data, headers, Expect({422}, run=verdict, json=False))

    query_value = st.text(max_size=12) | ODD_NUMBERS | st.integers(-5, 600).map(str)
    query_pairs = {
        slug: st.lists(
            st.tuples(st.sampled_from([p.name for p in declared.get(slug, ())]) | TEXT_KEYS, query_value), max_size=5
        )
        for slug in slugs
    }
    no_pairs = st.lists(st.tuples(TEXT_KEYS, query_value), max_size=5)

    @st.composite
    def page(draw):
        slug = draw(any_slug.filter(bool))
        pairs = draw(query_pairs.get(slug, no_pairs))
        query = urllib.parse.urlencode(pairs)
        headers = {"HX-Request": "true"} if draw(st.booleans()) else {}
        if slug not in declared:
            return Case("page", "GET", f"/experiments/{quoted(slug)}?{query}", None, headers, Expect({404}, json=False))
        raw = {}
        for key, value in pairs:
            raw.setdefault(key, value)
        _, bad = judge(declared[slug], raw)
        return Case(
            "page",
            "GET",
            f"/experiments/{slug}?{query}",
            None,
            headers,
            Expect({200}, bad & {p.name for p in declared[slug]}, json=False),
        )

    def run_json(run_id):
        found = run_id in real_ids
        return Case(
            "run-json",
            "GET",
            f"/api/runs/{quoted(run_id)}",
            expect=Expect({200} if found else {404}, set() if found else {"run"}),
        )

    def cancel(run_id, as_json):
        found = run_id in real_ids
        headers = {"Accept": "application/json"} if as_json else {}
        statuses = ({200} if as_json else {303}) if found else {404}
        return Case(
            "cancel",
            "POST",
            f"/runs/{quoted(run_id)}/cancel",
            None,
            headers,
            Expect(statuses, set() if found else {"run"}),
        )

    kinds = [
        start_bodies(declared).map(start_json),
        st.builds(start_raw, RAW_BODIES, CONTENT_TYPES),
        form(),
        page(),
        run_ids(real_ids).map(run_json),
        st.builds(cancel, run_ids(real_ids), st.booleans()),
    ]
    # JSON starts are the richest boundary: twice the share of each other kind.
    return st.sampled_from([0, 0, 1, 2, 3, 4, 5]).flatmap(lambda i: kinds[i])


# -- the check ----------------------------------------------------------------------


def check(case: Case, status: int, headers, body: bytes) -> None:
    text = body.decode("utf-8", "replace")
    where = f"{case.method} {case.path[:200]} {case.body[:200] if case.body else ''!r} -> {status}: {text[:300]}"
    for name in SECURITY_HEADERS:
        assert headers.get(name), f"{name} missing: {where}"
    routable = "%2F" not in case.path.split("?")[0]  # a "/" in an id or slug makes it another route (or a redirect)
    if status == 503:
        assert case.expect.run != "none", f"503 for a request that cannot start a run: {where}"
        assert "queue is full" in text, f"a 503 that is not the full queue: {where}"
        if case.expect.json:
            assert headers.get("Content-Type", "").startswith("application/json"), where
            assert json.loads(body)["errors"] == [], where
        return
    assert status < 500, f"server error: {where}"
    if case.expect.run == "valid":
        # Surely valid: the pool must be asked (and refuse). The one 422 allowed is an
        # experiment this interpreter cannot run at all ("requires", on python).
        assert status == 422, f"a valid request was not passed to the pool: {where}"
        if case.expect.json:
            assert {(e["field"], e["rule"]) for e in json.loads(body)["errors"]} == {("python", "requires")}, where
        return
    if routable:
        assert status in case.expect.statuses, f"expected {sorted(case.expect.statuses)}: {where}"
    if status < 400:
        return
    if case.expect.json and routable:
        assert headers.get("Content-Type", "").startswith("application/json"), f"a non-JSON error: {where}"
        answer = json.loads(body)
        assert isinstance(answer["error"], str) and answer["error"], where
        assert isinstance(answer["errors"], list), where
        for error in answer["errors"]:
            assert {"field", "rule", "message"} <= set(error) and all(isinstance(error[k], str) for k in error), where
        named = {e["field"] for e in answer["errors"]}
        assert case.expect.fields <= named, f"fields {sorted(case.expect.fields - named)} not named: {where}"
    elif not case.expect.json:
        for name in case.expect.fields:
            assert f'data-field="{name}"' in text, f"no message beside {name}: {where}"
