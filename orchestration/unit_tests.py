"""dbt unit tests run when the project's code changed, not on every pipeline run.

A dbt unit test checks a model's logic on fixed, hand-written rows: its outcome depends on the
project's code (models, macros, seeds, singular tests, configuration) and on the dbt and DuckDB
versions, never on the data in the lake. dbt's own guidance is to run them in development and CI
rather than in every production build. The pipeline therefore runs them whenever that code
differs from the last build in which they all passed (a fingerprint recorded beside the
warehouse), and excludes them otherwise; `DBT_UNIT_TESTS=always` runs them on every build.
`make test` and a plain `dbt build` always run them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from orchestration.settings import PROJECT_ROOT, Settings
from orchestration.storage import replace_file

# What a unit test's outcome can depend on: the dbt project's code and configuration (the docs
# blocks are in models/; docs/ is prose outside dbt's paths, and editing it re-runs nothing).
CODE_FOLDERS = ("models", "macros", "seeds", "snapshots", "tests")
CODE_SUFFIXES = {".sql", ".yml", ".yaml", ".csv", ".md"}
CONFIG_FILES = ("dbt_project.yml", "profiles.yml")
ENGINE_PACKAGES = ("dbt-core", "dbt-duckdb", "duckdb", "dbt-spark", "pyspark")
RECORD_NAME = "unit_tests_passed.json"


def project_fingerprint(project_dir: Path, target: str) -> str:
    """A hash of every file the unit tests' outcome can depend on, of the dbt target (each engine
    passes them on its own) and of the engine versions."""
    digest = hashlib.sha256(f"target={target}\0".encode())
    files = {name: project_dir / name for name in CONFIG_FILES}
    files["profiles.yml"] = PROJECT_ROOT / "profiles.yml"  # the profile dbt is given
    for folder in CODE_FOLDERS:
        for path in (project_dir / folder).rglob("*"):
            if path.suffix in CODE_SUFFIXES and path.is_file():
                files[path.relative_to(project_dir).as_posix()] = path
    for name, path in sorted(files.items()):
        if path.is_file():
            digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    for package in ENGINE_PACKAGES:
        try:
            digest.update(f"{package}=={version(package)}\0".encode())
        except PackageNotFoundError:
            digest.update(f"{package} absent\0".encode())
    return digest.hexdigest()


def record_path(settings: Settings) -> Path:
    """Beside the warehouse: a new lake (a new warehouse) runs the unit tests again."""
    return settings.warehouse_path.parent / RECORD_NAME


@dataclass
class UnitTestPlan:
    run: bool
    fingerprint: str
    passed_at: str | None = None  # when the unit tests last passed on this code
    code_changed: bool = True  # since they last passed (DBT_UNIT_TESTS=always aside)
    first_build: bool = False  # no pass recorded beside this warehouse yet

    def describe(self) -> str:
        if self.first_build:
            return "run (the first build of this warehouse)"
        if self.run:
            return "run (project code changed since they last passed, or DBT_UNIT_TESTS=always)"
        return (
            f"skipped: the project code is unchanged since they all passed ({self.passed_at}); "
            "DBT_UNIT_TESTS=always runs them on every build"
        )

    def dbt_args(self) -> list[str]:
        return [] if self.run else ["--exclude-resource-type", "unit_test"]


def plan(settings: Settings) -> UnitTestPlan:
    """Whether this build runs the unit tests."""
    fingerprint = project_fingerprint(settings.dbt_project_dir, settings.dbt_target)
    try:
        record = json.loads(record_path(settings).read_text())
    except (OSError, ValueError):
        record = {}
    if not record:
        return UnitTestPlan(True, fingerprint, first_build=True)
    if record.get("fingerprint") != fingerprint:
        return UnitTestPlan(True, fingerprint)
    if settings.dbt_unit_tests == "always":
        return UnitTestPlan(True, fingerprint, code_changed=False)
    return UnitTestPlan(False, fingerprint, record.get("passed_at"), code_changed=False)


def record_pass(settings: Settings, unit_test_plan: UnitTestPlan, passed: int) -> None:
    """After a successful build that ran them: remember the code they passed on."""
    if not unit_test_plan.run or passed == 0:
        return
    record = {
        "fingerprint": unit_test_plan.fingerprint,
        "passed_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "unit_tests_passed": passed,
    }
    replace_file(record_path(settings), (json.dumps(record, indent=2) + "\n").encode())
