"""Labels and Kubernetes-style selectors: one syntax for the admin, the API and relay_exec."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from assignments.labels import LabelError, clean_labels, format_labels, parse_label_text, parse_selector

WEB_PROD = {"env": "prod", "role": "web"}


@pytest.mark.parametrize(("text", "labels", "expected"), [
    ("env=prod", WEB_PROD, True),
    ("env==prod", WEB_PROD, True),
    ("env!=prod", WEB_PROD, False),
    ("env!=prod", {"role": "web"}, True),          # absent key: != holds, as in Kubernetes
    ("role in (web,api)", WEB_PROD, True),
    ("role in (db)", WEB_PROD, False),
    ("role notin (db, cache)", WEB_PROD, True),
    ("role notin (web)", WEB_PROD, False),
    ("canary", WEB_PROD, False),
    ("!canary", WEB_PROD, True),
    ("!canary", {**WEB_PROD, "canary": ""}, False),
    ("env=prod,role in (web,api),!canary", WEB_PROD, True),
    ("env=prod , role in ( web , api ) , !canary", WEB_PROD, True),
    ("env=prod,role=api", WEB_PROD, False),
    ("example.com/tier=gold", {"example.com/tier": "gold"}, True),
])
def test_selector_matches_like_kubernetes(text, labels, expected):
    assert parse_selector(text).matches(labels) is expected


@pytest.mark.parametrize(("text", "says"), [
    ("env=prod,", "must not end with ','"),
    ("role in web", "expected '(' after 'in' or 'notin'"),
    ("role in (web", "ends early"),
    ("role notin ()", "expected a value"),
    ("env prod", "expected =, ==, !=, in or notin"),
    ("=prod", "expected a label key"),
    ("-env=prod", "invalid label key '-env'"),
    ("env=pr od", "expected ',' between requirements"),
    ("env=" + "x" * 64, "invalid value"),
    ("!", "ends early"),
])
def test_malformed_selector_says_where_and_why(text, says):
    with pytest.raises(LabelError) as caught:
        parse_selector(text)
    assert says in str(caught.value)


def test_label_text_round_trips_and_refuses_duplicates():
    assert parse_label_text("env=prod, role=web\nsite=lab") == {"env": "prod", "role": "web", "site": "lab"}
    assert format_labels({"role": "web", "env": "prod"}) == "env=prod, role=web"
    with pytest.raises(LabelError, match="given twice"):
        parse_label_text("env=prod,env=dev")
    with pytest.raises(LabelError, match="key=value"):
        parse_label_text("prod")
    with pytest.raises(LabelError):
        clean_labels({"env": 3})


names = st.from_regex(r"[a-z0-9]([a-z0-9_.-]{0,10}[a-z0-9])?", fullmatch=True)


@given(labels=st.dictionaries(names, names | st.just(""), max_size=5), key=names, value=names)
def test_equality_and_inequality_are_complements(labels, key, value):
    assert parse_selector(f"{key}={value}").matches(labels) is (labels.get(key) == value)
    assert parse_selector(f"{key}!={value}").matches(labels) is (labels.get(key) != value)
    assert parse_selector(key).matches(labels) is not parse_selector(f"!{key}").matches(labels)


@given(st.text(max_size=40))
def test_any_text_parses_or_raises_label_error(text):
    try:
        parse_selector(text)
    except LabelError:
        pass
