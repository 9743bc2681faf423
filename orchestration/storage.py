"""The one place that knows where the lake's objects live and how to reach them.

Two backends share one layout (`<layer>/<key>`): an S3 object store (embedded SeaweedFS or
MinIO) reached with boto3, or local folders under `LAKE_DIR`. `duckdb_connection()` is the one
function that hands out a DuckDB connection able to read and write the same URIs.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb

from orchestration.settings import LAYERS, SPILL_FOLDER, Settings, get_settings


class StorageError(RuntimeError):
    """A storage operation failed in a way the user can act on."""


class CredentialsRefused(StorageError):
    """The store answered and refused the credentials: retrying cannot help."""


class Lake:
    """Object access for one configured backend. Keys are '/'-separated, relative to a layer."""

    def __init__(self, settings: Settings | None = None):
        self.settings = settings or get_settings()
        self._client = None

    # --- addressing ---------------------------------------------------------------------
    @property
    def is_local(self) -> bool:
        return not self.settings.uses_object_store

    def root(self, layer: str) -> str:
        """URI of a layer's root, as DuckDB and the dbt project read it (no trailing slash)."""
        if self.is_local:
            return str(self.settings.lake_dir / layer)
        return f"s3://{self.settings.bucket(layer)}"

    def uri(self, layer: str, key: str = "") -> str:
        return f"{self.root(layer)}/{key}" if key else self.root(layer)

    def _path(self, layer: str, key: str) -> Path:
        self.settings.bucket(layer)  # validates the layer name
        return self.settings.lake_dir / layer / key

    # --- S3 client ----------------------------------------------------------------------
    @property
    def s3(self):
        if self._client is None:
            import boto3
            from botocore.config import Config

            key_id, secret = self.settings.credentials()
            self._client = boto3.client(
                "s3",
                endpoint_url=self.settings.endpoint,
                aws_access_key_id=key_id,
                aws_secret_access_key=secret,
                region_name=self.settings.s3_region,
                config=Config(
                    signature_version="s3v4",
                    s3={"addressing_style": "path"},
                    retries={"max_attempts": 3, "mode": "standard"},
                    connect_timeout=5,
                    read_timeout=60,
                ),
            )
        return self._client

    def _s3_call(self, what: str, fn, *args, **kwargs):
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn(*args, **kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied"):
                raise CredentialsRefused(
                    f"{what}: the object store at {self.settings.endpoint} refused the "
                    f"credentials ({code}); check S3_ACCESS_KEY_ID / S3_SECRET_ACCESS_KEY."
                ) from exc
            raise StorageError(f"{what} failed at {self.settings.endpoint}: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(
                f"{what}: cannot reach the object store at {self.settings.endpoint} ({exc}). "
                "Start it with `lakehouse objectstore start` or point S3_ENDPOINT at a running one."
            ) from exc

    # --- setup --------------------------------------------------------------------------
    def ensure_layers(self) -> None:
        """Create the four layer folders or buckets if they do not exist."""
        for layer in LAYERS:
            if self.is_local:
                (self.settings.lake_dir / layer).mkdir(parents=True, exist_ok=True)
                continue
            bucket = self.settings.bucket(layer)
            existing = {
                b["Name"] for b in self._s3_call("list buckets", self.s3.list_buckets)["Buckets"]
            }
            if bucket not in existing:
                self._s3_call(f"create bucket {bucket}", self.s3.create_bucket, Bucket=bucket)

    def check(self) -> None:
        """Raise a StorageError naming the endpoint if the store cannot be used."""
        if self.is_local:
            self.settings.lake_dir.mkdir(parents=True, exist_ok=True)
            return
        self._s3_call("list buckets", self.s3.list_buckets)

    def wait_until_reachable(
        self, attempts: int | None = None, log: Callable[[str], None] | None = None
    ) -> None:
        """`check()` with exponential backoff (1, 2, 4… s), bounded by S3_CONNECT_ATTEMPTS.

        A store that is down fails the run within a bounded time with a message naming the
        endpoint; refused credentials fail at once (retrying them would only storm the store).
        """
        attempts = attempts or self.settings.s3_connect_attempts
        for attempt in range(1, attempts + 1):
            try:
                self.check()
                return
            except CredentialsRefused:
                raise
            except StorageError as exc:
                if attempt == attempts:
                    raise StorageError(f"{exc} (gave up after {attempts} attempts)") from exc
                delay = 2 ** (attempt - 1)
                if log:
                    log(
                        f"object store not reachable (attempt {attempt}/{attempts}), "
                        f"retrying in {delay} s: {self.settings.endpoint}"
                    )
                time.sleep(delay)

    # --- objects ------------------------------------------------------------------------
    def list(self, layer: str, prefix: str = "") -> list[str]:
        """Keys under a prefix, sorted."""
        if self.is_local:
            base = self.settings.lake_dir / layer
            start = base / prefix if prefix else base
            if start.is_file():
                return [prefix]
            if not start.exists():
                return []
            return sorted(p.relative_to(base).as_posix() for p in start.rglob("*") if p.is_file())
        return sorted(obj["Key"] for obj in self._objects(layer, prefix))

    def stamps(self, layer: str, prefix: str = "") -> dict[str, str]:
        """Key → a stamp of the object's state under a prefix (`file_stamp` for a local file; an
        object's size, ETag and last-modified time): a rewritten object gets a new stamp."""
        if self.is_local:
            base = self.settings.lake_dir / layer
            return {key: file_stamp(base / key) for key in self.list(layer, prefix)}
        return {
            obj["Key"]: f"{obj['Size']}:{obj['ETag']}:{obj['LastModified'].isoformat()}"
            for obj in self._objects(layer, prefix)
        }

    def _objects(self, layer: str, prefix: str) -> list[dict]:
        """The S3 listing of a prefix: one dict per object (Key, Size, ETag, LastModified)."""
        paginator = self.s3.get_paginator("list_objects_v2")
        pages = self._s3_call(
            f"list {self.uri(layer, prefix)}",
            lambda: list(paginator.paginate(Bucket=self.settings.bucket(layer), Prefix=prefix)),
        )
        return [obj for page in pages for obj in page.get("Contents", [])]

    def exists(self, layer: str, key: str) -> bool:
        if self.is_local:
            return self._path(layer, key).is_file()
        return key in self.list(layer, key)

    def read_bytes(self, layer: str, key: str) -> bytes:
        if self.is_local:
            return self._path(layer, key).read_bytes()
        obj = self._s3_call(
            f"read {self.uri(layer, key)}",
            self.s3.get_object,
            Bucket=self.settings.bucket(layer),
            Key=key,
        )
        return obj["Body"].read()

    def write_bytes(self, layer: str, key: str, data: bytes) -> None:
        """Write one object in a single step: readers see the old or the new content, never half."""
        if self.is_local:
            replace_file(self._path(layer, key), data)
            return
        self._s3_call(
            f"write {self.uri(layer, key)}",
            self.s3.put_object,
            Bucket=self.settings.bucket(layer),
            Key=key,
            Body=data,
        )

    def upload_file(self, layer: str, key: str, source: Path) -> None:
        if self.is_local:
            path = self._path(layer, key)
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
            os.close(fd)
            shutil.copyfile(source, tmp)
            os.replace(tmp, path)
            return
        self._s3_call(
            f"upload {source} to {self.uri(layer, key)}",
            self.s3.upload_file,
            str(source),
            self.settings.bucket(layer),
            key,
        )

    def download_file(self, layer: str, key: str, target: Path) -> None:
        if self.is_local:
            shutil.copyfile(self._path(layer, key), target)
            return
        self._s3_call(
            f"download {self.uri(layer, key)}",
            self.s3.download_file,
            self.settings.bucket(layer),
            key,
            str(target),
        )

    def copy(self, src_layer: str, src_key: str, dst_layer: str, dst_key: str) -> None:
        if self.is_local:
            self.upload_file(dst_layer, dst_key, self._path(src_layer, src_key))
            return
        self._s3_call(
            f"copy {self.uri(src_layer, src_key)} to {self.uri(dst_layer, dst_key)}",
            self.s3.copy,
            {"Bucket": self.settings.bucket(src_layer), "Key": src_key},
            self.settings.bucket(dst_layer),
            dst_key,
        )

    def delete_key(self, layer: str, key: str) -> None:
        if self.is_local:
            self._path(layer, key).unlink(missing_ok=True)
            return
        self._s3_call(
            f"delete {self.uri(layer, key)}",
            self.s3.delete_object,
            Bucket=self.settings.bucket(layer),
            Key=key,
        )

    def delete_prefix(self, layer: str, prefix: str) -> int:
        """Delete every object under a prefix (used only to prune old export runs)."""
        if not prefix.endswith("/"):
            raise ValueError("delete_prefix needs a folder prefix ending in '/'")
        if self.is_local:
            target = self._path(layer, prefix)
            count = sum(1 for p in target.rglob("*") if p.is_file()) if target.exists() else 0
            shutil.rmtree(target, ignore_errors=True)
            return count
        keys = self.list(layer, prefix)
        for start in range(0, len(keys), 1000):
            chunk = keys[start : start + 1000]
            self._s3_call(
                f"delete {self.uri(layer, prefix)}",
                self.s3.delete_objects,
                Bucket=self.settings.bucket(layer),
                Delete={"Objects": [{"Key": k} for k in chunk]},
            )
        return len(keys)

    def iter_folders(self, layer: str, prefix: str) -> Iterator[str]:
        """Immediate sub-folder names under a prefix."""
        seen: set[str] = set()
        for key in self.list(layer, prefix):
            rest = key[len(prefix) :]
            if "/" in rest:
                name = rest.split("/", 1)[0]
                if name not in seen:
                    seen.add(name)
                    yield name


# The process's umask, read once at import (reading it means setting it): a file written by
# `replace_file` gets the mode that open() would give it, not mkstemp's owner-only 0600, so a
# dashboard running as another user reads `latest.json` as it reads the Parquet files.
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def replace_file(path: Path, data: bytes) -> None:
    """Write a local file in one step: readers see the old or the new content, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.fchmod(fd, 0o666 & ~_UMASK)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def file_stamp(path: Path) -> str:
    """A local file's size, inode, modification and change times: writing the file, or putting
    another in its place, changes the stamp (a change time cannot be set back)."""
    st = path.stat()
    return f"{st.st_size}:{st.st_ino}:{st.st_mtime_ns}:{st.st_ctime_ns}"


def configure_duckdb(conn: duckdb.DuckDBPyConnection, settings: Settings | None = None) -> None:
    """Load httpfs from the pinned wheel, create the S3 secret and expose the layer roots.

    `INSTALL httpfs` would try the internet; the extension ships in `duckdb-extension-httpfs`,
    built for exactly the pinned DuckDB version. The layer roots are DuckDB variables
    (`lakehouse_<layer>_root`) so that SQL, including the dbt sources, never builds a URL itself.
    """
    settings = settings or get_settings()
    if settings.uses_object_store:
        import duckdb_extensions

        duckdb_extensions.import_extension("httpfs", con=conn)
        conn.execute("load httpfs")
        key_id, secret = settings.credentials()
        endpoint = settings.endpoint.split("://", 1)[-1].rstrip("/")
        use_ssl = settings.endpoint.startswith("https://")
        conn.execute(
            f"create or replace secret lakehouse_s3 (type s3, key_id {sql_string(key_id)}, "
            f"secret {sql_string(secret)}, region {sql_string(settings.s3_region)}, "
            f"endpoint {sql_string(endpoint)}, url_style 'path', use_ssl {str(use_ssl).lower()})"
        )
    set_layer_variables(conn, settings)


def sql_string(text: str) -> str:
    """A SQL string literal. Used instead of query parameters in the connection setup because
    DuckDB's Python client imports pandas (~35 MiB) the first time it binds a parameter, and
    the run process has no other use for it."""
    return "'" + text.replace("'", "''") + "'"


def set_layer_variables(conn: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    """Expose each layer's root URI as the DuckDB variable `lakehouse_<layer>_root`."""
    lake = Lake(settings)
    for layer in LAYERS:
        conn.execute(f"set variable lakehouse_{layer}_root = {sql_string(lake.root(layer))}")


def duckdb_config(settings: Settings) -> dict[str, object]:
    """DuckDB limits from settings; dbt's connection uses the same (DuckDB refuses a second
    in-process connection to one file with a different configuration)."""
    return {
        "memory_limit": settings.duckdb_memory_limit,
        "threads": settings.duckdb_threads,
        # No model relies on the physical order of a table (every rank, export and report orders
        # explicitly): without it, DuckDB writes large tables with less memory.
        "preserve_insertion_order": False,
        "temp_directory": str(settings.state_dir / SPILL_FOLDER),
    }


def duckdb_connection(
    database: str | Path = ":memory:", settings: Settings | None = None, read_only: bool = False
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection that can read and write every layer of the lake."""
    settings = settings or get_settings()
    conn = duckdb.connect(str(database), read_only=read_only, config=duckdb_config(settings))
    configure_duckdb(conn, settings)
    return conn
