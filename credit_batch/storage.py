"""Files by URL: a local folder or an S3 bucket, one code path, through ``pyarrow.fs``.

The lake and the model store are named by URL (``CREDIT_BATCH_LAKE_URL``,
``CREDIT_BATCH_MODELS_URL``): a local path, ``file:///path`` or
``s3://bucket/prefix`` for any S3 API (AWS, MinIO, Ceph, moto). A
:class:`Location` is one file or folder on one of them, with the few
``pathlib``-like operations the lake needs; its :attr:`Location.uri` is what
travels through XCom (never a credential: those stay in :class:`S3Options`).

Object stores have no rename. :meth:`Location.replace_from` renames on a
local disk and copies then deletes on S3, so a reader sees the old object or
the whole new one; the lake's manifests, written last, say which objects a
run may read (see :mod:`credit_batch.stores.lake`).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from credit_batch.errors import ParameterError

__all__ = ["Location", "S3Options", "is_remote", "location"]

logger = logging.getLogger(__name__)

_SCHEMES = ("s3",)


@dataclass(frozen=True)
class S3Options:
    """How to reach an S3 API; read from the usual AWS variables or a connection.

    The secret and the session token never appear in a ``repr``.
    """

    endpoint_url: str = ""
    region: str = ""
    access_key_id: str = ""
    secret_access_key: str = field(default="", repr=False)
    session_token: str = field(default="", repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> S3Options:
        """``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``, ``AWS_REGION`` / ``AWS_DEFAULT_REGION``,
        ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``."""
        return cls(
            endpoint_url=env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL", ""),
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION", ""),
            access_key_id=env.get("AWS_ACCESS_KEY_ID", ""),
            secret_access_key=env.get("AWS_SECRET_ACCESS_KEY", ""),
            session_token=env.get("AWS_SESSION_TOKEN", ""),
        )


def is_remote(url: str) -> bool:
    """Whether ``url`` names an object store (``s3://...``) rather than a local path."""
    return str(url).split("://", 1)[0].lower() in _SCHEMES if "://" in str(url) else False


def location(url: str | Path, s3: S3Options | None = None) -> Location:
    """The :class:`Location` of ``url`` (a local path, ``file://`` or ``s3://`` URL)."""
    url = str(url)
    if not is_remote(url):
        if "://" in url and not url.startswith("file://"):
            raise ParameterError(
                "storage URL", url, "must be a local path, file:///path or s3://bucket/prefix"
            )
        local = url.removeprefix("file://")
        return Location(_local(), str(Path(local).expanduser().resolve()), "")
    scheme, rest = url.split("://", 1)
    bucket = rest.split("/", 1)[0]
    if not bucket:
        raise ParameterError("storage URL", url, "must name a bucket: s3://bucket/prefix")
    return Location(_s3(s3 or S3Options()), rest.rstrip("/"), f"{scheme.lower()}://")


@functools.cache
def _local():
    import pyarrow.fs as pafs

    return pafs.LocalFileSystem()


@functools.cache
def _s3(options: S3Options):
    import pyarrow.fs as pafs

    endpoint = options.endpoint_url
    scheme = "https"
    if endpoint:
        scheme, _, endpoint = (
            endpoint.rpartition("://") if "://" in endpoint else ("https", "", endpoint)
        )
    return pafs.S3FileSystem(
        access_key=options.access_key_id or None,
        secret_key=options.secret_access_key or None,
        session_token=options.session_token or None,
        region=options.region or None,
        endpoint_override=endpoint.rstrip("/") or None,
        scheme=scheme,
        allow_bucket_creation=False,
        allow_bucket_deletion=False,
    )


class Location:
    """One file or folder on a filesystem: a local disk or an S3 bucket.

    ``fs`` is a ``pyarrow.fs.FileSystem``; ``path`` is the path on it (for S3,
    ``bucket/key``); ``prefix`` is ``""`` for a local disk or ``"s3://"``.
    """

    __slots__ = ("fs", "path", "prefix")

    def __init__(self, fs, path: str, prefix: str) -> None:
        self.fs, self.path, self.prefix = fs, path, prefix

    # -- names ---------------------------------------------------------------
    @property
    def uri(self) -> str:
        """A local path as it is, else ``s3://bucket/key``: what XCom and SQL record."""
        return f"{self.prefix}{self.path}"

    def __str__(self) -> str:
        return self.uri

    def __repr__(self) -> str:
        return f"Location({self.uri!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Location) and other.uri == self.uri

    def __hash__(self) -> int:
        return hash(self.uri)

    def __truediv__(self, name: str) -> Location:
        return Location(self.fs, f"{self.path.rstrip('/')}/{name}", self.prefix)

    @property
    def name(self) -> str:
        """The last part of the path."""
        return self.path.rsplit("/", 1)[-1]

    @property
    def parent(self) -> Location:
        """The folder holding this location."""
        return Location(self.fs, self.path.rsplit("/", 1)[0], self.prefix)

    @property
    def is_local(self) -> bool:
        """Whether this is a local file (rename is atomic, folders are real)."""
        return not self.prefix

    def with_name(self, name: str) -> Location:
        """The location beside this one named ``name``."""
        return self.parent / name

    def at(self, uri: str) -> Location:
        """The location of ``uri`` on this location's filesystem (a path from XCom)."""
        uri = str(uri)
        if self.prefix:
            if not uri.startswith(self.prefix):
                raise ParameterError("lake path", uri, f"must be a {self.prefix} URL")
            return Location(self.fs, uri[len(self.prefix) :], self.prefix)
        return Location(self.fs, str(Path(uri.removeprefix("file://")).resolve()), "")

    # -- questions -----------------------------------------------------------
    def _info(self):
        return self.fs.get_file_info(self.path)

    def exists(self) -> bool:
        """Whether a file or a folder (on S3: any object under the prefix) is here."""
        import pyarrow.fs as pafs

        return self._info().type != pafs.FileType.NotFound

    def is_file(self) -> bool:
        """Whether a file (an object) is here."""
        import pyarrow.fs as pafs

        return self._info().type == pafs.FileType.File

    def mtime(self) -> float:
        """Seconds since the epoch of the last write (0 where unknown)."""
        info = self._info()
        return info.mtime.timestamp() if info.mtime is not None else 0.0

    def iterdir(self) -> list[Location]:
        """The files and folders directly in this folder (none if it does not exist)."""
        import pyarrow.fs as pafs

        selector = pafs.FileSelector(self.path, recursive=False, allow_not_found=True)
        return [Location(self.fs, i.path, self.prefix) for i in self.fs.get_file_info(selector)]

    def files(self) -> list[Location]:
        """Every file under this folder, at any depth (none if it does not exist)."""
        import pyarrow.fs as pafs

        selector = pafs.FileSelector(self.path, recursive=True, allow_not_found=True)
        infos = self.fs.get_file_info(selector)
        return [
            Location(self.fs, i.path, self.prefix) for i in infos if i.type == pafs.FileType.File
        ]

    # -- reading and writing -------------------------------------------------
    def open_input(self):
        """A random-access file (for Parquet readers)."""
        return self.fs.open_input_file(self.path)

    @contextlib.contextmanager
    def local_copy(self) -> Iterator[Path]:
        """A local path of this file for the block: itself, or (S3) a temporary download.

        A Parquet reader over S3 would ask for every column chunk of every
        row group with its own range request (thousands per partition); one
        streamed GET into a local file costs one request and a disk the size
        of one partition.
        """
        if self.is_local:
            yield Path(self.path)
            return
        import tempfile

        with tempfile.TemporaryDirectory(prefix="credit-batch-") as folder:
            target = Path(folder) / self.name
            with self.fs.open_input_stream(self.path) as source, open(target, "wb") as out:
                for block in iter(lambda: source.read(8 << 20), b""):
                    out.write(block)
            yield target

    def read_bytes(self) -> bytes:
        """The whole file."""
        with self.fs.open_input_stream(self.path) as fh:
            return fh.read()

    def read_text(self, encoding: str = "utf-8") -> str:
        """The whole file as text."""
        return self.read_bytes().decode(encoding)

    def open_output(self):
        """A stream that writes this file (its folder made on a local disk)."""
        if self.is_local:
            self.fs.create_dir(self.parent.path, recursive=True)
        return self.fs.open_output_stream(self.path)

    def write_bytes(self, data: bytes) -> None:
        """Write the whole file (not atomic by itself: see :meth:`replace_from`)."""
        with self.open_output() as fh:
            fh.write(data)

    def write_text(self, text: str, encoding: str = "utf-8") -> None:
        """Write the whole file as text (not atomic by itself)."""
        self.write_bytes(text.encode(encoding))

    def replace_from(self, tmp: Location) -> None:
        """Put ``tmp``'s content here: a rename locally (after fsync), copy + delete on S3."""
        if self.is_local:
            with open(tmp.path, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp.path, self.path)
            return
        self.fs.copy_file(tmp.path, self.path)
        tmp.unlink()

    def unlink(self) -> None:
        """Delete this file; nothing happens if it is missing."""
        with contextlib.suppress(FileNotFoundError):
            self.fs.delete_file(self.path)

    def rmtree(self) -> None:
        """Delete this folder and all it holds (on S3, every object under the prefix)."""
        if self.exists():
            self.fs.delete_dir(self.path)

    def sha256(self) -> str:
        """Hex sha256 of the file, read in 1 MiB blocks."""
        digest = hashlib.sha256()
        with self.fs.open_input_stream(self.path) as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()
