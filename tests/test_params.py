"""The one validator: types, bounds, choices, unknown and missing names."""

from playground.experiments import Param, ParamError, validate, validate_or_raise

PARAMS = (
    Param("threads", int, 4, "count", min=1, max=64),
    Param("ratio", float, 0.5, "share", min=0.0, max=1.0),
    Param("variant", str, "plain", "which", choices=("plain", "locked")),
    Param("verbose", bool, False, "flag"),
)


def errors_by_field(raw):
    _, errors = validate(PARAMS, raw)
    return {e.field: e.rule for e in errors}


def test_defaults_fill_in_missing_values():
    values, errors = validate(PARAMS, {})
    assert errors == []
    assert values == {"threads": 4, "ratio": 0.5, "variant": "plain", "verbose": False}


def test_strings_from_query_strings_are_coerced():
    values, errors = validate(PARAMS, {"threads": "8", "ratio": "0.25", "variant": "locked", "verbose": "on"})
    assert errors == []
    assert values == {"threads": 8, "ratio": 0.25, "variant": "locked", "verbose": True}


def test_json_numbers_are_accepted_but_not_ambiguous_ones():
    assert validate(PARAMS, {"threads": 8})[0]["threads"] == 8
    assert validate(PARAMS, {"threads": 8.0})[0]["threads"] == 8
    assert errors_by_field({"threads": 8.5}) == {"threads": "type"}
    assert errors_by_field({"threads": True}) == {"threads": "type"}
    assert errors_by_field({"threads": "8.5"}) == {"threads": "type"}
    assert errors_by_field({"threads": [8]}) == {"threads": "type"}
    assert errors_by_field({"ratio": "nan"}) == {"ratio": "type"}


def test_bounds_name_the_field_and_the_rule():
    _, errors = validate(PARAMS, {"threads": "0", "ratio": 2})
    by_field = {e.field: e for e in errors}
    assert (
        by_field["threads"].rule == "minimum"
        and "threads" in by_field["threads"].message
        and "1" in by_field["threads"].message
    )
    assert by_field["ratio"].rule == "maximum"


def test_unknown_names_and_bad_choices_are_errors():
    assert errors_by_field({"thread": "8"}) == {"thread": "unknown"}
    assert errors_by_field({"variant": "sloppy"}) == {"variant": "enum"}
    assert errors_by_field({"threads": ""}) == {"threads": "required"}


def test_required_parameters_must_be_given():
    from playground.experiments.params import REQUIRED

    params = (Param("url", str, REQUIRED, "where"),)
    assert {e.rule for e in validate(params, {})[1]} == {"required"}
    assert validate(params, {"url": "x"}) == ({"url": "x"}, [])


def test_validate_or_raise_carries_every_error():
    try:
        validate_or_raise(PARAMS, {"threads": "-1", "variant": "x"})
    except ParamError as exc:
        assert {e.field for e in exc.errors} == {"threads", "variant"}
    else:
        raise AssertionError("expected ParamError")


def test_huge_numbers_and_floods_of_names_get_short_clear_errors():
    assert errors_by_field({"ratio": 10**400}) == {"ratio": "maximum"}
    _, errors = validate(PARAMS, {f"junk{n}": 1 for n in range(1000)})
    assert len(errors) == 11 and errors[-1].message.startswith("and 990 more names")
