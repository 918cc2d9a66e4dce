"""Which records an HNSW search can never return: a reading of the links in an hnswlib
0.8.0 index file (``HierarchicalNSW::saveIndex``; hnswlib exposes no links otherwise).

A node whose every in-link was pruned is unreachable: no search, whatever its ``ef``,
walks to it, although the index holds it. hnswlib prunes a full neighbour list with its
diversity heuristic when a new node links in, and the heuristic can drop the new node in
favour of a nearby tombstone (new nodes never link to tombstones, which stay in the lists
they were in). The crash test met one such record among 113 in an 8-d tenant.

File layout: a 96-byte header; ``count`` level-0 blocks of ``size_per_element`` bytes
(a uint32 whose low 16 bits count the links and whose third byte holds the deleted
mark, ``max_m0`` uint32 links, the vector, the uint64 label); then per element a uint32
byte size and that many bytes of upper-level blocks (a uint32 count, ``max_m`` links).
"""

from __future__ import annotations

import struct

import numpy as np

# offsetLevel0, max_elements, cur_element_count, size_data_per_element, label_offset,
# offsetData (size_t); maxlevel (int); enterpoint (uint32); maxM, maxM0, M (size_t);
# mult (double); ef_construction (size_t)
_HEADER = struct.Struct("<6QiI3QdQ")
_DELETED = 1 << 16  # bit 0 of the third byte of a level-0 block


def unreachable_labels(path: str) -> np.ndarray:
    """Sorted labels of the live elements of the index file at ``path`` that no search
    can return: no chain of links leads a search to them."""
    with open(path, "rb") as f:
        header = f.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise ValueError(f"{path}: not an hnswlib index (truncated header)")
    _, _, count, per_element, label_at, _, _, entry, max_m, max_m0, _, _, _ = _HEADER.unpack(header)
    if count == 0:
        return np.empty(0, dtype=np.int64)
    raw = np.memmap(path, dtype=np.uint8, mode="r")
    end0 = _HEADER.size + count * per_element
    level0 = raw[_HEADER.size:end0].reshape(count, per_element)
    head = level0[:, :4].copy().view("<u4")[:, 0]
    degree = (head & 0xFFFF).astype(np.int64)
    links0 = level0[:, 4 : 4 + 4 * max_m0].copy().view("<u4")
    labels = level0[:, label_at : label_at + 8].copy().view("<u8")[:, 0].astype(np.int64)
    used = np.arange(max_m0)[None, :] < degree[:, None]
    level0_links = (np.repeat(np.arange(count), degree), links0[used].astype(np.int64))

    # upper levels: each element's block size, then its blocks (a sequential walk)
    block = 4 + 4 * max_m
    data = raw[end0:].tobytes()
    src, dst = [np.empty(0, np.int64)], [np.empty(0, np.int64)]
    pos = 0
    for i in range(count):
        (size,) = struct.unpack_from("<I", data, pos)
        pos += 4
        for at in range(pos, pos + size, block):
            n = struct.unpack_from("<I", data, at)[0] & 0xFFFF
            if n:
                src.append(np.full(n, i, dtype=np.int64))
                dst.append(np.frombuffer(data, dtype="<u4", count=n, offset=at + 4).astype(np.int64))
        pos += size

    # A search descends the upper levels from the entry point, then walks level 0 from
    # where it landed: the nodes it can reach are level-0 links away from a node the
    # upper levels reach (taking every one as a possible landing place).
    seen = np.zeros(count, dtype=bool)
    seen[entry] = True
    _spread(seen, np.concatenate(src), np.concatenate(dst))
    _spread(seen, *level0_links)
    lost = ~seen & ((head & _DELETED) == 0)
    return np.sort(labels[lost])


def _spread(seen: np.ndarray, src: np.ndarray, dst: np.ndarray) -> None:
    """Mark in ``seen`` every node that links ``src -> dst`` lead to from a marked one."""
    reached = int(np.count_nonzero(seen))
    while True:  # one step along every link at a time
        seen[dst[seen[src]]] = True
        now = int(np.count_nonzero(seen))
        if now == reached:
            return
        reached = now
