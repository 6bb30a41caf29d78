"""DABS domains: the dataset contract, the embedded offline domains, and readers of the real
sets prepared by ``data_scripts/dabs``."""

from rq_dabs.data.base import SPLITS, ArraysDataset, check_dabs_item
from rq_dabs.data.embedded import EMBEDDED_DOMAINS, build_embedded_domain, cache_root

__all__ = [
    "EMBEDDED_DOMAINS",
    "SPLITS",
    "ArraysDataset",
    "build_embedded_domain",
    "cache_root",
    "check_dabs_item",
]
