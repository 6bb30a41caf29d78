"""The embedded offline corpus (shared/DATA.md): instrument notes and spoken words made from
PyPI packages alone, with two downstream tasks in the EVAR metadata format."""

from rq_audio.data.corpus.build import (
    CorpusSettings,
    OfflineCorpus,
    build_offline_corpus,
    cache_root,
)

__all__ = ["CorpusSettings", "OfflineCorpus", "build_offline_corpus", "cache_root"]
