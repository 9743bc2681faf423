"""The run report: what one pipeline run did, as the Markdown artifact Prefect shows.

It is built from the flow's summary dict only (no I/O), so a test can render it from a hand-made
summary, and it never contains a credential: the summary holds counts, keys and timings.
"""

from __future__ import annotations

from pathlib import PurePath

LAYER_ROWS = ("bronze", "silver", "quarantined")


def _table(header: tuple[str, ...], rows: list[tuple[object, ...]]) -> list[str]:
    """A Markdown table: the first column left-aligned, the second (a number) right-aligned."""
    if not rows:
        return []
    align = ["---", "---:", *["---"] * (len(header) - 2)]
    return [
        f"| {' | '.join(header)} |",
        f"|{'|'.join(align)}|",
        *[f"| {' | '.join(map(str, row))} |" for row in rows],
        "",
    ]


def skipped_by_reason(skipped: list[dict], shown: int = 3) -> list[tuple[str, str]]:
    """(reason, the first few file names and how many more) per reason a file was skipped: a
    lake's every earlier file is "already in bronze" on each run, so names are not all listed."""
    by_reason: dict[str, list[str]] = {}
    for item in skipped:
        # "already in bronze as <key>" names the stored copy: files group on the reason alone.
        reason = item["reason"].split(" as ", 1)[0]
        by_reason.setdefault(reason, []).append(PurePath(item["file"]).name)
    grouped = []
    for reason, names in by_reason.items():
        more = f" and {len(names) - shown} more" if len(names) > shown else ""
        grouped.append((reason, f"{', '.join(names[:shown])}{more}"))
    return grouped


def _count(value: object) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def render(summary: dict) -> str:
    """Markdown: files, rows per layer, quarantine by reason, score, tests, exports, durations."""
    published = summary.get("export", {}).get("run_id")
    status = summary.get("status", "unknown")
    lines = [
        f"# Lakehouse run {summary['run_id']}: {status}",
        "",
        f"- as_of_date: **{summary['as_of_date']}**",
        f"- published: **{published or 'nothing (the previous export stays in place)'}**",
    ]
    if summary.get("error"):
        lines.append(f"- why: {summary['error']}")
    lines.append("")

    ingest = summary.get("ingest")
    if ingest:
        lines += ["## Files", ""]
        files = [
            (f"`{item['source']}`", f"landed, {item['rows']:,} rows") for item in ingest["landed"]
        ]
        files += [
            (names, f"skipped: {reason}") for reason, names in skipped_by_reason(ingest["skipped"])
        ]
        files += [(f"`{item['file']}`", f"refused: {item['reason']}") for item in ingest["refused"]]
        lines += _table(("file", "outcome"), files) or ["No file in the landing area.", ""]

    quality = summary.get("quality")
    if quality:
        lines += ["## Rows per layer and quality", ""]
        lines += [
            "| entity | bronze | silver | quarantined | quality score |",
            "|---|---:|---:|---:|---:|",
        ]
        for entity, part in sorted(quality["entities"].items()):
            counts = [_count(part.get(f"{layer}_rows")) for layer in LAYER_ROWS]
            lines.append(f"| {entity} | {' | '.join(counts)} | {part.get('quality_score')} |")
        overall = quality.get("overall", {})
        counts = [_count(overall.get(f"{layer}_rows")) for layer in LAYER_ROWS]
        lines += [
            f"| **overall** | {' | '.join(counts)} | **{overall.get('quality_score')}** |",
            "",
            f"Quality gate: score {overall.get('quality_score')} against a threshold of "
            f"{quality.get('threshold')}: **{'passed' if quality.get('passed') else 'failed'}**.",
            "",
            "### Quarantine by reason",
            "",
        ]
        reasons = [
            (f"{entity}: `{reason}`", _count(count))
            for entity, part in sorted(quality["entities"].items())
            for reason, count in sorted(part.get("quarantine", {}).items())
            if count
        ]
        lines += _table(("reason", "rows"), reasons) or ["No row quarantined.", ""]

    if summary.get("dbt"):
        lines += ["## dbt build", ""]
        lines += _table(("status", "nodes"), sorted(summary["dbt"].items()))
        if summary.get("silver"):
            lines += [f"Silver: {summary['silver']}.", ""]
        if summary.get("unit_tests"):
            lines += [f"dbt unit tests: {summary['unit_tests']}.", ""]

    export = summary.get("export")
    if export:
        lines += ["## Exported", "", f"Run folder: `{export['run_folder']}`", ""]
        exported = {**export["gold"], **export["silver"]}
        reused = set(export.get("reused", ()))
        lines += _table(
            ("model", "rows", "file"),
            [
                (m, _count(n), "copied from the previous run" if m in reused else "written")
                for m, n in sorted(exported.items())
            ],
        )

    lines += ["## Duration per stage", ""]
    lines += _table(
        ("stage", "seconds"), [(k, f"{v:.1f}") for k, v in summary["durations"].items()]
    )
    return "\n".join(lines)
