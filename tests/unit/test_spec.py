"""Feature spec files: read, checked field by field, and carried by the model."""

from __future__ import annotations

import pickle

import pytest

from credit_batch.errors import SpecError
from credit_batch.features import DEFAULT_FEATURE_SPEC, FeatureSpec, load_spec

pytestmark = pytest.mark.unit

VALID = """
name = "accounts"
description = "a lender's own table"

[entity]
key = "acct_no"
key_type = "integer"
snapshot_column = "as_of"
table = "accounts"

[target]
name = "went_bad"
table = "account_outcomes"

[[features]]
name = "utilization"
type = "numeric"
reason = "High use of credit lines"
direction = "increases"
skewed = true
minimum = 0

[[features]]
name = "age_years"
type = "numeric"
minimum = 18
maximum = 120

[[features]]
name = "times_90_late"
type = "integer"
minimum = 0
forbidden = [96, 98]

[[features]]
name = "over_indebted"
type = "boolean"
nullable = true

[[features]]
name = "region"
type = "categorical"
categories = ["north", "south", "east", "west"]
unseen = "other"
reason = "Region of residence"

[[features]]
name = "housing"
type = "categorical"
categories = ["own", "rent", "mortgage"]
nullable = true
reason = "Housing status"
"""


def _write(tmp_path, text: str, files: dict[str, str] | None = None):
    for name, sql in (files or {}).items():
        (tmp_path / name).write_text(sql)
    path = tmp_path / "spec.toml"
    path.write_text(text)
    return path


def test_the_shipped_gmsc_spec_is_the_default_and_round_trips_through_json():
    spec = DEFAULT_FEATURE_SPEC
    assert spec.name == "gmsc" and len(spec.features) == 13
    assert spec.features_query is not None and ":snapshot_date" in spec.features_query
    assert FeatureSpec.from_dict(spec.to_dict()) == spec
    assert FeatureSpec.from_dict(spec.to_dict()).digest == spec.digest
    age = spec.features[spec.names.index("age")]
    assert (age.minimum, age.maximum, age.direction) == (18, 120, "decreases")
    assert spec.reasons["monthly_income"] == "Low monthly income"


def test_a_spec_without_query_files_generates_them_from_its_checked_names(tmp_path):
    spec = load_spec(_write(tmp_path, VALID))
    features = spec.query("features")
    assert "FROM accounts AS f" in features and "f.as_of = :snapshot_date" in features
    assert "f.acct_no AS customer_id" in features
    # a boolean cannot be cast to a double on PostgreSQL: it goes through an integer
    assert "CAST(CAST(f.over_indebted AS INTEGER) AS DOUBLE PRECISION)" in features
    labeled = spec.query("labeled")
    assert "JOIN account_outcomes AS o" in labeled and "o.went_bad" in labeled
    over = spec.features[3]
    assert (over.minimum, over.maximum, over.discrete) == (0, 1, True)


def test_a_changed_rule_changes_the_digest(tmp_path):
    one = load_spec(_write(tmp_path, VALID))
    two = load_spec(_write(tmp_path, VALID.replace("maximum = 120", "maximum = 110")))
    assert one.digest != two.digest


_SELECT = "SELECT * FROM accounts WHERE as_of = :snapshot_date"

BROKEN = {
    "not_toml": (VALID + "\n[[features]\n", "file", None),
    "unknown_top_field": ('colour = "red"\n' + VALID, "colour", None),
    "missing_name": (VALID.replace('name = "accounts"\n', "", 1), "name", None),
    "name_not_identifier": (VALID.replace('"accounts"\ndesc', '"My Accounts"\ndesc'), "name", None),
    "missing_entity_key": (VALID.replace('key = "acct_no"\n', ""), "entity.key", None),
    "key_with_sql": (
        VALID.replace('key = "acct_no"', 'key = "acct_no; DROP TABLE x"'),
        "entity.key",
        None,
    ),
    "unknown_key_type": (
        VALID.replace('key_type = "integer"', 'key_type = "uuid"'),
        "entity.key_type",
        None,
    ),
    "table_with_quote": (
        VALID.replace('table = "accounts"', 'table = "accounts\\"--"'),
        "entity.table",
        None,
    ),
    "unknown_entity_field": (
        VALID.replace('table = "accounts"', 'table = "accounts"\nschema = "x"'),
        "entity.schema",
        None,
    ),
    "missing_target": (
        VALID.replace('[target]\nname = "went_bad"\ntable = "account_outcomes"', ""),
        "target",
        None,
    ),
    "no_features": (VALID.split("[[features]]")[0], "features", None),
    "unknown_feature_type": (
        VALID.replace('type = "numeric"\nreason', 'type = "money"\nreason'),
        "features[0].type",
        None,
    ),
    "bounds_on_a_categorical": (
        VALID.replace('type = "numeric"\nreason', 'type = "categorical"\nreason'),
        "features[0].minimum",
        None,
    ),
    "categorical_without_categories": (
        VALID + '[[features]]\nname = "segment"\ntype = "categorical"\n',
        "features[6].categories",
        None,
    ),
    "category_repeated": (
        VALID
        + '[[features]]\nname = "segment"\ntype = "categorical"\ncategories = ["n", "s", "n"]\n',
        "features[6].categories",
        None,
    ),
    "category_not_a_string": (
        VALID + '[[features]]\nname = "segment"\ntype = "categorical"\ncategories = ["n", 2]\n',
        "features[6].categories",
        None,
    ),
    "unknown_unseen_policy": (
        VALID + '[[features]]\nname = "segment"\ntype = "categorical"\n'
        'categories = ["n"]\nunseen = "drop"\n',
        "features[6].unseen",
        None,
    ),
    "categories_on_a_number": (
        VALID.replace("minimum = 18\n", 'minimum = 18\ncategories = ["young"]\n'),
        "features[1].categories",
        None,
    ),
    "missing_feature_type": (
        VALID.replace('name = "age_years"\ntype = "numeric"', 'name = "age_years"'),
        "features[1].type",
        None,
    ),
    "duplicate_feature": (
        VALID.replace('name = "age_years"', 'name = "utilization"'),
        "features[1].name",
        None,
    ),
    "feature_is_the_key": (
        VALID.replace('name = "age_years"', 'name = "acct_no"'),
        "features[1].name",
        None,
    ),
    "bounds_reversed": (
        VALID.replace("minimum = 18\nmaximum = 120", "minimum = 120\nmaximum = 18"),
        "features[1].minimum",
        None,
    ),
    "bound_not_a_number": (
        VALID.replace("minimum = 18", 'minimum = "eighteen"'),
        "features[1].minimum",
        None,
    ),
    "forbidden_not_numbers": (
        VALID.replace("forbidden = [96, 98]", 'forbidden = ["unknown"]'),
        "features[2].forbidden",
        None,
    ),
    "unknown_direction": (
        VALID.replace('direction = "increases"', 'direction = "up"'),
        "features[0].direction",
        None,
    ),
    "flag_not_boolean": (
        VALID.replace("skewed = true", 'skewed = "yes"'),
        "features[0].skewed",
        None,
    ),
    "misspelt_feature_field": (
        VALID.replace("minimum = 0\n", "minumum = 0\n", 1),
        "features[0].minumum",
        None,
    ),
    "query_file_missing": (
        VALID.replace("[target]", '[extract]\nquery = "nope.sql"\n\n[target]'),
        "extract.query",
        None,
    ),
    "query_without_date_bind": (
        VALID.replace("[target]", '[extract]\nquery = "q.sql"\n\n[target]'),
        "extract.query",
        {"q.sql": "SELECT * FROM accounts WHERE as_of = '2026-01-31'"},
    ),
    "query_bind_only_in_a_comment": (
        VALID.replace("[target]", '[extract]\nquery = "q.sql"\n\n[target]'),
        "extract.query",
        {"q.sql": "-- :snapshot_date\nSELECT * FROM accounts"},
    ),
    "query_with_two_statements": (
        VALID.replace("[target]", '[extract]\nquery = "q.sql"\n\n[target]'),
        "extract.query",
        {"q.sql": _SELECT + ";\nDELETE FROM accounts"},
    ),
    "query_not_sql_file": (
        VALID.replace("[target]", '[extract]\nquery = "q.txt"\n\n[target]'),
        "extract.query",
        {"q.txt": _SELECT},
    ),
    "fairness_attribute_is_a_feature": (
        VALID + '[[fairness]]\nattribute = "age_years"\nreference = "a"\n',
        "fairness[0].attribute",
        None,
    ),
    "fairness_attribute_is_the_key": (
        VALID + '[[fairness]]\nattribute = "acct_no"\nreference = "a"\n',
        "fairness[0].attribute",
        None,
    ),
    "fairness_attribute_twice": (
        VALID + '[[fairness]]\nattribute = "sex"\nreference = "f"\n'
        '[[fairness]]\nattribute = "sex"\nreference = "m"\n',
        "fairness[1].attribute",
        None,
    ),
    "fairness_without_reference": (
        VALID + '[[fairness]]\nattribute = "sex"\n',
        "fairness[0].reference",
        None,
    ),
    "fairness_blank_reference": (
        VALID + '[[fairness]]\nattribute = "sex"\nreference = " "\n',
        "fairness[0].reference",
        None,
    ),
    "fairness_not_an_array": (
        VALID + '[fairness]\nattribute = "sex"\nreference = "f"\n',
        "fairness",
        None,
    ),
    "labeled_query_without_range": (
        VALID.replace('table = "account_outcomes"', 'table = "account_outcomes"\nquery = "l.sql"'),
        "target.query",
        {"l.sql": "SELECT * FROM accounts WHERE as_of = :date_from"},
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_spec_is_refused_in_one_line_naming_the_field(tmp_path, case):
    text, field, files = BROKEN[case]
    path = _write(tmp_path, text, files)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"spec {path}: {field} "), message
    assert info.value.field == field
    again = pickle.loads(pickle.dumps(info.value))
    assert str(again) == message and again.field == field


def test_a_spec_that_does_not_exist_is_named(tmp_path):
    with pytest.raises(SpecError, match="nope.toml: file cannot be read"):
        load_spec(tmp_path / "nope.toml")


def test_a_string_key_is_read_as_strings_and_labeled_rows_ordered_byte_wise(tmp_path):
    spec = load_spec(_write(tmp_path, VALID.replace('key_type = "integer"', 'key_type = "string"')))
    assert str(spec.arrow_schema().field("customer_id").type) == "string"
    assert spec.query("labeled").endswith('ORDER BY f.as_of, f.acct_no COLLATE "C"')
    assert "ORDER BY" not in spec.query("features")  # repeats are found by a query
