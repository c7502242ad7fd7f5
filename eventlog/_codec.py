"""Record-batch encoding and decoding (DESIGN.md section 4).

A batch is what one append writes to one partition: a single LMDB value holding many
records. Layout (all integers little-endian)::

    header (36 bytes)
      u8  format         (BATCH_FORMAT)
      u8  flags          (codec, has keys, has headers, LogAppendTime, sparse offsets,
                          varied timestamps)
      u16 reserved       (0)
      u32 record count
      u32 last offset delta
      i64 base timestamp (the first record's)
      i64 max timestamp
      u32 payload size before compression
      u32 CRC-32 of: header bytes 0..31, the stored payload, and the LMDB key
    payload (zstd-compressed when flag set), columnar:
      [sparse]  u32 offset deltas x count
      [varied]  i64 timestamp deltas (from the base timestamp) x count
      [keys]    bytes column of keys
                bytes column of values
      [headers] bytes column of per-record header blocks
    bytes column:
      u32 length of the sizes text, sizes text (ASCII, "<size>s" per item: a struct format)
      u32 number of null items, u32 index of each null item
      the items concatenated
    header block: repeated (u16 name length, UTF-8 name, i32 value length or -1, value)

Item sizes are stored as a ``struct`` format ("73s71s16s..."), so decoding a column of a
thousand values is one compiled ``Struct.unpack_from`` call instead of a Python loop of
slices: about twice as fast to decode as binary lengths, and no larger on disk.

The CRC covers the LMDB key too (topic id, partition, base offset), so a batch that ends up
under the wrong key is detected as well as flipped bits. Encoding and decoding work on whole
columns with ``array`` and ``struct``; there is no Python loop per field except for headers.
"""

from __future__ import annotations

import struct
import sys
import threading
import zlib
from array import array
from bisect import bisect_left
from collections.abc import Sequence
from typing import Final

import zstandard

from ._errors import CorruptLogError
from ._records import Headers

BATCH_FORMAT: Final = 1

CODEC_NONE: Final = 0
CODEC_ZSTD: Final = 1
_CODEC_MASK: Final = 0x03
FLAG_KEYS: Final = 0x04
FLAG_HEADERS: Final = 0x08
FLAG_LOG_APPEND_TIME: Final = 0x10
FLAG_SPARSE_OFFSETS: Final = 0x20
FLAG_VARIED_TIMESTAMPS: Final = 0x40
_KNOWN_FLAGS: Final = 0x7F

HEADER: Final = struct.Struct("<BBHIIqqII")
HEADER_SIZE: Final = HEADER.size  # 36
_PREFIX_SIZE: Final = HEADER_SIZE - 4
_CRC: Final = struct.Struct("<I")
_U16: Final = struct.Struct("<H")
_U32: Final = struct.Struct("<I")
_I32: Final = struct.Struct("<i")

# Below this many payload bytes compression costs more than it saves.
COMPRESSION_THRESHOLD: Final = 512

_BIG_ENDIAN: Final = sys.byteorder == "big"
_SIZES_TEXT_CHARS: Final = b"0123456789s"
# The sizes text of items shorter than 4 KiB, precomputed: joining lookups is twice as fast
# as formatting a thousand numbers.
_SIZE_TEXTS: Final = [b"%ds" % size for size in range(4096)]

_local = threading.local()


def _compressor(level: int) -> zstandard.ZstdCompressor:
    # zstandard objects must not be shared between threads; keep one per thread and level.
    cache: dict[int, zstandard.ZstdCompressor] | None = getattr(_local, "compressors", None)
    if cache is None:
        cache = _local.compressors = {}
    comp = cache.get(level)
    if comp is None:
        comp = cache[level] = zstandard.ZstdCompressor(level=level, write_content_size=True)
    return comp


def _decompressor() -> zstandard.ZstdDecompressor:
    dec: zstandard.ZstdDecompressor | None = getattr(_local, "decompressor", None)
    if dec is None:
        dec = _local.decompressor = zstandard.ZstdDecompressor()
    return dec


def _le(arr: array) -> bytes:  # type: ignore[type-arg]
    if _BIG_ENDIAN:
        arr = array(arr.typecode, arr)
        arr.byteswap()
    return arr.tobytes()


def _from_le(typecode: str, data: bytes | memoryview) -> array:  # type: ignore[type-arg]
    arr = array(typecode)
    if len(data) % arr.itemsize:
        raise CorruptLogError("record batch column has a partial item")
    arr.frombytes(data)
    if _BIG_ENDIAN:
        arr.byteswap()
    return arr


class EncodedBatch:
    """A batch encoded except for its CRC, which needs the LMDB key (base offset).

    Encoding happens before the write transaction starts, so that compression overlaps
    other writers' commits; :meth:`value` finishes the batch inside the transaction.
    """

    __slots__ = ("count", "max_timestamp", "nbytes", "partial_crc", "payload", "prefix")

    def __init__(
        self, prefix: bytes, payload: bytes, count: int, max_timestamp: int, nbytes: int
    ) -> None:
        self.prefix = prefix
        self.payload = payload
        self.partial_crc = zlib.crc32(payload, zlib.crc32(prefix))
        self.count = count
        self.max_timestamp = max_timestamp
        self.nbytes = nbytes

    def value(self, key: bytes) -> bytes:
        """The stored LMDB value for this batch under ``key``."""
        crc = _CRC.pack(zlib.crc32(key, self.partial_crc))
        return b"".join((self.prefix, crc, self.payload))


def _encode_header_block(hdrs: Headers) -> bytes:
    parts: list[bytes] = []
    for name, hvalue in hdrs:
        bname = name.encode("utf-8")
        parts.append(_U16.pack(len(bname)))
        parts.append(bname)
        if hvalue is None:
            parts.append(_I32.pack(-1))
        else:
            parts.append(_I32.pack(len(hvalue)))
            parts.append(hvalue)
    return b"".join(parts)


def _encode_column(
    items: Sequence[bytes | None], out: list[bytes], sizes: tuple[int, ...] | None = None
) -> int:
    """Append a bytes column to ``out``; return the number of item bytes.

    ``sizes``, when the caller already has them, are the items' lengths (no item is None).
    """
    try:
        blob = b"".join(items)  # type: ignore[arg-type]
        nulls = b""
        null_count = 0
        if sizes is None:
            sizes = tuple(map(len, items))  # type: ignore[arg-type]
    except TypeError:
        # Some items are None (null keys, tombstones): store their indexes separately.
        null_idx = [i for i, item in enumerate(items) if item is None]
        null_count = len(null_idx)
        nulls = _le(array("I", null_idx))
        blob = b"".join([item for item in items if item is not None])
        sizes = tuple([0 if item is None else len(item) for item in items])
    n = len(sizes)
    if n and sizes.count(sizes[0]) == n:
        text = (b"%ds" % sizes[0]) * n  # fixed-size items (ids, hashes): no formatting
    else:
        try:
            text = b"".join(map(_SIZE_TEXTS.__getitem__, sizes))  # small items: a lookup
        except IndexError:
            text = (b"%ds" * n) % sizes
    out.append(_U32.pack(len(text)))
    out.append(text)
    out.append(_U32.pack(null_count))
    out.append(nulls)
    out.append(blob)
    return len(blob)


def _finish(
    payload: bytes,
    flags: int,
    count: int,
    base_ts: int,
    max_ts: int,
    nbytes: int,
    *,
    compress: bool,
    level: int,
    log_append_time: bool,
) -> EncodedBatch:
    """Compress the payload when it pays off and build the header (dense offsets)."""
    size = len(payload)
    if compress and size >= COMPRESSION_THRESHOLD:
        compressed = _compressor(level).compress(payload)
        if len(compressed) < size:
            payload = compressed
            flags |= CODEC_ZSTD
    if log_append_time:
        flags |= FLAG_LOG_APPEND_TIME
    prefix = HEADER.pack(BATCH_FORMAT, flags, 0, count, count - 1, base_ts, max_ts, size, 0)
    return EncodedBatch(prefix[:_PREFIX_SIZE], payload, count, max_ts, nbytes)


def encode_batch(
    values: Sequence[bytes | None],
    keys: Sequence[bytes | None] | None,
    timestamps: Sequence[int] | int,
    headers: Sequence[Headers] | None,
    *,
    log_append_time: bool = False,
    compress: bool = True,
    level: int = 1,
    value_sizes: tuple[int, ...] | None = None,
    key_sizes: tuple[int, ...] | None = None,
) -> EncodedBatch:
    """Encode one batch of records for one partition, with dense offsets.

    Args:
        values: the values (bytes or None), one per record (at least one record).
        keys: the keys, one per record, or None when no record has a key.
        timestamps: one timestamp per record, or a single int shared by all.
        headers: one header tuple per record, or None when no record has headers.
        log_append_time: record that the timestamps are LogAppendTime.
        compress: zstd-compress the payload when it is large enough to pay off.
        level: the zstd level.
        value_sizes, key_sizes: the items' lengths when the caller has them already
            (only for columns without None).

    The caller has validated types and sizes; this function only lays bytes out.
    """
    count = len(values)
    flags = 0
    columns: list[bytes] = []
    if isinstance(timestamps, int):
        base_ts = max_ts = timestamps
    else:
        base_ts = timestamps[0]
        max_ts = max(timestamps)
        if max_ts != base_ts or min(timestamps) != base_ts:
            flags |= FLAG_VARIED_TIMESTAMPS
            columns.append(_le(array("q", [ts - base_ts for ts in timestamps])))
    nbytes = 0
    if keys is not None:
        flags |= FLAG_KEYS
        nbytes += _encode_column(keys, columns, key_sizes)
    nbytes += _encode_column(values, columns, value_sizes)
    if headers is not None:
        flags |= FLAG_HEADERS
        nbytes += _encode_column([_encode_header_block(h) for h in headers], columns)
    return _finish(
        b"".join(columns),
        flags,
        count,
        base_ts,
        max_ts,
        nbytes,
        compress=compress,
        level=level,
        log_append_time=log_append_time,
    )


def encode_records(
    base_offset: int,
    offsets: Sequence[int],
    timestamps: Sequence[int],
    keys: Sequence[bytes | None],
    values: Sequence[bytes | None],
    headers: Sequence[Headers],
    last_offset: int,
    *,
    log_append_time: bool,
    compress: bool,
    level: int,
) -> EncodedBatch:
    """Encode records that keep their offsets (compaction: records left in one batch, or
    merged from small neighbouring batches), stored as offset deltas from ``base_offset``
    (the LMDB key's). The batch spans to ``last_offset``, so a reader still moves past
    removed records at its end. At least one record; offsets ascending, all within
    ``base_offset .. last_offset``."""
    deltas = [offset - base_offset for offset in offsets]
    flags = FLAG_SPARSE_OFFSETS
    columns = [_le(array("I", deltas))]
    base_ts = timestamps[0]
    max_ts = max(timestamps)
    if max_ts != base_ts or min(timestamps) != base_ts:
        flags |= FLAG_VARIED_TIMESTAMPS
        columns.append(_le(array("q", [ts - base_ts for ts in timestamps])))
    nbytes = 0
    if keys.count(None) != len(keys):
        flags |= FLAG_KEYS
        nbytes += _encode_column(keys, columns)
    nbytes += _encode_column(values, columns)
    if any(headers):
        flags |= FLAG_HEADERS
        nbytes += _encode_column([_encode_header_block(h) for h in headers], columns)
    encoded = _finish(
        b"".join(columns),
        flags,
        len(values),
        base_ts,
        max_ts,
        nbytes,
        compress=compress,
        level=level,
        log_append_time=log_append_time,
    )
    # _finish writes a dense header (last delta = count - 1): keep the span.
    prefix = bytearray(encoded.prefix)
    struct.pack_into("<I", prefix, 8, last_offset - base_offset)
    return EncodedBatch(bytes(prefix), encoded.payload, encoded.count, max_ts, nbytes)


_COLUMN_HEAD: Final = struct.Struct("<I")
_NO_NULLS: Final = _U32.pack(0)
_ONE_NULL: Final = _U32.pack(1) + _U32.pack(0)


def encode_single(
    value: bytes | None,
    key: bytes | None,
    timestamp: int,
    *,
    log_append_time: bool = False,
    compress: bool = True,
    level: int = 1,
) -> EncodedBatch:
    """Encode a batch of one record without headers: the same bytes as
    ``encode_batch([value], [key] or None, timestamp, None)``, built without the
    per-column machinery (single appends are the latency path)."""
    parts: list[bytes] = []
    flags = 0
    nbytes = 0
    for item, flag in ((key, FLAG_KEYS), (value, 0)):
        if flag and item is None:
            continue  # no key column at all
        flags |= flag
        if item is None:
            parts += (_U32.pack(2), b"0s", _ONE_NULL)
        else:
            text = b"%ds" % len(item)
            parts += (_U32.pack(len(text)), text, _NO_NULLS, item)
            nbytes += len(item)
    return _finish(
        b"".join(parts),
        flags,
        1,
        timestamp,
        timestamp,
        nbytes,
        compress=compress,
        level=level,
        log_append_time=log_append_time,
    )


class DecodedBatch:
    """The columns of one decoded batch (offsets absolute)."""

    __slots__ = (
        "base_offset",
        "count",
        "headers",
        "keys",
        "last_offset",
        "max_timestamp",
        "offsets",
        "timestamps",
        "values",
    )

    def __init__(
        self,
        base_offset: int,
        offsets: Sequence[int],
        timestamps: list[int],
        keys: list[bytes | None],
        values: list[bytes | None],
        headers: list[Headers] | None,
        max_timestamp: int,
        last_offset: int,
    ) -> None:
        self.base_offset = base_offset
        self.offsets = offsets
        self.timestamps = timestamps
        self.keys = keys
        self.values = values
        self.headers = headers
        self.count = len(values)
        self.max_timestamp = max_timestamp
        self.last_offset = last_offset

    def index_of(self, offset: int) -> int:
        """Index of the first record whose offset is >= ``offset``."""
        offsets = self.offsets
        if isinstance(offsets, range):
            return max(0, min(offset - offsets.start, len(offsets)))
        return bisect_left(offsets, offset)


def read_header(value: bytes | memoryview) -> tuple[int, int, int, int, int, int, int, int, int]:
    """Unpack a stored batch's header (raises CorruptLogError when it cannot be one)."""
    if len(value) < HEADER_SIZE:
        raise CorruptLogError(f"record batch is {len(value)} bytes, shorter than its header")
    return HEADER.unpack_from(value)


def batch_crc(value: bytes | memoryview) -> int:
    """The CRC stored in a batch header (identifies a batch's content for caches)."""
    if len(value) < HEADER_SIZE:
        raise CorruptLogError(f"record batch is {len(value)} bytes, shorter than its header")
    return int(_CRC.unpack_from(value, _PREFIX_SIZE)[0])


_layouts: dict[bytes, struct.Struct] = {}


def _layout(text: bytes) -> struct.Struct:
    """Compile a sizes text, reusing the compiled form for repeated layouts (fixed-size keys
    give the same text batch after batch)."""
    layout = _layouts.get(text)
    if layout is None:
        layout = struct.Struct(text)
        if text.count(text[: text.index(b"s") + 1]) * (text.index(b"s") + 1) == len(text):
            if len(_layouts) >= 64:
                _layouts.clear()
            _layouts[text] = layout
    return layout


def _decode_column(
    payload: bytes, pos: int, count: int, what: str
) -> tuple[list[bytes | None], int]:
    """Decode the bytes column starting at ``pos``; return (items, position after it)."""
    (text_len,) = _U32.unpack_from(payload, pos)
    pos += 4
    text = payload[pos : pos + text_len]
    pos += text_len
    # The sizes text is compiled as a struct format: allow nothing but sizes.
    if len(text) != text_len or text.translate(None, _SIZES_TEXT_CHARS):
        raise CorruptLogError(f"record batch {what} sizes are malformed")
    layout = _layout(text)
    (null_count,) = _U32.unpack_from(payload, pos)
    pos += 4
    if null_count > count:
        raise CorruptLogError(f"record batch has more null {what}s than records")
    null_idx = _from_le("I", payload[pos : pos + 4 * null_count])
    pos += 4 * null_count
    if pos + layout.size > len(payload):
        raise CorruptLogError(f"record batch {what}s overrun the payload")
    items: list[bytes | None] = list(layout.unpack_from(payload, pos))
    if len(items) != count:
        raise CorruptLogError(f"record batch has {len(items)} {what}s for {count} records")
    for i in null_idx:
        items[i] = None
    return items, pos + layout.size


def _decode_header_block(block: bytes) -> Headers:
    items: list[tuple[str, bytes | None]] = []
    pos = 0
    end = len(block)
    while pos < end:
        (nlen,) = _U16.unpack_from(block, pos)
        pos += 2
        name = block[pos : pos + nlen].decode("utf-8")
        pos += nlen
        (vlen,) = _I32.unpack_from(block, pos)
        pos += 4
        if vlen < 0:
            items.append((name, None))
        else:
            if pos + vlen > end:
                raise CorruptLogError("record batch header value overruns its block")
            items.append((name, block[pos : pos + vlen]))
            pos += vlen
    if pos != end:
        raise CorruptLogError("record batch header block is malformed")
    return tuple(items)


def verified_header(
    key: bytes, value: bytes | memoryview
) -> tuple[int, int, int, int, int, int, int, int, int]:
    """A stored batch's header, after checking the whole batch's CRC (no decompression).

    Raises:
        CorruptLogError: the checksum does not match or the header is not a batch header.
    """
    header = read_header(value)
    fmt, flags, *_rest, crc = header
    if fmt != BATCH_FORMAT or flags & ~_KNOWN_FLAGS:
        raise CorruptLogError(f"record batch has unknown format {fmt} / flags {flags:#x}")
    mv = memoryview(value)
    actual = zlib.crc32(key, zlib.crc32(mv[HEADER_SIZE:], zlib.crc32(mv[:_PREFIX_SIZE])))
    if actual != crc:
        raise CorruptLogError(
            f"record batch checksum mismatch (stored {crc:#010x}, computed {actual:#010x})"
        )
    return header


def decode_batch(key: bytes, value: bytes | memoryview, base_offset: int) -> DecodedBatch:
    """Verify and decode one stored batch.

    Args:
        key: the LMDB key the batch was stored under (part of the checksum).
        value: the stored value (copied out of the transaction by the caller).
        base_offset: the base offset encoded in ``key``.

    Raises:
        CorruptLogError: the checksum does not match or the batch is malformed. The caller
            adds topic/partition context.
    """
    _fmt, flags, _reserved, count, last_delta, base_ts, max_ts, size, _crc = verified_header(
        key, value
    )
    payload_view = memoryview(value)[HEADER_SIZE:]
    codec = flags & _CODEC_MASK
    try:
        if codec == CODEC_ZSTD:
            payload = _decompressor().decompress(payload_view, max_output_size=size)
        elif codec == CODEC_NONE:
            payload = bytes(payload_view)
        else:
            raise CorruptLogError(f"record batch has unknown codec {codec}")
    except zstandard.ZstdError as exc:
        raise CorruptLogError(f"record batch does not decompress: {exc}") from None
    if len(payload) != size:
        raise CorruptLogError("record batch payload has the wrong size")
    try:
        return _decode_payload(payload, flags, count, last_delta, base_ts, max_ts, base_offset)
    except CorruptLogError:
        raise
    except (ValueError, IndexError, struct.error, UnicodeDecodeError) as exc:
        raise CorruptLogError(f"record batch is malformed: {exc}") from None


def _decode_payload(
    payload: bytes,
    flags: int,
    count: int,
    last_delta: int,
    base_ts: int,
    max_ts: int,
    base_offset: int,
) -> DecodedBatch:
    pos = 0
    offsets: Sequence[int]
    if flags & FLAG_SPARSE_OFFSETS:
        deltas = _from_le("I", payload[pos : pos + 4 * count])
        pos += 4 * count
        offsets = [base_offset + d for d in deltas]
    else:
        offsets = range(base_offset, base_offset + count)
    if flags & FLAG_VARIED_TIMESTAMPS:
        ts_deltas = _from_le("q", payload[pos : pos + 8 * count])
        pos += 8 * count
        timestamps = [base_ts + d for d in ts_deltas]
    else:
        timestamps = [base_ts] * count
    if len(offsets) != count or len(timestamps) != count:
        raise CorruptLogError("record batch columns overrun the payload")
    keys: list[bytes | None]
    if flags & FLAG_KEYS:
        keys, pos = _decode_column(payload, pos, count, "key")
    else:
        keys = [None] * count
    values, pos = _decode_column(payload, pos, count, "value")
    headers: list[Headers] | None = None
    if flags & FLAG_HEADERS:
        blocks, pos = _decode_column(payload, pos, count, "header")
        headers = [_decode_header_block(b) if b else () for b in blocks]
    if pos != len(payload):
        raise CorruptLogError("record batch payload has trailing or missing bytes")
    last_offset = base_offset + last_delta
    if count and offsets[-1] > last_offset:
        raise CorruptLogError("record batch offsets exceed its last offset")
    return DecodedBatch(
        base_offset, offsets, timestamps, keys, values, headers, max_ts, last_offset
    )
