"""Reading and writing registry documents in etcd, validated on both sides."""

from __future__ import annotations

import builtins
import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import orjson
import pydantic
import pyetcd

from kemi_stats.errors import (
    AlreadyExistsError,
    ConflictError,
    NotFoundError,
    RegistryError,
    ValidationError,
)
from kemi_stats.keyring import Keyring, KeyringError, is_sealed, sealed_key_id
from kemi_stats.registry.etcd import AuthTokenRefused, EtcdConfig, connect, etcd_errors
from kemi_stats.registry.models import KINDS, MASK, KindSpec, validate_name

__all__ = [
    "MASK",
    "Entry",
    "Registry",
    "dump_doc",
    "map_secrets",
    "masked",
    "parse_doc",
    "sealed_fields",
    "validation_message",
]


_PAGE = 500
_TXN_OPS = 100  # etcd's default --max-txn-ops is 128


@dataclass(slots=True)
class Entry:
    """A registry document with its name and the etcd revision that last changed it."""

    kind: str
    name: str
    doc: Any
    mod_revision: int = 0


def validation_message(kind: str, name: str, exc: pydantic.ValidationError) -> str:
    """One line naming the kind, the entry, the field, the value and what was expected."""
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"]) or "document"
    msg = err["msg"].removeprefix("Value error, ")
    value = err.get("input")
    shown = "" if isinstance(value, dict | list) or value is None else f" (got {value!r})"
    if err["loc"] and str(err["loc"][0]) in KINDS[kind].model.secret_fields:
        # a secret is never echoed, whatever is wrong with it
        if value is not None and not isinstance(value, dict | list) and str(value):
            msg = msg.replace(str(value), "…")
        return f"{kind} {name}: field {loc!r}: invalid value ({msg})"
    if not err["loc"]:
        # a check across fields: its message names them (and never echoes a secret)
        return f"{kind} {name}: {msg}"
    if err["type"] == "extra_forbidden":
        return f"{kind} {name}: unknown field {loc!r}"
    if err["type"] == "missing":
        return f"{kind} {name}: field {loc!r} is required"
    if msg.startswith(("host ", "'")) or repr(value) in msg:
        shown = ""
    return f"{kind} {name}: field {loc!r}: {msg}{shown}"


def parse_doc(kind: str, name: str, doc: Any) -> Any:
    """Validate ``doc`` as a ``kind`` document; raise ValidationError naming the field."""
    spec = KINDS[kind]
    try:
        validate_name(name, f"{kind} name")
        return spec.model.model_validate(doc)
    except ValueError as exc:
        if isinstance(exc, pydantic.ValidationError):
            field = ".".join(str(p) for p in exc.errors()[0]["loc"])
            raise ValidationError(validation_message(kind, name, exc), field=field) from None
        raise ValidationError(f"{kind}: {exc}", field="name") from None


def dump_doc(doc: pydantic.BaseModel) -> dict[str, Any]:
    """The JSON form a document is stored and exported in."""
    return doc.model_dump(mode="json", by_alias=True, exclude_none=True)


def sealed_fields(kind: str) -> frozenset[str]:
    """The fields of ``kind`` stored encrypted: its secrets (a token's hash is no secret)."""
    return frozenset() if kind == "token" else KINDS[kind].model.secret_fields


def map_secrets(kind: str, data: dict[str, Any], fn: Callable[[str, str], str]) -> None:
    """Replace, in place, every non-empty secret string of a stored ``kind`` document by
    ``fn(field, value)``: each string field, and each value of a dict field (``headers``),
    whose field is named ``headers.<name>``."""
    for field in sealed_fields(kind):
        value = data.get(field)
        if isinstance(value, dict):
            data[field] = {
                k: fn(f"{field}.{k}", v) if isinstance(v, str) and v else v
                for k, v in value.items()
            }
        elif isinstance(value, str) and value:
            data[field] = fn(field, value)


def masked(kind: str, doc: pydantic.BaseModel) -> dict[str, Any]:
    """The stored form of ``doc`` with every secret field replaced by :data:`MASK`."""
    data = dump_doc(doc)
    for name in KINDS[kind].model.secret_fields:
        if data.get(name):
            data[name] = MASK
    return data


class Registry:
    """CRUD on registry documents under one prefix (default ``/kemi/``)."""

    def __init__(
        self,
        etcd: EtcdConfig | str,
        prefix: str = "/kemi/",
        timeout: float = 5.0,
        *,
        keyring: Keyring | Callable[[], Keyring | None] | None = None,
    ) -> None:
        config = EtcdConfig.parse(etcd) if isinstance(etcd, str) else etcd
        self.endpoint = config.label
        self.prefix = prefix
        # seals secret fields on write and opens them on read; without one, secrets cannot
        # be written and sealed ones are read as they are (still masked). A loader is
        # called the first time a secret is met, so commands that meet none need no key.
        self._keyring = keyring
        self._client: pyetcd.MultiEndpointEtcd3Client = connect(config, timeout)

    @property
    def keyring(self) -> Keyring | None:
        if callable(self._keyring) and not isinstance(self._keyring, Keyring):
            self._keyring = self._keyring()
        return self._keyring

    @property
    def client(self) -> pyetcd.MultiEndpointEtcd3Client:
        return self._client

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def kind_prefix(self, kind: str) -> str:
        return f"{self.prefix}{KINDS[kind].plural}/"

    def key(self, kind: str, name: str) -> str:
        return self.kind_prefix(kind) + name

    def split_key(self, key: str) -> tuple[KindSpec, str] | None:
        """The kind and name a key belongs to, or None for keys outside the registry kinds."""
        if not key.startswith(self.prefix):
            return None
        plural, _, name = key[len(self.prefix) :].partition("/")
        for spec in KINDS.values():
            if spec.plural == plural and name:
                return spec, name
        return None

    # --- the stored form: secrets sealed ----------------------------------------------

    def encode(self, kind: str, name: str, doc: pydantic.BaseModel) -> bytes:
        """The bytes stored for ``doc``: its JSON with every secret field sealed."""
        data = dump_doc(doc)
        map_secrets(kind, data, lambda field, value: self._seal(kind, name, field, value))
        return orjson.dumps(data)

    def _seal(self, kind: str, name: str, field: str, value: str) -> str:
        if is_sealed(value):
            return value  # read without a keyring and written back unchanged
        ring = self.keyring
        if ring is None:
            raise KeyringError(
                f"{kind} {name}: field {field.partition('.')[0]!r} is a secret and no keyring "
                "is set: set KEMI_SECRETS_KEYRING_FILE (make one with: kemi-stats secrets keygen)"
            )
        return ring.seal(value, f"{kind}/{name}/{field}")

    def decode(self, kind: str, name: str, value: bytes) -> Any:
        """The validated document stored as ``value``, its secrets opened when a keyring is set."""
        data = orjson.loads(value)
        if isinstance(data, dict):
            map_secrets(kind, data, lambda field, found: self._open(kind, name, field, found))
        return parse_doc(kind, name, data)

    def _open(self, kind: str, name: str, field: str, value: str) -> str:
        """The plaintext of a sealed value; plaintext stored before encryption as it is
        (read until rotate-key); a sealed value as it is without a keyring (it is masked
        wherever it is shown, and services that use secrets always have the keyring)."""
        if not is_sealed(value):
            return value
        ring = self.keyring  # loaded only now: reading entries without secrets needs no key
        if ring is None:
            return value
        try:
            return ring.open(value, f"{kind}/{name}/{field}")
        except KeyringError as exc:
            raise ValidationError(f"{kind} {name}: field {field!r}: {exc}", field=field) from None

    @contextlib.contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        try:
            with etcd_errors(self.endpoint, action):
                yield
        except AuthTokenRefused:
            renew = getattr(self._client, "renew_soon", None)
            if renew is not None:
                renew()
            raise

    # --- reads ------------------------------------------------------------------------

    def revision(self) -> int:
        """The current etcd revision."""
        return self._header_revision()

    def _header_revision(self) -> int:
        with self._errors("read revision"):
            resp = self._client.get_response(self.prefix + "\x00")
        return int(resp.header.revision)

    def scan(
        self, prefix: str, revision: int | None = None
    ) -> tuple[int, list[tuple[str, bytes, int]]]:
        """Every (key, value, mod_revision) under ``prefix`` at one revision, read in pages."""
        pages = self.pages(prefix, revision)
        rows: list[tuple[str, bytes, int]] = []
        for at, page in pages:
            revision = at
            rows += page
        return int(revision or 0), rows

    def pages(
        self, prefix: str, revision: int | None = None
    ) -> Iterator[tuple[int, list[tuple[str, bytes, int]]]]:
        """Pages of (key, value, mod_revision) under ``prefix`` in key order, all read at one
        revision (the first page's), each with that revision.

        No server-side sort: etcd returns a range in key order anyway, and a sorted range
        request makes etcd 3.4 read the whole rest of the range for every page (a list of
        100,000 targets took 9.6 s instead of 4)."""
        end = _prefix_end(prefix)

        def page(start: str, at: int | None) -> Any:
            return self._client.get_range_response(start, end, limit=_PAGE, revision=at)

        # the next page is read (in a thread: gRPC lets go of the GIL) while the caller
        # works on this one
        with self._errors(f"read {prefix}"), ThreadPoolExecutor(1, "kemi-etcd-page") as pool:
            resp = page(prefix, revision)
            at = int(resp.header.revision) if revision is None else revision
            while True:
                kvs = resp.kvs
                if not (resp.more and kvs):
                    yield at, [(kv.key.decode(), kv.value, int(kv.mod_revision)) for kv in kvs]
                    break
                after = kvs[-1].key.decode() + "\x00"
                try:
                    ahead = pool.submit(page, after, at)
                except RuntimeError:  # no new threads at interpreter shutdown: read it here
                    ahead = None
                yield at, [(kv.key.decode(), kv.value, int(kv.mod_revision)) for kv in kvs]
                resp = ahead.result() if ahead is not None else page(after, at)

    def get(self, kind: str, name: str) -> Entry:
        with self._errors(f"read {self.key(kind, name)}"):
            value, meta = self._client.get(self.key(kind, name))
        if value is None:
            raise NotFoundError(f"{kind} {name!r} not found")
        return Entry(kind, name, self.decode(kind, name, value), int(meta.mod_revision))

    def exists(self, kind: str, name: str) -> bool:
        with self._errors(f"read {self.key(kind, name)}"):
            value, _ = self._client.get(self.key(kind, name))
        return value is not None

    def list(self, kind: str, on_invalid: Callable[[str, str], None] | None = None) -> list[Entry]:
        """Every valid entry of ``kind``; invalid ones go to ``on_invalid(key, reason)``."""
        return list(self.iter_entries(kind, on_invalid))

    def iter_entries(
        self, kind: str, on_invalid: Callable[[str, str], None] | None = None
    ) -> Iterator[Entry]:
        """Every valid entry of ``kind`` by name, read a page at a time (one revision), so a
        caller can print the first before the last is read; invalid ones go to
        ``on_invalid(key, reason)``."""
        prefix = self.kind_prefix(kind)
        skip = len(prefix)
        for _, rows in self.pages(prefix):
            for key, value, mod in rows:
                name = key[skip:]
                try:
                    yield Entry(kind, name, self.decode(kind, name, value), mod)
                except (ValidationError, orjson.JSONDecodeError) as exc:
                    if on_invalid:
                        on_invalid(key, str(exc))

    # --- writes -----------------------------------------------------------------------

    def create(self, kind: str, name: str, doc: pydantic.BaseModel) -> int:
        """Write a new entry; AlreadyExistsError if the name is taken. Returns the revision."""
        if not self._put_if(kind, name, doc, exists=False):
            raise AlreadyExistsError(f"{kind} {name!r} already exists (use update)")
        return self._header_revision()

    def update(self, kind: str, name: str, doc: pydantic.BaseModel) -> int:
        """Replace an existing entry; NotFoundError if there is none."""
        if not self._put_if(kind, name, doc, exists=True):
            raise NotFoundError(f"{kind} {name!r} not found")
        return self._header_revision()

    def _put_if(self, kind: str, name: str, doc: pydantic.BaseModel, *, exists: bool) -> bool:
        """Write the entry in one transaction if it exists (or does not); whether it was written."""
        key = self.key(kind, name)
        version = self._client.transactions.version(key)
        with self._errors(f"write {key}"):
            ok, _ = self._client.transaction(
                compare=[version > 0 if exists else version == 0],
                success=[self._client.transactions.put(key, self.encode(kind, name, doc))],
                failure=[],
            )
        return bool(ok)

    def put(self, kind: str, name: str, doc: pydantic.BaseModel) -> None:
        """Create or replace an entry."""
        key = self.key(kind, name)
        with self._errors(f"write {key}"):
            self._client.put(key, self.encode(kind, name, doc))

    def delete(self, kind: str, name: str) -> None:
        """Remove an entry; NotFoundError if there is none."""
        key = self.key(kind, name)
        with self._errors(f"delete {key}"):
            deleted = self._client.delete(key)
        if not deleted:
            raise NotFoundError(f"{kind} {name!r} not found")

    def write_many(
        self,
        puts: Iterable[tuple[str, str, pydantic.BaseModel]],
        deletes: Iterable[tuple[str, str]] = (),
        *,
        create_only: bool = False,
        unchanged_since: Mapping[tuple[str, str], int] | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Write many already-validated entries in transactions of at most 100 operations.

        With ``create_only`` every key must be new (checked in each transaction). With
        ``unchanged_since`` ((kind, name) -> mod revision read), each of those entries must
        still be at that revision: ConflictError names the first that changed meanwhile.
        If a later transaction fails, the ones already applied are rolled back to the
        values read before the first write, so the registry ends as it started.
        """
        ops: builtins.list[tuple[str, bytes | None]] = [
            (self.key(k, n), self.encode(k, n, d)) for k, n, d in puts
        ] + [(self.key(k, n), None) for k, n in deletes]
        read_at = {self.key(k, n): rev for (k, n), rev in (unchanged_since or {}).items()}
        txn = self._client.transactions
        before: dict[str, bytes | None] = {}
        with self._errors("read before write"):
            for i in range(0, len(ops), _TXN_OPS):
                chunk = ops[i : i + _TXN_OPS]
                ok, responses = self._client.transaction(
                    compare=[], success=[txn.get(k) for k, _ in chunk], failure=[]
                )
                for (k, _), resp in zip(chunk, responses, strict=True):
                    before[k] = resp[0][0] if resp else None
        if create_only:
            taken = [k for k, v in before.items() if v is not None]
            if taken:
                raise AlreadyExistsError(f"{taken[0]} already exists ({len(taken)} keys taken)")
        applied: builtins.list[tuple[str, bytes | None]] = []
        try:
            with self._errors("write"):
                for i in range(0, len(ops), _TXN_OPS):
                    chunk = ops[i : i + _TXN_OPS]
                    compare = [txn.version(k) == 0 for k, _ in chunk] if create_only else []
                    compare += [txn.mod(k) == read_at[k] for k, _ in chunk if k in read_at]
                    ok, _ = self._client.transaction(
                        compare=compare,
                        success=[
                            txn.put(k, v) if v is not None else txn.delete(k) for k, v in chunk
                        ],
                        failure=[],
                    )
                    if not ok and read_at:
                        raise ConflictError(
                            f"{self._changed(chunk, read_at)} changed since it was read: "
                            "nothing was written; run the command again"
                        )
                    if not ok:
                        raise AlreadyExistsError(f"a key in {chunk[0][0]}.. was created meanwhile")
                    applied.extend(chunk)
                    if progress:
                        progress(len(chunk))
        except RegistryError:
            self._rollback(applied, before)
            raise
        return self._header_revision()

    def _changed(
        self, chunk: builtins.list[tuple[str, bytes | None]], read_at: dict[str, int]
    ) -> str:
        """The first key of ``chunk`` whose entry is no longer at the revision read."""
        for key, _ in chunk:
            if key in read_at:
                _, meta = self._client.get(key)
                if meta is None or int(meta.mod_revision) != read_at[key]:
                    return key
        return chunk[0][0]

    def reseal(self, progress: Callable[[int], None] | None = None) -> dict[str, int]:
        """Seal every secret of every entry under the keyring's current key, all or nothing.

        Plaintext stored before encryption is sealed too. Each transaction checks that
        its entries did not change since they were read; if one did, or a write fails,
        what was already written is put back and the registry ends as it started.
        Returns counts: ``entries`` rewritten, ``values`` sealed, ``plaintext`` found.
        """
        if self.keyring is None:
            raise KeyringError("rotate-key needs the keyring: set KEMI_SECRETS_KEYRING_FILE")
        counts = {"entries": 0, "values": 0, "plaintext": 0}
        rewrites: builtins.list[tuple[str, bytes, bytes, int]] = []
        for kind in KINDS:
            if not sealed_fields(kind):
                continue
            _, rows = self.scan(self.kind_prefix(kind))
            for key, raw, mod in rows:
                name = key[len(self.kind_prefix(kind)) :]
                new = self._resealed(kind, name, raw, counts)
                if new is not None:
                    rewrites.append((key, raw, new, mod))
        txn = self._client.transactions
        applied: builtins.list[tuple[str, bytes, bytes, int]] = []
        try:
            with self._errors("re-seal"):
                for i in range(0, len(rewrites), _TXN_OPS // 2):
                    chunk = rewrites[i : i + _TXN_OPS // 2]
                    ok, _ = self._client.transaction(
                        compare=[txn.mod(k) == mod for k, _, _, mod in chunk],
                        success=[txn.put(k, new) for k, _, new, _ in chunk],
                        failure=[],
                    )
                    if not ok:
                        raise RegistryError(
                            f"an entry in {chunk[0][0]}.. changed while re-sealing; run it again"
                        )
                    applied.extend(chunk)
                    if progress:
                        progress(len(chunk))
        except RegistryError as exc:
            kept = self._put_back(applied)
            note = (
                f" ({kept} entries stay re-sealed, changed meanwhile: both keys open them)"
                if kept
                else " (nothing was changed)"
            )
            raise RegistryError(f"{exc}{note}") from None
        counts["entries"] = len(rewrites)
        return counts

    def _put_back(self, applied: builtins.list[tuple[str, bytes, bytes, int]]) -> int:
        """Undo re-sealed entries that still hold what re-sealing wrote (an entry changed
        since keeps its change); how many could not be put back."""
        txn = self._client.transactions
        kept = 0
        for key, old, new, _ in applied:
            try:
                ok, _ = self._client.transaction(
                    compare=[txn.value(key) == new], success=[txn.put(key, old)], failure=[]
                )
            except Exception:
                ok = False
            kept += not ok
        return kept

    def _resealed(self, kind: str, name: str, raw: bytes, counts: dict[str, int]) -> bytes | None:
        """``raw`` with its secrets sealed under the current key; None if nothing changes."""
        ring = self.keyring
        assert ring is not None
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return None  # an invalid entry: services skip it already
        if not isinstance(data, dict):
            return None
        current, changed = ring.current, False

        def again(field: str, value: str) -> str:
            nonlocal changed
            if is_sealed(value) and sealed_key_id(value) == current:
                return value
            counts["plaintext"] += not is_sealed(value)
            counts["values"] += 1
            changed = True
            return ring.seal(self._open(kind, name, field, value), f"{kind}/{name}/{field}")

        map_secrets(kind, data, again)
        return orjson.dumps(data) if changed else None

    def _rollback(
        self, applied: builtins.list[tuple[str, bytes | None]], before: dict[str, bytes | None]
    ) -> None:
        txn = self._client.transactions
        for i in range(0, len(applied), _TXN_OPS):
            chunk = applied[i : i + _TXN_OPS]
            ops = [
                txn.put(k, before[k]) if before.get(k) is not None else txn.delete(k)
                for k, _ in chunk
            ]
            with contextlib.suppress(Exception):
                self._client.transaction(compare=[], success=ops, failure=[])


def _prefix_end(prefix: str) -> str:
    b = bytearray(prefix.encode())
    b[-1] += 1
    return b.decode()
