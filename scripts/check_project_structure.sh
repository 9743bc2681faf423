#!/usr/bin/env bash
# Project-structure checks: dbt-bouncer (dbt-bouncer.yml) plus the two rules it cannot express.
#
#   scripts/check_project_structure.sh [TARGET_DIR]     (default: target)
#
# TARGET_DIR holds the artifacts of a dbt run on this project: manifest.json (`dbt build` or
# `dbt parse`) and catalog.json (`dbt docs generate`, needed by the column checks). Exit status:
# 0 when every check passes, 1 on any violation, 2 on a usage or artifact error.
#
# 1. dbt-bouncer with dbt-bouncer.yml: naming by folder, directories, source() only in staging,
#    a uniqueness test on every model, descriptions (models, columns, sources, seeds, exposures),
#    chained views <= 5, exposures on tables. dbt-bouncer reads the artifacts folder from the
#    config only (`dbt_artifacts_dir`, no CLI flag), so this runs a temporary copy of
#    dbt-bouncer.yml with that one key set to TARGET_DIR.
# 2. From manifest.json, what dbt-bouncer has no check for:
#    - primary key: every model has `unique` and `not_null` on the same column, or the project's
#      `unique_combination_of_columns` test (check_model_has_unique_test only asks for the
#      uniqueness half);
#    - every declared source column and seed column has a description (dbt-bouncer checks these
#      only through catalog.json, which has no entry for the bronze sources: they are external
#      read_parquet relations);
#    - an exposure depends on models only (check_exposure_based_on_view looks at models only, so
#      an exposure on a source or seed would pass it).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="${1:-target}"
if [[ ! -d "$target" ]]; then
    echo "check_project_structure: no such target folder: $target" >&2
    exit 2
fi
target="$(cd "$target" && pwd)"
for artifact in manifest.json catalog.json; do
    if [[ ! -f "$target/$artifact" ]]; then
        echo "check_project_structure: $target/$artifact is missing" \
            "(run \`dbt build\` then \`dbt docs generate\` with this target path)" >&2
        exit 2
    fi
done

bin="$repo/.venv/bin"
config="$(mktemp --suffix=.yml)"
trap 'rm -f "$config"' EXIT

"$bin/python" - "$repo/dbt-bouncer.yml" "$target" "$config" <<'EOF'
import sys

import yaml

source, target, out = sys.argv[1:]
with open(source, encoding="utf-8") as f:
    config = yaml.safe_load(f)
config["dbt_artifacts_dir"] = target
with open(out, "w", encoding="utf-8") as f:
    yaml.safe_dump(config, f, sort_keys=False, allow_unicode=True)
EOF

status=0
echo "== dbt-bouncer (dbt-bouncer.yml) on $target"
(cd "$repo" && "$bin/dbt-bouncer" run --config-file "$config" --show-all-failures) || status=1

echo "== primary keys, source/seed column descriptions, exposure dependencies (manifest.json)"
"$bin/python" - "$target/manifest.json" <<'EOF' || status=1
import json
import sys

with open(sys.argv[1], encoding="utf-8") as f:
    manifest = json.load(f)
project = manifest["metadata"]["project_name"]
nodes = manifest["nodes"].values()
models = {
    n["unique_id"]: n
    for n in nodes
    if n["resource_type"] == "model" and n["package_name"] == project
}

unique_cols, not_null_cols, has_combination = {}, {}, set()
for test in nodes:
    if test["resource_type"] != "test" or not test.get("test_metadata"):
        continue
    model_id = test.get("attached_node")
    name = test["test_metadata"]["name"]
    column = test.get("column_name") or test["test_metadata"]["kwargs"].get("column_name")
    if name == "unique_combination_of_columns":
        has_combination.add(model_id)
    elif name == "unique" and column:
        unique_cols.setdefault(model_id, set()).add(column)
    elif name == "not_null" and column:
        not_null_cols.setdefault(model_id, set()).add(column)

failures = []
for model_id, model in sorted(models.items()):
    if model_id in has_combination:
        continue
    unique = unique_cols.get(model_id, set())
    if unique & not_null_cols.get(model_id, set()):
        continue
    detail = (
        f"`unique` on {sorted(unique)} without `not_null` on the same column"
        if unique
        else "no `unique` + `not_null` column and no `unique_combination_of_columns` test"
    )
    failures.append(f"{model['original_file_path']}: model `{model['name']}` has no primary-key test ({detail})")

described = [
    (f"source `{s['source_name']}.{s['name']}`", s)
    for s in manifest["sources"].values()
    if s["package_name"] == project
] + [
    (f"seed `{n['name']}`", n)
    for n in nodes
    if n["resource_type"] == "seed" and n["package_name"] == project
]
for label, node in described:
    missing = [c for c, col in node["columns"].items() if not (col.get("description") or "").strip()]
    if missing:
        failures.append(f"{node['original_file_path']}: {label} has columns without a description: {missing}")

exposures = [e for e in manifest["exposures"].values() if e["package_name"] == project]
for exposure in exposures:
    not_models = [n for n in exposure["depends_on"]["nodes"] if not n.startswith("model.")]
    if not_models:
        failures.append(
            f"{exposure['original_file_path']}: exposure `{exposure['name']}` depends on "
            f"{not_models}: an exposure reads materialized models only (ref), never a source or seed"
        )

for failure in failures:
    print(f"  FAIL {failure}")
print(
    f"Done. {len(models)} models, {len(described)} sources/seeds, {len(exposures)} exposures"
    f" checked, {len(failures)} failure(s)."
)
sys.exit(1 if failures else 0)
EOF

exit "$status"
