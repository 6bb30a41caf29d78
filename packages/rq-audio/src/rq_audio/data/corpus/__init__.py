"""The embedded offline corpus (docs/architecture.md, "Data contracts"): instrument notes and
spoken words made from PyPI packages alone, with two downstream tasks in the EVAR metadata
format. It is built under the cache root (``rq_core.runs.cache_root``), never in the
repository."""

from rq_audio.data.corpus.build import CorpusSettings, OfflineCorpus, build_offline_corpus

__all__ = ["CorpusSettings", "OfflineCorpus", "build_offline_corpus"]
