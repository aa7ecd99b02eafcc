"""Models that read other models' scores (issue 26, item 6): a spec feature is another
model's stored score of the same snapshot and key; the night scores in waves, upstream
first; a cycle is refused by name when the version is registered; lineage is recorded.

The reader is the demo's GMSC spec plus ``gmsc_score`` (the ``gmsc`` champion's score):
trained on the score ``gmsc`` stored for a labeled month, then scored with it nightly.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from credit_batch import cli, graph, pipeline, portfolio
from credit_batch.config import DEFAULT_SPEC_PATH, Settings
from credit_batch.errors import ModelGraphError, SpecError, UpstreamScoresError
from credit_batch.features import load_spec
from credit_batch.run import RunOptions
from credit_batch.steps.encoding import model_frame
from credit_batch.steps.validation import valid_rows
from credit_batch.stores import registry
from tests.conftest import query

pytestmark = pytest.mark.unit

SMALL = {"importance_sample_rows": 400, "importance_repeats": 1}
UPSTREAM_FEATURE = """
[[features]]
name = "gmsc_score"
type = "numeric"
description = "The gmsc model's score of the customer, the same night"
reason = "High score of the gmsc model"
direction = "increases"
upstream_model = "gmsc"
minimum = 0
maximum = 1
"""


def spec_file(folder: Path, *, name: str, reads: str = "gmsc", extra: str = "") -> Path:
    """The GMSC spec as ``name``, with a feature reading ``reads``'s score (its queries beside)."""
    folder.mkdir(parents=True, exist_ok=True)
    for sql in DEFAULT_SPEC_PATH.parent.glob("*.sql"):
        shutil.copy(sql, folder / sql.name)
    text = DEFAULT_SPEC_PATH.read_text().replace('name = "gmsc"', f'name = "{name}"', 1)
    feature = UPSTREAM_FEATURE.replace('"gmsc"', f'"{reads}"').replace(
        "gmsc_score", f"{reads}_score"
    )
    path = folder / f"{name}.toml"
    path.write_text(text + feature + extra)
    return path


@pytest.fixture(scope="module")
def reader_template(tmp_path_factory, demo_template):
    """The demo home with ``gmsc`` scored on the newest labeled month, and ``gmsc_reader``
    trained on those stored scores and promoted; then one night of the newest month."""
    home, written, gmsc = demo_template
    folder = tmp_path_factory.mktemp("reader")
    shutil.copytree(home, folder / "home")
    settings = Settings(home=folder / "home")
    dates = [w["snapshot_date"] for w in written]
    reader = promoted_reader(settings, folder / "spec", dates[-2], **SMALL)
    night = portfolio.run_night(settings, RunOptions(snapshot_date=dates[-1], **SMALL))
    return settings, dates, gmsc, reader, night


def promoted_reader(settings: Settings, folder: Path, date, **options):
    """``gmsc`` scored on ``date``, then ``gmsc_reader`` trained on those stored scores
    (its spec written in ``folder``) and promoted; its record."""
    portfolio.run_night(settings, RunOptions(snapshot_date=date, **options))
    spec = load_spec(spec_file(folder, name="gmsc_reader"))
    reader = pipeline.train(settings, since=date, until=date, spec=spec, model_name="gmsc_reader")
    pipeline.promote(settings, reader.model_version, reason="reads gmsc")
    return reader


@pytest.fixture
def reader_home(reader_template, tmp_path):
    settings, dates, gmsc, reader, _ = reader_template
    shutil.copytree(settings.home, tmp_path / "home")
    return Settings(home=tmp_path / "home"), dates, gmsc, reader


def _scores(settings: Settings, version: str, date) -> dict:
    rows = query(
        settings,
        "SELECT customer_id, score, run_id FROM predictions"
        " WHERE model_version = :v AND snapshot_date = :d",
        {"v": version, "d": date},
    )
    return {r["customer_id"]: r for r in rows}


def _oracle(settings: Settings, reader, gmsc, date) -> dict:
    """The reader's own predict_proba on gmsc's extracted rows (the lake, which has no
    upstream column) matched in pandas to gmsc's stored scores, rows keeping the rules."""
    import pandas as pd

    spec = reader.feature_spec
    folder = Path(settings.lake_url) / "features"
    folder = folder / f"feature_set={gmsc.feature_spec.feature_set}" / f"snapshot_date={date}"
    frame = pd.concat([pd.read_parquet(p) for p in sorted(folder.glob("*.parquet"))])
    stored = _scores(settings, gmsc.model_version, date)
    frame["gmsc_score"] = frame["customer_id"].map({k: v["score"] for k, v in stored.items()})
    frame = valid_rows(frame.reset_index(drop=True), spec=spec)
    model = registry.load_model(
        settings, reader.artifact_path, reader.sha256, version=reader.model_version
    )
    scores = model.predict_proba(model_frame(frame, spec))[:, 1]
    return dict(zip(frame["customer_id"], scores, strict=True))


def test_the_reader_scores_after_its_upstream_from_the_scores_stored_that_night(
    reader_template,
):
    settings, dates, gmsc, reader, night = reader_template
    assert sorted(night.results) == ["gmsc", "gmsc_reader"] and not night.failed
    want = _oracle(settings, reader, gmsc, dates[-1])
    got = _scores(settings, reader.model_version, dates[-1])
    assert set(got) == set(want) == set(_scores(settings, gmsc.model_version, dates[-1]))
    assert max(abs(got[k]["score"] - want[k]) for k in want) <= 1e-12
    assert "gmsc_score" in reader.features and reader.features[-1] == "gmsc_score"
    models = portfolio.plan_night(settings, RunOptions(snapshot_date=dates[-1]))
    assert {m["model_name"]: (m["wave"], m["reads"]) for m in models} == {
        "gmsc": (0, []),
        "gmsc_reader": (1, ["gmsc"]),
    }


def test_lineage_records_the_upstream_versions_the_reader_was_trained_on(reader_template, capsys):
    settings, _, gmsc, reader, night = reader_template
    rows = query(settings, "SELECT * FROM model_lineage")
    assert rows == [
        {
            "model_version": reader.model_version,
            "model_name": "gmsc_reader",
            "upstream_model": "gmsc",
            "upstream_version": gmsc.model_version,
        }
    ]
    import os

    os.environ["CREDIT_BATCH_HOME"], before = (
        str(settings.home),
        os.environ.get("CREDIT_BATCH_HOME"),
    )
    try:
        assert cli.main(["lineage", "gmsc"]) == 0
    finally:
        os.environ.pop("CREDIT_BATCH_HOME") if before is None else os.environ.update(
            CREDIT_BATCH_HOME=before
        )
    printed = capsys.readouterr().out
    assert printed.startswith("gmsc_reader reads gmsc\nchanging gmsc affects:\n")
    assert f"gmsc_reader {reader.model_version} (champion) trained on gmsc " in printed
    page = Path(night.page).read_text()
    assert "<svg" in page and "gmsc_reader reads the score of gmsc" in page


def test_rerunning_the_upstream_reruns_its_reader(reader_home):
    settings, dates, gmsc, reader = reader_home
    before = _scores(settings, reader.model_version, dates[-1])
    options = RunOptions(snapshot_date=dates[-1], model_name="gmsc", skip_unchanged=False, **SMALL)
    night = portfolio.run_night(settings, options)
    assert sorted(night.results) == ["gmsc", "gmsc_reader"] and not night.failed
    after = _scores(settings, reader.model_version, dates[-1])
    assert set(after) == set(before)
    assert {r["run_id"] for r in after.values()} == {night.results["gmsc_reader"].run.run_id}
    assert {r["run_id"] for r in before.values()}.isdisjoint({r["run_id"] for r in after.values()})


def test_a_reader_whose_upstream_has_no_scores_that_night_fails_alone_by_name(reader_home):
    settings, dates, gmsc, reader = reader_home
    artifact = settings.home / gmsc.artifact_path  # gmsc fails on a month it never scored
    artifact.write_bytes(artifact.read_bytes() + b"\x00")
    night = portfolio.run_night(settings, RunOptions(snapshot_date=dates[-3], **SMALL))
    assert sorted(night.failed) == ["gmsc", "gmsc_reader"] and not night.results
    error = night.failed["gmsc_reader"]
    assert isinstance(error, UpstreamScoresError)
    assert f"model gmsc, whose champions have none of snapshot {dates[-3]}" in str(error)
    assert _scores(settings, reader.model_version, dates[-3]) == {}


def test_a_version_that_would_close_a_cycle_is_refused_by_name_and_nothing_is_registered(
    reader_home, tmp_path
):
    settings, dates, _, _ = reader_home
    portfolio.run_night(settings, RunOptions(snapshot_date=dates[-2], **SMALL))  # reader scored
    spec = load_spec(spec_file(tmp_path / "spec", name="gmsc", reads="gmsc_reader"))
    before = query(settings, "SELECT model_version FROM model_registry ORDER BY 1")
    with pytest.raises(ModelGraphError) as caught:
        pipeline.train(settings, since=dates[-2], until=dates[-2], spec=spec, model_name="gmsc")
    path = caught.value.models  # gmsc feeds gmsc_reader, which would feed gmsc
    assert path in (["gmsc", "gmsc_reader", "gmsc"], ["gmsc_reader", "gmsc", "gmsc_reader"])
    assert f"in a cycle: {' -> '.join(path)} (each one's score feeds" in str(caught.value)
    assert query(settings, "SELECT model_version FROM model_registry ORDER BY 1") == before
    folders = {p.name for p in settings.models.iterdir()}
    assert folders == {r["model_version"] for r in before}  # no artifact written either


def test_a_reader_of_an_unregistered_model_is_refused_before_training_writes(demo, tmp_path):
    settings, written, _ = demo
    spec = load_spec(spec_file(tmp_path / "spec", name="reader", reads="nobody"))
    with pytest.raises(UpstreamScoresError, match="reads the scores of model nobody"):
        pipeline.train(settings, until=written[-3]["snapshot_date"], spec=spec)


def test_waves_order_models_after_those_they_read_and_ignore_models_outside_the_night():
    edges = {"pd": set(), "collections": {"pd"}, "recovery": {"collections", "pd"}, "lgd": set()}
    assert graph.waves(edges) == [["lgd", "pd"], ["collections"], ["recovery"]]
    assert graph.waves({"collections": {"pd"}}) == [["collections"]]  # pd stored, not tonight
    assert graph.downstream_of(edges, ["pd"]) == {"pd", "collections", "recovery"}
    assert graph.downstream_of(edges, ["recovery"]) == {"recovery"}


def test_a_cycle_and_a_chain_longer_than_the_nights_waves_are_refused_by_name():
    with pytest.raises(ModelGraphError, match=r"cycle: a -> c -> b -> a \(each one's score feeds"):
        graph.check_graph({"a": {"b"}, "b": {"c"}, "c": {"a"}}, adding="c")
    with pytest.raises(ModelGraphError, match=r"cycle: self -> self"):
        graph.check_graph({"self": {"self"}}, adding="self")
    chain = {"m1": set(), "m2": {"m1"}, "m3": {"m2"}}
    graph.check_graph(chain, adding="m3")  # three waves: a night's
    with pytest.raises(ModelGraphError, match=r"chain of 4 models .*\(m1 -> m2 -> m3 -> m4\)"):
        graph.check_graph({**chain, "m4": {"m3"}}, adding="m4")


@pytest.mark.parametrize(
    ("extra", "field", "rule"),
    [
        ('upstream_model = "pd"', "type", "must be numeric for a model's output"),
        ('upstream_output = "score"', "upstream_output", "needs upstream_model"),
    ],
)
def test_a_categorical_upstream_feature_or_an_output_without_a_model_is_refused(
    tmp_path, extra, field, rule
):
    feature = f'\n[[features]]\nname = "bad"\ntype = "categorical"\ncategories = ["a"]\n{extra}\n'
    path = spec_file(tmp_path, name="reader", extra=feature)
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert caught.value.field.endswith(f".{field}") and rule in str(caught.value)


def test_an_upstream_feature_is_no_warehouse_column_and_old_specs_keep_their_digest(tmp_path):
    spec = load_spec(spec_file(tmp_path, name="reader", reads="pd_cards"))
    assert spec.upstream_models == ("pd_cards",)
    assert "pd_cards_score" not in spec.in_warehouse.names
    assert "pd_cards_score" not in spec.in_warehouse.arrow_schema().names
    plain = load_spec(DEFAULT_SPEC_PATH)
    assert "upstream_model" not in plain.to_dict()["features"][0]  # the digest as before
    assert plain.in_warehouse is plain
    bad = dataclasses.replace(spec.upstream[0], upstream_output="odds")
    assert bad.upstream_output == "odds"  # the dataclass takes it; the file reader refuses:
    text = spec_file(tmp_path / "b", name="r", extra="").read_text()
    (tmp_path / "b" / "r.toml").write_text(
        text.replace('upstream_model = "gmsc"', 'upstream_model = "gmsc"\nupstream_output = "odds"')
    )
    with pytest.raises(SpecError, match="must be one of score, points"):
        load_spec(tmp_path / "b" / "r.toml")
