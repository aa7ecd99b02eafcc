"""Model files: checked field by field, and what training registers from one."""

from __future__ import annotations

import json
import shutil

import pytest

from credit_batch import cli
from credit_batch.config import EXAMPLE_SPECS, Policy
from credit_batch.errors import ModelFileError
from credit_batch.model_file import load_model_file
from tests.conftest import query

pytestmark = pytest.mark.unit

GOOD = """
name = "pd_cards"
owner = "cards-risk"
description = "PD of the cards book"
purpose = "Decline or accept card applications"
tier = 2
limitations = ["Not for business cards", "Thin files scored as others"]
spec = "spec.toml"
algorithm = "logreg"
seed = 5
max_rows = 3000

[policy]
risk_bands = [[0.05, "low"], [0.3, "mid"], [1.0, "high"]]
swap_cutoff = 0.2
scorecard = { base_points = 500, base_odds = 20, pdo = 40 }
gates = { min_auc = 0.6, max_psi = 0.5, champion_margin = 0.02 }
"""


@pytest.fixture
def folder(tmp_path):
    """A folder with the GMSC spec (and its query files) and a good model file beside it."""
    shutil.copytree(EXAMPLE_SPECS["gmsc"].parent, tmp_path / "gmsc")
    (tmp_path / "gmsc" / "model.toml").write_text(GOOD)
    return tmp_path / "gmsc"


NAMES = {"gmsc": ("gmsc", "gmsc"), "lender": ("lender", "lender"),
         "streaming": ("pd_stream", "gmsc_stream")}  # fmt: skip


@pytest.mark.parametrize("example", sorted(EXAMPLE_SPECS))
def test_the_examples_model_files_name_their_spec_and_the_default_policy(example):
    model = load_model_file(EXAMPLE_SPECS[example].parent / "model.toml")
    assert (model.name, model.spec.name) == NAMES[example]
    assert model.policy == Policy()
    assert model.algorithm == "logreg" and model.owner and model.description


def test_a_good_model_file_reads_every_field(folder):
    model = load_model_file(folder / "model.toml")
    assert (model.name, model.algorithm, model.seed, model.max_rows) == (
        "pd_cards",
        "logreg",
        5,
        3000,
    )
    assert model.policy.risk_bands == ((0.05, "low"), (0.3, "mid"), (1.0, "high"))
    assert (model.policy.scorecard.pdo, model.policy.gates.min_auc) == (40, 0.6)
    assert model.policy.swap_cutoff == 0.2 and model.spec.name == "gmsc"
    assert model.inventory == {
        "owner": "cards-risk",
        "description": "PD of the cards book",
        "purpose": "Decline or accept card applications",
        "tier": 2,
        "limitations": ["Not for business cards", "Thin files scored as others"],
        "model_file": "model.toml",
    }


MISTAKES = {
    "no_name": ('name = "pd_cards"\n', "", "name", "is required"),
    "bad_name": ('name = "pd_cards"', 'name = "1 cards"', "name", "must match"),
    "no_spec_file": ('spec = "spec.toml"', 'spec = "other.toml"', "spec", "existing file"),
    "spec_not_toml": ('spec = "spec.toml"', 'spec = "spec.json"', "spec", "(.toml)"),
    "algorithm": ('algorithm = "logreg"', 'algorithm = "xgb"', "algorithm", "logreg, hgb, lgbm"),
    "seed": ("seed = 5", "seed = -1", "seed", "integer >= 0"),
    "max_rows_text": ("max_rows = 3000", 'max_rows = "many"', "max_rows", "integer >= 50"),
    "unknown_field": ('owner = "cards-risk"', 'colour = "red"', "colour", "is not a field"),
    "owner_number": ('owner = "cards-risk"', "owner = 3", "owner", "must be a string"),
    "bands_last": ('[1.0, "high"]', '[0.9, "high"]', "risk_bands", "the last 1"),
    "bands_shape": ('[0.05, "low"]', '["low", 0.05]', "policy.risk_bands", '[[bound, "band"]'),
    "bands_twice": ('[0.3, "mid"]', '[0.3, "low"]', "risk_bands", "name each band once"),
    "gate": ("min_auc = 0.6", "min_auc = 1.5", "min_auc", "at most 1"),
    "gate_field": ("max_psi = 0.5", "max_pis = 0.5", "policy.gates.max_pis", "is not a field"),
    "scorecard": ("pdo = 40", "pdo = 0", "scorecard", "pdo > 0"),
    "swap_cutoff": ("swap_cutoff = 0.2", "swap_cutoff = 2", "swap_cutoff", "in (0, 1)"),
    "policy_field": ("swap_cutoff = 0.2", "cutoff = 0.2", "policy.cutoff", "is not a field"),
    "toml": ('name = "pd_cards"', "name = ", "file", "is not valid TOML"),
    "tier": ("tier = 2", "tier = 4", "tier", "must be 1, 2 or 3"),
    "min_air": (
        "champion_margin = 0.02",
        "champion_margin = 0.02, min_air = 1.5",
        "min_air",
        "at most 1",
    ),
    "tier_text": ("tier = 2", 'tier = "high"', "tier", "must be 1, 2 or 3"),
    "limitations": ("limitations = [", 'limitations = "none" #', "limitations", "list of non"),
    "limitation_empty": ('"Not for business cards"', '" "', "limitations", "non-empty strings"),
}


@pytest.mark.parametrize("case", sorted(MISTAKES))
def test_each_mistake_of_a_model_file_is_one_error_naming_the_field_rule_and_file(folder, case):
    old, new, field, rule = MISTAKES[case]
    assert old in GOOD
    (folder / "model.toml").write_text(GOOD.replace(old, new, 1))
    with pytest.raises(ModelFileError) as caught:
        load_model_file(folder / "model.toml")
    message = str(caught.value)
    assert message.startswith(f"model file {folder / 'model.toml'}: ")
    assert field in caught.value.field and rule in message, message


def test_training_from_a_model_file_registers_its_name_policy_and_options(
    folder, demo, monkeypatch, capsys
):
    settings, written, _ = demo
    monkeypatch.setenv("CREDIT_BATCH_HOME", str(settings.home))
    until = str(written[-3]["snapshot_date"])
    code = cli.main(["train", "--until", until, "--model-file", str(folder / "model.toml")])
    assert code == 0, capsys.readouterr().err
    (row,) = query(settings, "SELECT * FROM model_registry WHERE model_name = 'pd_cards'")
    assert (
        Policy.from_dict(json.loads(row["policy"])) == load_model_file(folder / "model.toml").policy
    )
    assert row["training_rows"] == 3000 and row["algorithm"] == "logreg"
    assert json.loads(row["inventory"]) == load_model_file(folder / "model.toml").inventory
    from credit_batch.steps.inventory import write_inventory_page

    page = write_inventory_page(settings).read_text()
    assert "<h2 id='pd_cards'>pd_cards</h2>" in page and "<b>tier</b>: 2</li>" in page
    assert "<b>limitations</b>: Not for business cards; Thin files scored as others" in page
    assert "<b>validation</b>: no champion" in page  # trained, never promoted
    code = cli.main(
        ["train", "--until", until, "--model-file", str(folder / "model.toml"), "--seed", "6"]
    )
    assert code == 0  # a flag beside the file wins: another seed, another version
    assert len(query(settings, "SELECT * FROM model_registry WHERE model_name = 'pd_cards'")) == 2
    capsys.readouterr()
    code = cli.main(["train", "--until", until, "--model-file", "x.toml", "--spec", "y.toml"])
    assert code == 2 and "--spec must not be given with --model-file" in capsys.readouterr().err
