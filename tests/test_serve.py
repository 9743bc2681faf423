"""`lakehouse serve`: the flow as a scheduled Prefect deployment, run the way a team runs it.

One served deployment against the session's Prefect server: the schedule comes from
SCHEDULE_CRON, a run triggered through the API publishes an export, shows one Prefect task per
dbt node, and leaves a Markdown run report that names what it did and holds no secret.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from tests.conftest import BIN, ROOT, lakehouse, read_latest, run_env

pytestmark = pytest.mark.e2e

CRON = "17 4 * * *"


def api(url: str, path: str, body: dict | None = None, attempts: int = 10) -> object:
    """One call to the Prefect REST API, retried as Prefect's own client does: the server answers
    503 with a Retry-After header while its SQLite database is locked by another writer (the
    served process polls and writes beside this test)."""
    data = None if body is None else json.dumps(body).encode()
    for attempt in range(1, attempts + 1):
        request = urllib.request.Request(
            f"{url}{path}", data=data, headers={"content-type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            if error.code not in (429, 503) or attempt == attempts:
                raise
            time.sleep(float(error.headers.get("Retry-After") or 2))
    raise AssertionError("unreachable")


def wait_for(what: str, probe, timeout: float, every: float = 2.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture(scope="module")
def served_run(tmp_path_factory, prefect_api, state_dir, clean_sources):
    """Serve the deployment, land the clean sources, trigger one run and wait for its end."""
    lake = tmp_path_factory.mktemp("served-lake")
    env = run_env(lake, state_dir, prefect_api, SCHEDULE_CRON=CRON)
    # A served run ingests the landing area: put the files there first.
    lakehouse("ingest", str(clean_sources), "--quiet", env=env)
    log_path = tmp_path_factory.mktemp("serve-log") / "serve.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            [str(BIN / "lakehouse"), "serve"],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deployment = wait_for(
            "the deployment",
            lambda: _deployment(prefect_api),
            timeout=120,
        )
        flow_run = api(prefect_api, f"/deployments/{deployment['id']}/create_flow_run", {})
        final = wait_for(
            "the flow run to finish",
            lambda: _final_state(prefect_api, flow_run["id"]),
            timeout=600,
            every=5,
        )
        yield {
            "api": prefect_api,
            "lake": lake,
            "deployment": deployment,
            "flow_run_id": flow_run["id"],
            "state": final,
            "log": log_path,
        }
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


def _deployment(url: str) -> dict | None:
    try:
        return api(url, "/deployments/name/lakehouse-pipeline/scheduled")
    except OSError:
        return None


def _final_state(url: str, flow_run_id: str) -> str | None:
    state = api(url, f"/flow_runs/{flow_run_id}")["state"]
    return state["type"] if state and state["type"] in {"COMPLETED", "FAILED", "CRASHED"} else None


def test_deployment_is_scheduled_from_settings(served_run):
    schedules = served_run["deployment"]["schedules"]
    assert [s["schedule"]["cron"] for s in schedules] == [CRON]
    assert served_run["deployment"]["parameters"] == {"dbt_tasks": "node"}


def test_served_run_completes_and_publishes(served_run):
    assert served_run["state"] == "COMPLETED", served_run["log"].read_text()[-3000:]
    latest = read_latest(served_run["lake"] / "gold")
    assert "fct_sales" in latest["models"]
    log = served_run["log"].read_text()
    assert "Traceback" not in log and "FATAL" not in log, log[-3000:]


def _count_tasks(served_run, **task_filter) -> int:
    body = {"flow_runs": {"id": {"any_": [served_run["flow_run_id"]]}}}
    if task_filter:
        body["task_runs"] = task_filter
    return api(served_run["api"], "/task_runs/count", body)


def _task_counts(served_run) -> dict[str, int]:
    completed = {"type": {"any_": ["COMPLETED"]}}
    return {
        "model": _count_tasks(served_run, name={"like_": "model "}),
        "seed": _count_tasks(served_run, name={"like_": "seed "}),
        "test": _count_tasks(served_run, name={"like_": "test "}),
        "completed": _count_tasks(served_run, state=completed),
        "all": _count_tasks(served_run),
    }


def test_one_prefect_task_per_dbt_node(served_run):
    # prefect-dbt names a node's task "<resource type> <node name>": one per model file and
    # per seed file of the project, every one of them finished.
    models = len(list((ROOT / "models").rglob("*.sql")))
    seeds = len(list((ROOT / "seeds").glob("*.csv")))
    # Task runs report their states as events, which the server's task run recorder writes in
    # batches: the flow run can be COMPLETED while its last task states are still on their way
    # (a clean-clone CI counted 476 completed of 481). Read the counts once they have settled.
    counts = {}

    def settled():
        counts.update(_task_counts(served_run))
        return counts["model"] == models and counts["completed"] == counts["all"]

    deadline = time.monotonic() + 90
    while not settled() and time.monotonic() < deadline:
        time.sleep(2)
    assert counts["model"] == models, counts
    assert counts["seed"] == seeds, counts
    assert counts["test"] > 2 * models, counts
    assert counts["completed"] == counts["all"], counts


def test_run_report_artifact(served_run):
    artifacts = api(
        served_run["api"],
        "/artifacts/filter",
        {"flow_runs": {"id": {"any_": [served_run["flow_run_id"]]}}},
    )
    reports = [a for a in artifacts if a["key"] == "lakehouse-run"]
    assert len(reports) == 1
    text = reports[0]["data"]
    for expected in ("succeeded", "## Files", "Quarantine by reason", "Quality gate", "passed"):
        assert expected in text, expected
    assert "fct_sales" in text and "## Duration per stage" in text
    latest = read_latest(served_run["lake"] / "gold")
    assert latest["run_id"] in text


def test_served_run_logs_reach_the_server(served_run):
    # The run's own INFO logs (what it landed or skipped, what dbt builds) are in the Prefect UI.
    def messages():
        logs = api(
            served_run["api"],
            "/logs/filter",
            {"logs": {"flow_run_id": {"any_": [served_run["flow_run_id"]]}}, "limit": 200},
        )
        return [log["message"] for log in logs if log["level"] == 20] or None

    info = wait_for("the run's INFO logs", messages, timeout=60)
    assert any(message.startswith("silver: ") for message in info), info[:20]
