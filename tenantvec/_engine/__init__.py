"""The storage engine: the only code that imports ``lmdb`` or ``hnswlib``.

One tenant's shard (:mod:`.shard`), the hot/cold LRU over shards (:mod:`.manager`), the
index backends (:mod:`.index`), query planning and filter columns, and the maintenance
operations (compaction, verify, export/import, listing) that work on a shard's files.
Nothing here knows the public facade (``Store``/``Tenant``); the facade calls down.
"""
