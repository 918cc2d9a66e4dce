"""The storage engine: the only code that imports ``lmdb`` or ``hnswlib``.

Imports point down:

* maintenance operations, each a client of the manager and the shard taking (the manager,
  the tenant's directory, the store's options): :mod:`.compact`, :mod:`.verify`,
  :mod:`.transfer` (export/import), :mod:`.listing`;
* :mod:`.manager`: the hot/cold LRU over shards;
* :mod:`.shard`: one tenant's shard; what it is made of: :mod:`.txn` (write
  transactions, the hook the memory layer writes through), :mod:`.writes` (the write
  path's steps), :mod:`.snapshot` (index snapshots, op-log replay), :mod:`.shardfiles`
  (creating and opening the files), :mod:`.planner` (query plans), :mod:`.records`
  (reading rows and vectors, filter columns' owner), :mod:`.payload` (filter columns), :mod:`.hotrecs`
  (records in memory), :mod:`.index` (exact and HNSW backends);
* helpers: :mod:`.storage` (storage errors, new environments), :mod:`.checksum`,
  :mod:`.lmdbfile` (the data file checker), :mod:`.capacity`, :mod:`.rwlock`;
* :mod:`.layout`: what is stored where, the format, the row codec, the metadata check.

Nothing here knows the public facade (``Store``/``Tenant``); the facade calls down.
"""
