"""dbt runs in-process and reads its profile's variables from the process environment only: the
values `.env` gives them must be exported, without overriding the environment. A project parsed
ahead (while Prefect's API boots) serves one build of the same project, target and vars, and the
docs after it."""

from __future__ import annotations

import os
import signal

import pytest

from orchestration import dbt_runner
from orchestration.cli import _stop_on_signal
from orchestration.dbt_runner import export_profile_variables
from orchestration.settings import PROJECT_ROOT, reload_settings


def test_env_file_values_reach_the_profile_variables_only(tmp_path, monkeypatch):
    names = ("DBT_THREADS", "SPARK_MASTER", "SPARK_DRIVER_MEMORY", "SPARK_BRONZE_ROOT")
    for name in (*names, "QUALITY_THRESHOLD"):
        monkeypatch.setenv(name, "")  # records the caller's value: the test's exports are undone
        monkeypatch.delenv(name)
    monkeypatch.setenv("SPARK_DRIVER_MEMORY", "6g")  # set by the caller: it wins
    env_file = tmp_path / ".env"
    env_file.write_text(
        "# comment\n"
        "DBT_THREADS=4\n"
        "SPARK_MASTER='local[2]'\n"
        "SPARK_DRIVER_MEMORY=1g\n"
        "SPARK_BRONZE_ROOT=s3a://bronze\n"  # read by macros/bronze.sql, not profiles.yml
        "QUALITY_THRESHOLD=80\n"  # a setting, not read by profiles.yml: left to the settings
    )

    export_profile_variables(env_file, PROJECT_ROOT / "profiles.yml")

    assert os.environ["DBT_THREADS"] == "4"
    assert os.environ["SPARK_MASTER"] == "local[2]"
    assert os.environ["SPARK_DRIVER_MEMORY"] == "6g"
    assert os.environ["SPARK_BRONZE_ROOT"] == "s3a://bronze"
    assert "QUALITY_THRESHOLD" not in os.environ


def test_no_env_file_changes_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv("DBT_THREADS", raising=False)
    export_profile_variables(tmp_path / "missing.env", PROJECT_ROOT / "profiles.yml")
    assert "DBT_THREADS" not in os.environ


class _Result:
    def __init__(self, success: bool, result: object) -> None:
        self.success, self.result, self.exception = success, result, None


class _RecordingRunner:
    """Stands in for dbt's dbtRunner: records the manifest each command was given."""

    calls: list[tuple[str, object]] = []
    parse_succeeds = True

    def __init__(self, manifest: object = None, callbacks: list | None = None) -> None:
        self.manifest = manifest

    def invoke(self, args: list[str]) -> _Result:
        _RecordingRunner.calls.append((args[0], self.manifest))
        if args[0] == "parse":
            manifest = object() if _RecordingRunner.parse_succeeds else None
            return _Result(_RecordingRunner.parse_succeeds, manifest)
        return _Result(True, None)


@pytest.fixture
def recording_runner(monkeypatch, tmp_path):
    import dbt.cli.main

    monkeypatch.setattr(dbt.cli.main, "dbtRunner", _RecordingRunner)
    monkeypatch.setattr(dbt_runner, "release_dbt_connections", lambda: None)
    monkeypatch.setenv("LAKE_DIR", str(tmp_path / "lake"))
    monkeypatch.delenv("DBT_TARGET_PATH", raising=False)
    monkeypatch.setenv("DBT_TARGET", "lake")  # dbt_environment() sets it: restored after
    _RecordingRunner.calls = []
    _RecordingRunner.parse_succeeds = True
    reload_settings()
    yield _RecordingRunner
    dbt_runner._parsed_ahead.clear()
    reload_settings()


def _build(as_of_date: str) -> None:
    dbt_runner.run_dbt(["build", "--vars", dbt_runner.dbt_vars(as_of_date)])


def _docs(as_of_date: str) -> None:
    dbt_runner.run_dbt(["docs", "generate", "--vars", dbt_runner.dbt_vars(as_of_date)])


def _given(recording_runner, command: str) -> list[object]:
    return [manifest for name, manifest in recording_runner.calls if name == command]


def test_the_build_then_its_docs_take_the_manifest_parsed_ahead(recording_runner):
    dbt_runner.parse_ahead("2025-06-30")
    ((command, _),) = recording_runner.calls
    assert command == "parse"
    _build("2025-06-30")
    _docs("2025-06-30")
    _build("2025-06-30")
    _docs("2025-06-30")
    first_build, second_build = _given(recording_runner, "build")
    first_docs, second_docs = _given(recording_runner, "docs")
    assert first_build is not None, "the build skips the parse"
    assert first_docs is first_build, "the docs take the manifest the build compiled"
    assert second_build is None and second_docs is None, "one build and its docs, then parse"


def test_docs_before_the_build_drop_the_manifest(recording_runner):
    dbt_runner.parse_ahead("2025-06-30")
    _docs("2025-06-30")
    _build("2025-06-30")
    assert _given(recording_runner, "docs") == [None]
    assert _given(recording_runner, "build") == [None]


def test_a_build_of_other_vars_or_target_parses_for_itself(recording_runner, monkeypatch):
    dbt_runner.parse_ahead("2025-06-30")
    _build("2025-07-01")
    _build("2025-06-30")  # the mismatch discarded it
    dbt_runner.parse_ahead("2025-06-30")
    monkeypatch.setenv("DBT_TARGET", "spark")
    reload_settings()
    _build("2025-06-30")
    assert _given(recording_runner, "build") == [None, None, None]


def test_a_failed_parse_is_not_kept(recording_runner):
    recording_runner.parse_succeeds = False
    dbt_runner.parse_ahead("2025-06-30")
    _build("2025-06-30")
    assert _given(recording_runner, "build") == [None]


def test_no_dbt_node_starts_after_a_stop_signal():
    """Ctrl+C (or SIGTERM) still raises KeyboardInterrupt where the command is, and from then on
    a dbt node about to start raises instead of running; the handlers are restored after."""
    from types import SimpleNamespace

    def event(name: str) -> SimpleNamespace:
        return SimpleNamespace(info=SimpleNamespace(name=name))

    # What `lakehouse` installs for SIGTERM (pytest leaves the default, which would end it).
    previous_term = signal.signal(signal.SIGTERM, _stop_on_signal)
    try:
        handlers = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
        for number in handlers:
            with dbt_runner.no_node_starts_after_interrupt() as guard:
                (refuse_new_nodes,) = guard.callbacks
                refuse_new_nodes(event("NodeStart"))  # before the signal: nothing happens
                assert not guard.interrupted.is_set()
                assert not guard.reports_the_stop(event("MainStackTrace"))  # a real error's
                with pytest.raises(KeyboardInterrupt):
                    signal.raise_signal(number)
                assert guard.interrupted.is_set()
                # dbt's "Encountered an error:" and traceback of the interrupt: off the console
                assert guard.reports_the_stop(event("MainEncounteredError"))
                assert guard.reports_the_stop(event("MainStackTrace"))
                assert not guard.reports_the_stop(event("NodeFinished"))
                refuse_new_nodes(event("NodeFinished"))  # the running nodes end as usual
                with pytest.raises(dbt_runner.NodeAfterInterrupt):
                    refuse_new_nodes(event("NodeStart"))
            assert signal.getsignal(number) is handlers[number]
    finally:
        signal.signal(signal.SIGTERM, previous_term)
