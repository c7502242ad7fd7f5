"""The LMDB environment: opening and checking a log directory, transactions, map growth,
group commit, the per-process registry, fork detection, and LMDB error translation.

This is the only module that talks to ``lmdb`` directly; everything above it sees
eventlog errors only (DESIGN.md sections 3 and 6, ``../shared/notes/LMDB.md``).
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import struct
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any, Final, Literal, TypeVar

import lmdb

from ._errors import (
    CorruptLogError,
    DiskFullError,
    EventLogError,
    ForkedProcessError,
    InvalidArgumentError,
    LogClosedError,
    LogNotFoundError,
    NotALogError,
    PermissionDeniedError,
    ReadOnlyLogError,
    StorageError,
    UnsupportedFormatError,
)

T = TypeVar("T")

Durability = Literal["full", "normal", "off"]
DURABILITY_MODES: Final = ("full", "normal", "off")

FORMAT_VERSION: Final = 1
DATA_FILE: Final = "data.mdb"
LOCK_FILE: Final = "lock.mdb"

# The named sub-databases of DESIGN.md section 3 (the later ones are created on first use).
DB_NAMES: Final = (
    b"meta",
    b"topics",
    b"batches",
    b"timeindex",
    b"groups",
    b"members",
    b"keys",
    b"tombstones",
    b"producers",
)
# Added after the first logs were written: a read-only open of an older log (which cannot
# create them) treats them as empty.
LATER_DB_NAMES: Final = frozenset({b"groups", b"members", b"keys", b"tombstones", b"producers"})
# The key index holds, per key, the offsets of its records as sorted fixed-size duplicates.
_DUPSORT_DBS: Final = frozenset({b"keys"})


def _open_db(env: Any, name: bytes, txn: Any = None, *, create: bool) -> Any:
    dup = name in _DUPSORT_DBS
    if txn is None:
        return env.open_db(name, create=create, dupsort=dup, dupfixed=dup)
    return env.open_db(name, txn=txn, create=create, dupsort=dup, dupfixed=dup)


MAX_DBS: Final = 16
MAX_READERS: Final = 1024

# 64-bit address space is plentiful and LMDB maps lazily: a large initial map costs nothing
# on disk (without writemap the file grows only as pages are written).
DEFAULT_MAP_SIZE: Final = (1 << 30) if sys.maxsize > 2**32 else (64 << 20)

_META_MAGIC: Final = 0xBEEFC0DE
_PAGE_HEADER: Final = 16  # LMDB's PAGEHDRSZ on 64-bit builds


# --- error translation ------------------------------------------------------------


def translate(exc: lmdb.Error, what: str) -> EventLogError:
    """Turn an LMDB exception into the eventlog error a user should see."""
    if isinstance(exc, lmdb.ReadonlyError):
        return ReadOnlyLogError(f"{what}: the log is open read-only")
    if isinstance(
        exc,
        lmdb.CorruptedError
        | lmdb.PageNotFoundError
        | lmdb.InvalidError
        | lmdb.VersionMismatchError
        | lmdb.BadRslotError
        | lmdb.PageFullError,
    ):
        return CorruptLogError(f"{what}: the data file is damaged ({exc})")
    if isinstance(exc, lmdb.PanicError):
        return StorageError(f"{what}: LMDB hit a fatal error and the log must be reopened ({exc})")
    if isinstance(exc, lmdb.DiskError) or _errno_of(exc) in (errno.ENOSPC, errno.EDQUOT, errno.EIO):
        return DiskFullError(
            f"{what}: the disk is full or failing; nothing of this write was stored ({exc})"
        )
    if isinstance(exc, lmdb.ReadersFullError):
        return StorageError(
            f"{what}: too many concurrent readers ({exc}); close unused logs or iterators"
        )
    return StorageError(f"{what}: storage error ({type(exc).__name__}: {exc})")


def _errno_of(exc: BaseException) -> int | None:
    for arg in getattr(exc, "args", ()):
        if isinstance(arg, int):
            return arg
    text = str(exc)
    if "No space left" in text:
        return errno.ENOSPC
    if "Input/output error" in text:
        return errno.EIO
    return None


def _plain_error(exc: Exception, what: str) -> Exception:
    """Non-LMDB failures inside a transaction: malformed stored keys surface as
    struct.error, which is damage, not a bug in the caller's input."""
    if isinstance(exc, struct.error):
        return CorruptLogError(f"{what}: a stored key or record is malformed ({exc})")
    return exc


# --- checking a directory before LMDB maps it -------------------------------------


def _read_meta_pages(data_path: str, file_size: int) -> tuple[int, int]:
    """Return (page size, required file size) from LMDB's two meta pages.

    A data file shorter than its newest meta page says would crash a plain ``lmdb.open``
    with SIGBUS when the missing pages are touched; checking first turns that into an error.
    The offsets are those of LMDB's 64-bit builds (on 32-bit builds nothing is checked).
    """
    if sys.maxsize <= 2**32:  # pragma: no cover - 32-bit LMDB lays meta pages out otherwise
        return 0, 0
    with open(data_path, "rb") as f:
        head = f.read(min(file_size, 65536 * 2))
    candidates: list[tuple[int, int, int]] = []  # (txnid, psize, last_pg)
    # Page 0 is at offset 0; page 1 is at offset psize (psize read from page 0, else guess).
    if len(head) >= _PAGE_HEADER + 136:
        psize0 = struct.unpack_from("<I", head, _PAGE_HEADER + 24)[0]
        offsets = [0]
        if 512 <= psize0 <= 65536 and psize0 & (psize0 - 1) == 0:
            offsets.append(psize0)
        for base in offsets:
            if len(head) < base + _PAGE_HEADER + 136:
                continue
            meta = base + _PAGE_HEADER
            magic, _version = struct.unpack_from("<II", head, meta)
            psize = struct.unpack_from("<I", head, meta + 24)[0]
            last_pg, txnid = struct.unpack_from("<QQ", head, meta + 120)
            if magic == _META_MAGIC and 512 <= psize <= 65536:
                candidates.append((txnid, psize, last_pg))
    if not candidates:
        raise CorruptLogError(f"{data_path} is not a valid LMDB data file (no meta page)")
    _txnid, psize, last_pg = max(candidates)
    return psize, (last_pg + 1) * psize


def check_directory(path: str, *, create: bool, readonly: bool) -> bool:
    """Check what ``path`` holds before opening it. Returns True when a log exists there.

    Raises:
        LogNotFoundError: nothing there and creating is not allowed.
        NotALogError: a file, or a directory holding other things than a log.
        CorruptLogError: a log whose data file is empty or truncated.
    """
    try:
        entries = os.listdir(path)
    except PermissionError:
        raise PermissionDeniedError(
            f"permission denied reading {path!r}; the log's directory must be readable (and "
            f"writable, unless opened read-only) by this user"
        ) from None
    except FileNotFoundError:
        if readonly or not create:
            raise LogNotFoundError(f"no log at {path!r} (the directory does not exist)") from None
        return False
    except NotADirectoryError:
        raise NotALogError(f"{path!r} is a file, not a log directory") from None
    data_path = os.path.join(path, DATA_FILE)
    if DATA_FILE not in entries:
        others = sorted(e for e in entries if e != LOCK_FILE and not e.startswith(_INIT_PREFIX))
        if others:
            shown = ", ".join(others[:5]) + (", ..." if len(others) > 5 else "")
            raise NotALogError(
                f"{path!r} is not an eventlog log: it holds other files ({shown}) and no "
                f"{DATA_FILE}; choose an empty or new directory"
            )
        if readonly or not create:
            raise LogNotFoundError(f"no log at {path!r} (the directory holds no {DATA_FILE})")
        return False
    size = os.path.getsize(data_path)
    if size == 0:
        raise CorruptLogError(
            f"{data_path} is empty where a log existed; restore it from a backup (or delete "
            f"the directory to start a new, empty log)"
        )
    _psize, required = _read_meta_pages(data_path, size)
    if size < required:
        raise CorruptLogError(
            f"{data_path} is truncated: {size} bytes where the log needs {required}; "
            f"restore it from a backup"
        )
    return True


# --- creating a log atomically ------------------------------------------------------

_INIT_PREFIX: Final = ".eventlog-init-"


def _create_log(path: str, durable: bool = True) -> None:
    """Create a new, empty log in directory ``path`` so that a crash at any moment leaves
    either no log (and nothing to refuse) or a complete one.

    The data file is built (and synced, when ``durable``) in a private sub-directory, then
    linked into place;
    ``os.link`` fails if another process created the log first, and then we use theirs.
    Because a data file only ever appears whole, an empty or short ``data.mdb`` found later
    is damage, never an interrupted creation.
    """
    # Never world-writable, whatever the umask (DESIGN section 7b).
    os.makedirs(path, mode=0o775, exist_ok=True)
    with suppress(OSError):
        mode = os.stat(path).st_mode
        if mode & 0o002:
            os.chmod(path, mode & ~0o002 & 0o7777)
    _remove_stale_init_dirs(path)
    tmp = tempfile.mkdtemp(prefix=f"{_INIT_PREFIX}{os.getpid()}-", dir=path)
    try:
        env = lmdb.open(
            tmp,
            subdir=True,
            max_dbs=MAX_DBS,
            map_size=1 << 20,
            sync=durable,
            metasync=durable,
            writemap=False,
        )
        try:
            with env.begin(write=True) as txn:
                dbs = {name: _open_db(env, name, txn, create=True) for name in DB_NAMES}
                meta = dbs[b"meta"]
                txn.put(b"format", str(FORMAT_VERSION).encode(), db=meta)
                txn.put(b"created_ms", str(int(time.time() * 1000)).encode(), db=meta)
                txn.put(b"next_topic_id", b"1", db=meta)
                txn.put(b"schema", b"0", db=meta)
                txn.put(b"keyindex", b"2", db=meta)  # born with the key index (its format)
            if durable:
                env.sync(True)
        finally:
            env.close()
        # FileExistsError: another process created the log first; use theirs.
        with suppress(FileExistsError):
            os.link(os.path.join(tmp, DATA_FILE), os.path.join(path, DATA_FILE))
        if durable:
            _fsync_dir(path)
    except lmdb.Error as exc:
        raise translate(exc, f"creating a log in {path!r}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _remove_stale_init_dirs(path: str) -> None:
    """Remove creation directories left by processes that died while creating the log."""
    for entry in os.listdir(path):
        if not entry.startswith(_INIT_PREFIX):
            continue
        pid_text = entry[len(_INIT_PREFIX) :].split("-", 1)[0]
        try:
            os.kill(int(pid_text), 0)
        except (ValueError, ProcessLookupError):
            shutil.rmtree(os.path.join(path, entry), ignore_errors=True)
        except PermissionError:
            pass  # alive, owned by someone else


def _fsync_dir(path: str) -> None:
    with suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# --- coordination of in-process users of one environment --------------------------


class _Gate:
    """Lets many transactions run at once, or one exclusive action (map resize, close).

    LMDB requires that no transaction of this process is active while the map is resized,
    and an environment must not be closed under a running transaction.
    """

    __slots__ = ("_active", "_cond", "_exclusive", "_lock")

    def __init__(self) -> None:
        # `with lock` (C) instead of `with condition` (Python): enter/leave run on every
        # transaction; the condition shares the lock for the rare waits.
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._active = 0
        self._exclusive = False

    def enter(self) -> None:
        with self._lock:
            while self._exclusive:
                self._cond.wait()
            self._active += 1

    def leave(self) -> None:
        with self._lock:
            self._active -= 1
            if self._exclusive and self._active == 0:
                self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Wait until no transaction of this process runs, and block new ones meanwhile."""
        with self._lock:
            while self._exclusive:
                self._cond.wait()
            self._exclusive = True
            try:
                while self._active:
                    self._cond.wait()
            except BaseException:  # interrupted while waiting: never leave the gate shut
                self._exclusive = False
                self._cond.notify_all()
                raise
        try:
            yield
        finally:
            with self._lock:
                self._exclusive = False
                self._cond.notify_all()


class _Op:
    __slots__ = ("done", "error", "exclusive", "fn", "result", "what")

    def __init__(self, fn: Callable[[Any], Any], what: str, exclusive: bool = False) -> None:
        self.fn = fn
        self.what = what
        self.exclusive = exclusive
        self.result: Any = None
        self.error: BaseException | None = None
        self.done = False


# --- the shared environment --------------------------------------------------------


class Storage:
    """One LMDB environment, shared by every Log of this process that opened the same path."""

    def __init__(
        self,
        path: str,
        ident: tuple[int, int],
        *,
        readonly: bool,
        durability: Durability,
        map_size: int,
    ) -> None:
        self.path = path
        self.ident = ident
        self.readonly = readonly
        self.durability = durability
        self.pid = os.getpid()
        self.refcount = 0
        self.closed = False
        self.forked = False
        self._gate = _Gate()
        self._write_lock = threading.Lock()
        self._write_cv = threading.Condition(self._write_lock)
        self._leading = False
        self._last_group = 0
        self._pending: list[_Op] = []
        self._writer_thread: int | None = None
        self.commit_lock = threading.Lock()
        # Threads sleeping in wait_for_commit(), each on a lock of its own that the next
        # commit releases (see there why not a Condition).
        self._commit_waiters: list[threading.Lock] = []
        self.commits = 0
        # Caches owned by the layer above (topic catalog, decoded batches); kept here so
        # that every Log sharing this environment shares them.
        self.cache: dict[str, Any] = {}
        try:
            self.env = lmdb.open(
                path,
                subdir=True,
                readonly=readonly,
                create=False,  # _create_log made the data file
                map_size=map_size,
                max_dbs=MAX_DBS,
                max_readers=MAX_READERS,
                sync=durability != "off",
                metasync=durability == "full",
                writemap=False,  # never: a full disk would kill the process with SIGBUS
                map_async=False,
                lock=True,
            )
        except lmdb.Error as exc:
            if isinstance(exc, lmdb.ReadonlyError) or _errno_of(exc) in (errno.EACCES, errno.EPERM):
                raise PermissionDeniedError(
                    f"permission denied opening {path!r}: "
                    + (
                        f"even a read-only open needs write access to {LOCK_FILE} (LMDB's "
                        f"table of readers)"
                        if readonly
                        else "the log's directory and files must be writable by this user"
                    )
                ) from None
            raise translate(exc, f"opening {path!r}") from None
        try:
            # Reader slots left by processes that died without closing.
            self.env.reader_check()
            self.dbs = self._open_dbs()
        except lmdb.Error as exc:
            self.env.close()
            raise translate(exc, f"opening {path!r}") from None
        except BaseException:
            self.env.close()
            raise

    # -- setup --

    def _open_dbs(self) -> dict[bytes, Any]:
        dbs: dict[bytes, Any] = {}
        try:
            # No explicit transaction: py-lmdb keeps a handle opened inside a caller's
            # read transaction private to it, unusable afterwards.
            meta = self.env.open_db(b"meta", create=False)
            with self.env.begin() as txn:
                fmt = txn.get(b"format", db=meta)
        except (lmdb.NotFoundError, lmdb.IncompatibleError):
            raise NotALogError(
                f"{self.path!r} holds an LMDB database but not an eventlog log"
            ) from None
        except lmdb.Error as exc:
            raise translate(exc, f"opening {self.path!r}") from None
        if fmt is None:
            raise NotALogError(
                f"{self.path!r} holds an LMDB database but not an eventlog log (no format marker)"
            )
        try:
            version = int(fmt)
        except ValueError:
            raise CorruptLogError(f"{self.path!r}: unreadable format marker {fmt!r}") from None
        if version > FORMAT_VERSION:
            raise UnsupportedFormatError(
                f"{self.path!r} was written in on-disk format {version}; this version of "
                f"eventlog reads formats up to {FORMAT_VERSION}: upgrade eventlog"
            )
        if self.readonly:
            for name in DB_NAMES:
                try:
                    dbs[name] = _open_db(self.env, name, create=False)
                except lmdb.NotFoundError:
                    if name in LATER_DB_NAMES:
                        continue
                    # Every version creates all of them; a missing one is damage. (A
                    # None handle would silently address LMDB's main database instead.)
                    raise CorruptLogError(
                        f"{self.path!r}: the {name.decode()!r} sub-database is missing"
                    ) from None
            return dbs
        while True:
            try:
                with self.env.begin(write=True) as txn:
                    # Sub-databases added by newer minor versions are created on first open.
                    for name in DB_NAMES:
                        dbs[name] = _open_db(self.env, name, txn, create=True)
                return dbs
            except lmdb.MapResizedError:
                # Another process grew the map; nothing else uses this environment yet.
                self.env.set_mapsize(0)

    # -- state checks --

    def check_usable(self) -> None:
        if self.forked:
            raise ForkedProcessError(
                f"this log ({self.path!r}) was opened in process {self.pid} before a fork; "
                f"call eventlog.open() again in the child process"
            )
        if self.closed:
            raise LogClosedError(f"the log {self.path!r} is closed")

    # -- transactions --

    def _enter(self) -> None:
        self._gate.enter()
        if self.closed or self.forked:
            self._gate.leave()
            self.check_usable()

    def _adopt_map_size(self) -> None:
        """Another process grew the map: adopt its size (needs no active transaction here)."""
        with self._gate.exclusive():
            if not self.closed:
                self.env.set_mapsize(0)

    def read(self, fn: Callable[[Any], T], what: str = "reading") -> T:
        """Run ``fn(txn)`` in a short read transaction; LMDB errors become eventlog errors."""
        while True:
            self._enter()
            try:
                txn = self.env.begin()
            except lmdb.MapResizedError:
                self._gate.leave()
                self._adopt_map_size()
                continue
            except lmdb.Error as exc:
                self._gate.leave()
                raise translate(exc, what) from None
            try:
                return fn(txn)
            except lmdb.Error as exc:
                raise translate(exc, what) from None
            except struct.error as exc:
                raise _plain_error(exc, what) from None
            finally:
                txn.abort()
                self._gate.leave()

    def write(self, fn: Callable[[Any], T], what: str = "writing", *, exclusive: bool = False) -> T:
        """Run ``fn(txn)`` in a write transaction, committed durably per the durability mode.

        Concurrent callers are combined (group commit, leader/follower): a caller that finds
        no commit in progress becomes the leader and runs every pending operation (except
        ``exclusive`` ones, which always run in a transaction of their own) in one
        transaction, each in a nested transaction so that one failing operation does not
        undo the others, then commits once (one fsync for all). Callers arriving meanwhile
        queue up and sleep until their operation is done, or until they must lead the next
        group.
        """
        if self.readonly:
            raise ReadOnlyLogError(f"{what}: the log {self.path!r} is open read-only")
        if self._writer_thread == threading.get_ident():
            # LMDB allows one write transaction per thread: a write from inside a write
            # (a callback) would deadlock, so refuse it clearly.
            raise InvalidArgumentError(
                f"{what}: a log write was started from inside another write on the same thread"
            )
        op = _Op(fn, what, exclusive)
        cv = self._write_cv
        queued = False
        yielded = False  # an exclusive op lets the writes waiting before it go first, once
        while True:
            with self._write_lock:
                if not queued:
                    self.check_usable()
                    self._pending.append(op)
                    queued = True
                try:
                    while self._leading and not op.done:
                        if self.closed:
                            self._pending.remove(op)
                            self.check_usable()
                        cv.wait()
                except BaseException:
                    # Interrupted while queued: withdraw the operation so that no later
                    # group commits it behind the caller's back (if a leader took it
                    # already, it completes or fails as a whole with that group).
                    if op in self._pending:
                        self._pending.remove(op)
                    raise
                if op.done:
                    break
                self._leading = True
            try:
                self._lead(op, yield_first=exclusive and not yielded)
            except BaseException:
                # Interrupted before this group was taken: withdraw the operation, as a
                # queued follower does, so that no later group commits it.
                with self._write_lock:
                    if op in self._pending:
                        self._pending.remove(op)
                raise
            yielded = True  # done, or back to the queue's head (the loop's top sees which)
        if op.error is not None:
            raise op.error
        return op.result  # type: ignore[no-any-return]

    def _lead(self, own: _Op, *, yield_first: bool = False) -> None:
        cv = self._write_cv
        ops: list[_Op] = []
        try:
            if self._last_group > 1:
                # Writers are concurrent: the ones just woken by the previous commit are
                # about to queue again. Let them (release the GIL once) so this commit
                # serves them too, instead of alternating groups of 1 and of n - 1.
                time.sleep(0)
            with self._write_lock:
                # Maintenance (compaction, retention chunks) is exclusive: a transaction of
                # its own, so an append never waits for a chunk it happened to be grouped
                # with, only for one already running.
                others = [op for op in self._pending if not op.exclusive]
                if own.exclusive and yield_first and others:
                    # Appends waiting when a maintenance chunk's turn comes go first: an
                    # append waits for at most the one chunk already running.
                    ops = others
                    self._pending = [op for op in self._pending if op.exclusive]
                elif own.exclusive:
                    ops = [own]
                    self._pending.remove(own)
                else:
                    ops = [op for op in self._pending if not op.exclusive]
                    self._pending = [op for op in self._pending if op.exclusive]
                self._last_group = len(ops)
            self._writer_thread = threading.get_ident()
            self._commit(ops)
        finally:
            self._writer_thread = None
            for op in ops:  # whatever happened, every taken operation ends done
                if not op.done:
                    op.error = StorageError(f"{op.what}: interrupted; nothing was written")
                    op.done = True
            with self._write_lock:
                # Hand over: a waiter whose operation is still pending leads the next group.
                self._leading = False
                cv.notify_all()

    def _commit(self, ops: list[_Op]) -> None:
        try:
            self._commit_with_growth(ops)
        except BaseException as exc:
            for op in ops:
                if not op.done:
                    if isinstance(exc, lmdb.Error):
                        op.error = translate(exc, op.what)
                    elif isinstance(exc, Exception):
                        op.error = exc
                    else:  # KeyboardInterrupt, SystemExit: the leader re-raises it
                        op.error = StorageError(
                            f"{op.what}: interrupted ({type(exc).__name__}); nothing was written"
                        )
                    op.done = True
            if not isinstance(exc, Exception):
                raise
        else:
            self._note_commit()

    def _commit_with_growth(self, ops: list[_Op]) -> None:
        while True:
            adopt = grow = False
            self._enter()
            try:
                try:
                    txn = self.env.begin(write=True)
                except lmdb.MapResizedError:
                    adopt = True
                else:
                    txid = txn.id()
                    try:
                        self._run_ops(txn, ops)
                        if all(op.error is not None for op in ops):
                            txn.abort()
                        else:
                            txn.commit()
                    except lmdb.MapFullError:
                        txn.abort()
                        grow = True
                    except BaseException as exc:
                        if not isinstance(exc, lmdb.Error) and self._committed(txid):
                            # Interrupted (Ctrl-C) right after the commit returned: the
                            # writes are durable, so they must be reported as done.
                            for op in ops:
                                op.done = True
                            self._note_commit()
                        else:
                            txn.abort()
                        raise
            finally:
                self._gate.leave()
            if adopt:
                self._adopt_map_size()
                continue
            if grow:
                # The failed transaction left nothing behind: make room, run everything again.
                for op in ops:
                    op.result = op.error = None
                self._grow_map()
                continue
            for op in ops:
                op.done = True
            return

    def _committed(self, txid: int) -> bool:
        """Whether transaction ``txid`` of this thread committed. Asked before aborting:
        while it is still open, this thread holds LMDB's writer lock, so no other
        transaction can have taken that id."""
        try:
            return int(self.env.info()["last_txnid"]) >= txid
        except lmdb.Error:  # pragma: no cover
            return False

    def _note_commit(self) -> None:
        with self.commit_lock:
            self.commits += 1
            waiters = self._commit_waiters
            if not waiters:
                return  # the common case: nobody waits, nothing to allocate
            self._commit_waiters = []
        for waiter in waiters:
            waiter.release()

    def wait_for_commit(self, seen: int, timeout: float) -> None:
        """Sleep until a commit of this process moves ``commits`` past ``seen``, the
        storage closes, or ``timeout`` seconds pass (other processes' commits are not
        notified: callers poll for them).

        Each waiter sleeps on a lock of its own, released by the next commit: a Ctrl-C
        then interrupts the sleep cleanly. (``Condition.wait`` re-acquires the shared lock
        when it wakes, and a KeyboardInterrupt landing there leaves that lock released, so
        leaving the ``with`` block raises "release unlocked lock" instead.)
        """
        waiter = threading.Lock()
        waiter.acquire()
        with self.commit_lock:
            if self.commits != seen or self.closed:
                return
            self._commit_waiters.append(waiter)
        try:
            waiter.acquire(True, max(0.0, timeout))
        finally:
            with self.commit_lock:
                if waiter in self._commit_waiters:
                    self._commit_waiters.remove(waiter)

    def _run_ops(self, txn: Any, ops: list[_Op]) -> None:
        if len(ops) == 1:
            op = ops[0]
            try:
                op.result = op.fn(txn)
            except lmdb.Error:
                raise  # map growth or a failed transaction: handled for the whole group
            except Exception as exc:
                op.error = _plain_error(exc, op.what)
            return
        for op in ops:
            child = self.env.begin(write=True, parent=txn)
            try:
                op.result = op.fn(child)
            except lmdb.Error:
                child.abort()
                raise
            except Exception as exc:
                child.abort()
                op.error = _plain_error(exc, op.what)
            else:
                child.commit()

    def _grow_map(self) -> None:
        with self._gate.exclusive():
            current = self.env.info()["map_size"]
            self.env.set_mapsize(current * 2)

    def last_txnid(self) -> int:
        """The id of the snapshot a new read transaction sees: a cheap change check.

        Not ``env.info()["last_txnid"]``: that reads the meta page, which a writer in
        another process updates *before* the lock file's reader-visible id (while it
        flushes the meta page, ~0.3 ms with durability "full"); a waiter that saw the new
        id there, then read the older snapshot, would miss the commit until its next
        periodic check.
        """
        return self.read(lambda txn: int(txn.id()), "checking for new commits")

    def sync(self) -> None:
        """Force committed data to disk (for the "normal" and "off" durability modes)."""
        self._enter()
        try:
            self.env.sync(True)
        except lmdb.Error as exc:
            raise translate(exc, "syncing") from None
        finally:
            self._gate.leave()

    def used_bytes(self) -> int:
        """The bytes of the data file in use (up to its last page), what a copy writes at
        most."""
        try:
            info = self.env.info()
            return (int(info["last_pgno"]) + 1) * int(self.env.stat()["psize"])
        except lmdb.Error as exc:
            raise translate(exc, "reading the log's size") from None

    def copy_to(self, path: str, *, compact: bool) -> None:
        """Write a consistent copy of the environment into directory ``path`` (LMDB's
        copy: one read transaction, so writers keep going meanwhile)."""
        self._enter()
        try:
            self.env.copy(path, compact=compact)
        except lmdb.Error as exc:
            raise translate(exc, f"backing up to {path!r}") from None
        finally:
            self._gate.leave()

    # -- teardown --

    def close(self) -> None:
        """Close the environment once no transaction of this process uses it.

        If interrupted while waiting (KeyboardInterrupt), nothing is closed and the
        environment stays usable.
        """
        if self.forked or self.closed:
            return
        cv = self._write_cv
        with self._write_lock:
            while self._leading:
                cv.wait()
            self._leading = True  # no write group starts while closing
        try:
            with self._gate.exclusive():
                self.closed = True
                self.env.close()
        finally:
            with self._write_lock:
                if not self.closed:
                    self._leading = False
                cv.notify_all()
        with self.commit_lock:
            waiters, self._commit_waiters = self._commit_waiters, []
        for waiter in waiters:
            waiter.release()


# --- the per-process registry ------------------------------------------------------

_registry: dict[tuple[int, int], Storage] = {}
_registry_lock = threading.Lock()
_abandoned: list[Storage] = []
# In a forked child: the environments inherited from the parent, by directory identity.
_inherited: dict[tuple[int, int], Storage] = {}


def _after_fork_in_child() -> None:
    # The child must never use (or close: that clears the parent's reader slots) the
    # parent's environments. Mark them and keep them alive forever.
    global _registry_lock
    _registry_lock = threading.Lock()
    for storage in _registry.values():
        storage.forked = True
        _abandoned.append(storage)
        _inherited[storage.ident] = storage
        # Leak one reference so the environment is never deallocated (which would close
        # it) even at interpreter shutdown.
        with suppress(Exception):
            ctypes.pythonapi.Py_IncRef(ctypes.py_object(storage.env))
    _registry.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)

_py_lmdb_open_keys: set[Any] | None = None


def _find_open_keys_set() -> set[Any] | None:
    """Find py-lmdb's set of open file identities: the one set that gains a new
    environment's identities when it opens and loses them when it closes."""
    import gc

    from lmdb import _envid

    probe_dir = tempfile.mkdtemp(prefix=".eventlog-probe-")
    try:
        probe = lmdb.open(probe_dir, map_size=1 << 16, max_dbs=1)
        try:
            probe_keys = set(_envid.env_keys(probe_dir, True))  # type: ignore[no-untyped-call]
            candidates = [
                obj
                for obj in gc.get_objects()
                if type(obj) is set and obj is not probe_keys and probe_keys <= obj
            ]
        finally:
            probe.close()
        found = [obj for obj in candidates if not obj & probe_keys]
        return found[0] if len(found) == 1 else None
    except Exception:  # pragma: no cover - an unexpected py-lmdb
        return None
    finally:
        shutil.rmtree(probe_dir, ignore_errors=True)


def _release_inherited_claim(path: str) -> None:
    """Let a forked child open a log that its parent had open.

    py-lmdb refuses to open files that another Environment of this process has open
    (LMDB's fcntl locks belong to the process). An environment inherited through fork()
    holds no locks in the child, is never used again and must never be closed (closing it
    would clear the parent's reader slots), so its claim on the files is dropped. py-lmdb
    keeps the claims in one set of file identities, which is found once by its contents.
    """
    global _py_lmdb_open_keys
    st = os.stat(path)
    del _inherited[st.st_dev, st.st_ino]
    try:
        from lmdb import _envid

        keys = set(_envid.env_keys(path, True))  # type: ignore[no-untyped-call]
    except Exception:  # pragma: no cover - a py-lmdb without the guard: nothing to release
        return
    registry = _py_lmdb_open_keys
    if registry is None:
        cffi_keys = getattr(sys.modules.get("lmdb.cffi"), "_open_env_keys", None)
        registry = cffi_keys if isinstance(cffi_keys, set) else _find_open_keys_set()
        _py_lmdb_open_keys = registry
    if registry is None:
        raise ForkedProcessError(
            f"{path!r} was open in the parent process when it forked, and this version of "
            f"py-lmdb cannot open it again in the child; open logs after forking, or use "
            f"the 'spawn' start method of multiprocessing"
        )
    registry.difference_update(keys)


def acquire(
    path: str, *, readonly: bool, durability: Durability, map_size: int | None, create: bool
) -> Storage:
    """Return the shared Storage for ``path``, opening it if this process has not yet."""
    if durability not in DURABILITY_MODES:
        raise InvalidArgumentError(
            f"durability must be one of {', '.join(map(repr, DURABILITY_MODES))}; "
            f"got {durability!r}"
        )
    if map_size is not None and (
        not isinstance(map_size, int)
        or isinstance(map_size, bool)
        or not 1 << 16 <= map_size <= 1 << 50
    ):
        raise InvalidArgumentError(
            f"map_size must be an integer from 65536 to 2**50 bytes; got {map_size!r}"
        )
    if not path or "\0" in path:
        raise InvalidArgumentError(f"path must be a non-empty directory path; got {path!r}")
    path = os.path.abspath(path)
    with _registry_lock:
        try:
            existed = check_directory(path, create=create, readonly=readonly)
            if not existed:
                # Durability "off" promises nothing across power loss, its creation
                # included (test logs are created by the thousand).
                _create_log(path, durable=durability != "off")
            st = os.stat(path)
        except EventLogError:
            raise
        except PermissionError as exc:
            raise PermissionDeniedError(f"permission denied opening {path!r}: {exc}") from None
        except OSError as exc:
            raise StorageError(f"cannot open a log at {path!r}: {exc}") from None
        ident = (st.st_dev, st.st_ino)
        storage = _registry.get(ident)
        if storage is not None and not storage.closed:
            if storage.readonly and not readonly:
                raise InvalidArgumentError(
                    f"{path!r} is already open read-only in this process; close it before "
                    f"opening it for writing"
                )
            if storage.durability != durability and not readonly:
                raise InvalidArgumentError(
                    f"{path!r} is already open in this process with durability "
                    f"{storage.durability!r}; one process uses one durability per log"
                )
        else:
            if ident in _inherited:
                _release_inherited_claim(path)
            storage = Storage(
                path,
                ident,
                readonly=readonly,
                durability=durability,
                map_size=map_size or DEFAULT_MAP_SIZE,
            )
            _registry[ident] = storage
        storage.refcount += 1
        return storage


def release(storage: Storage) -> None:
    """Drop one reference; the environment closes when the last Log using it closes."""
    with _registry_lock:
        if storage.forked:
            return
        storage.refcount -= 1
        if storage.refcount > 0:
            return
        # Closed under the registry lock: an open of the same path meanwhile would
        # otherwise open the same files a second time in this process. If the close is
        # interrupted, the environment stays registered (and open) for later opens.
        storage.close()
        if _registry.get(storage.ident) is storage:
            del _registry[storage.ident]
