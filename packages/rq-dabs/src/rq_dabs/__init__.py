"""rq-dabs: randomized quantization of token embeddings on the DABS benchmark.

Modules: :mod:`rq_dabs.specs` (input specs), :mod:`rq_dabs.embedding`,
:mod:`rq_dabs.transformer`, :mod:`rq_dabs.algorithms` (``rq``, ``emix``, ``shed``, ``none``),
:mod:`rq_dabs.datasets` (domains), :mod:`rq_dabs.system` (the LightningModule),
:mod:`rq_dabs.transfer` (linear transfer) and :mod:`rq_dabs.download` (data-script helpers).
"""

__version__ = "0.1.0"
