"""rq-dabs: randomized quantization of token embeddings on the DABS benchmark.

Modules: :mod:`rq_dabs.specs` (input specs), :mod:`rq_dabs.embedding`,
:mod:`rq_dabs.encoder`, :mod:`rq_dabs.algorithms` (``rq``, ``emix``, ``shed``, ``random``),
:mod:`rq_dabs.data` (domains), :mod:`rq_dabs.learner` (the LightningModule),
:mod:`rq_dabs.evaluate` (linear transfer) and :mod:`rq_dabs.data.download` (data-script helpers).
"""

__version__ = "0.1.0"
