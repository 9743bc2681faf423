"""dbt runs in-process and reads its profile's variables from the process environment only: the
values `.env` gives them must be exported, without overriding the environment."""

from __future__ import annotations

import os

from orchestration.dbt_runner import export_profile_variables
from orchestration.settings import PROJECT_ROOT


def test_env_file_values_reach_the_profile_variables_only(tmp_path, monkeypatch):
    for name in ("DBT_THREADS", "SPARK_MASTER", "SPARK_DRIVER_MEMORY", "QUALITY_THRESHOLD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SPARK_DRIVER_MEMORY", "6g")  # set by the caller: it wins
    env_file = tmp_path / ".env"
    env_file.write_text(
        "# comment\n"
        "DBT_THREADS=4\n"
        "SPARK_MASTER='local[2]'\n"
        "SPARK_DRIVER_MEMORY=1g\n"
        "QUALITY_THRESHOLD=80\n"  # a setting, not read by profiles.yml: left to the settings
    )

    export_profile_variables(env_file, PROJECT_ROOT / "profiles.yml")

    assert os.environ["DBT_THREADS"] == "4"
    assert os.environ["SPARK_MASTER"] == "local[2]"
    assert os.environ["SPARK_DRIVER_MEMORY"] == "6g"
    assert "QUALITY_THRESHOLD" not in os.environ


def test_no_env_file_changes_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv("DBT_THREADS", raising=False)
    export_profile_variables(tmp_path / "missing.env", PROJECT_ROOT / "profiles.yml")
    assert "DBT_THREADS" not in os.environ
