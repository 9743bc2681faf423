# syntax=docker/dockerfile:1
# The image of the `pipeline` and `dashboard` services in docker-compose.yml: the project and its
# locked runtime dependencies (uv.lock, without the dev group), run by a non-root user.
FROM python:3.11-slim

# Same uv as `make install` uses on the development machine.
ARG UV_VERSION=0.13.9

# uv uses the image's Python (never downloads one), precompiles .pyc at install and puts the
# environment in /app/.venv, which comes first on PATH (`lakehouse` is its entry point).
ENV UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    PYTHONUNBUFFERED=1 \
    PATH=/app/.venv/bin:$PATH

RUN pip install --no-cache-dir --disable-pip-version-check "uv==${UV_VERSION}"

WORKDIR /app

# Dependencies first: this layer is rebuilt only when pyproject.toml or uv.lock change.
COPY pyproject.toml uv.lock README.md ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-project

# Then the project: the Python packages, and the dbt project the flow builds (models, macros,
# seeds, singular tests). The project is installed editable, so its root stays /app.
COPY dbt_project.yml profiles.yml ./
COPY orchestration/ orchestration/
COPY dashboard/ dashboard/
COPY models/ models/
COPY macros/ macros/
COPY seeds/ seeds/
COPY tests/reconciliation/ tests/reconciliation/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev

# dbt writes target/ and logs/ in the project; the state folder (warehouse, Prefect home, DuckDB
# spill) is a named volume in compose, created here so the volume inherits the owner.
RUN useradd --create-home --uid 10001 lakehouse \
    && mkdir -p /app/target /app/logs /data/state \
    && chown lakehouse:lakehouse /app /app/target /app/logs /data/state
USER lakehouse

CMD ["lakehouse", "--help"]
