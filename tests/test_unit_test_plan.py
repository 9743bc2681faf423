"""When `lakehouse run` runs dbt's unit tests: when the project's code changed since they passed."""

from __future__ import annotations

import json

import pytest

from orchestration import unit_tests
from orchestration.settings import get_settings
from tests.conftest import copy_dbt_project


@pytest.fixture
def settings(tmp_path, monkeypatch):
    project = copy_dbt_project(tmp_path / "project")
    monkeypatch.setenv("LAKE_DIR", str(tmp_path / "lake"))
    monkeypatch.setenv("LAKEHOUSE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("LAKEHOUSE_DBT_PROJECT_DIR", str(project))
    monkeypatch.delenv("DBT_UNIT_TESTS", raising=False)
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


def test_unit_tests_run_until_they_pass_then_only_when_the_code_changes(settings, monkeypatch):
    first = unit_tests.plan(settings)
    assert first.run and first.dbt_args() == []  # nothing recorded: run them
    assert first.code_changed  # and build every silver model (orchestration/incremental.py)
    assert first.describe() == "run (the first build of this warehouse)"

    unit_tests.record_pass(settings, first, passed=0)  # a build that ran none records nothing
    assert unit_tests.plan(settings).run

    unit_tests.record_pass(settings, first, passed=48)
    record = json.loads((settings.warehouse_path.parent / "unit_tests_passed.json").read_text())
    assert record["unit_tests_passed"] == 48
    unchanged = unit_tests.plan(settings)
    assert not unchanged.run and not unchanged.code_changed
    assert unchanged.dbt_args() == ["--exclude-resource-type", "unit_test"]
    assert unchanged.describe().startswith("skipped")

    monkeypatch.setenv("DBT_UNIT_TESTS", "always")
    get_settings.cache_clear()
    always = unit_tests.plan(get_settings())
    assert always.run and not always.code_changed  # up-to-date silver may still be left out


@pytest.mark.parametrize(
    "changed",
    [
        "macros/cleaning.sql",
        "models/marts/sales/fct_sales.sql",
        "seeds/products.csv",
        "models/staging/retail/_retail__unit_tests.yml",
        "models/docs.md",
        "dbt_project.yml",
    ],
)
def test_any_change_to_the_code_runs_them_again(settings, changed):
    unit_tests.record_pass(settings, unit_tests.plan(settings), passed=1)
    assert not unit_tests.plan(settings).run
    path = settings.dbt_project_dir / changed
    path.write_text(path.read_text() + "\n")
    changed_plan = unit_tests.plan(settings)
    assert changed_plan.run and changed_plan.code_changed
    assert changed_plan.describe().startswith("run (project code changed since they last passed")


def test_a_new_model_file_runs_them_again(settings):
    unit_tests.record_pass(settings, unit_tests.plan(settings), passed=1)
    (settings.dbt_project_dir / "models" / "marts" / "new_mart.sql").write_text("select 1 as x\n")
    assert unit_tests.plan(settings).run


def test_the_project_prose_outside_dbt_paths_runs_nothing(settings):
    """docs/ (the benchmark journal, porting notes) is not in dbt's paths: editing it is no
    change of code."""
    unit_tests.record_pass(settings, unit_tests.plan(settings), passed=1)
    (settings.dbt_project_dir / "docs").mkdir()
    (settings.dbt_project_dir / "docs" / "benchmarks.md").write_text("# a new measurement\n")
    assert not unit_tests.plan(settings).run
