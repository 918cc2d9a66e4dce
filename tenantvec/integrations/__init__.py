"""Framework integrations, each an optional extra that ``import tenantvec`` never imports:

- :mod:`tenantvec.integrations.langgraph` (``pip install 'tenantvec[langgraph]'``):
  ``TenantvecStore`` / ``AsyncTenantvecStore``, LangGraph long-term memory stores;
- :mod:`tenantvec.integrations.langchain` (``[langchain]``): ``TenantvecVectorStore``, a
  LangChain ``VectorStore``;
- :mod:`tenantvec.integrations.mem0` (``[mem0]``): the ``tenantvec`` vector-store provider
  for Mem0.

They use tenantvec's public names only; each tenant stays in its own shard.
"""
