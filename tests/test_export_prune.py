"""Pruning of export runs: published runs beyond the newest N go, a killed export's leftovers go,
the run just published and anything newer than it stay."""

from __future__ import annotations

from pathlib import Path

from orchestration.export import prune
from orchestration.settings import Settings
from orchestration.storage import Lake


def make_run(lake_dir: Path, run_id: str, published: bool) -> None:
    for layer in ("gold", "silver"):
        folder = lake_dir / layer / "runs" / run_id
        folder.mkdir(parents=True)
        (folder / "fct_sales.parquet").write_bytes(b"x")
    if published:
        (lake_dir / "gold" / "runs" / run_id / "_manifest.json").write_text("{}")


def runs(lake_dir: Path, layer: str) -> list[str]:
    return sorted(p.name for p in (lake_dir / layer / "runs").iterdir())


def test_prune_keeps_newest_published_and_drops_leftovers(tmp_path):
    for run_id in ("r1", "r2", "r4", "r5", "r6"):
        make_run(tmp_path, run_id, published=True)
    make_run(tmp_path, "r3", published=False)  # an export killed before its manifest
    make_run(tmp_path, "r9", published=False)  # newer than the current one: maybe in progress
    (tmp_path / "silver" / "runs" / "r0").mkdir()  # an empty folder left by a killed export
    lake = Lake(Settings(_env_file=None, lake_dir=tmp_path))

    pruned = prune(lake, keep=2, current="r6")

    assert sorted(pruned) == ["r1", "r2", "r3", "r4"]
    assert runs(tmp_path, "gold") == ["r5", "r6", "r9"]
    assert runs(tmp_path, "silver") == ["r5", "r6", "r9"]


def test_prune_never_deletes_the_current_run(tmp_path):
    make_run(tmp_path, "r1", published=True)
    make_run(tmp_path, "r2", published=True)
    lake = Lake(Settings(_env_file=None, lake_dir=tmp_path))

    assert prune(lake, keep=1, current="r1") == []
    assert runs(tmp_path, "gold") == ["r1", "r2"]
