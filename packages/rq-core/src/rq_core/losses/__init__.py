"""Self-supervised losses: BYOL, NT-Xent (SimCLR), and a memory bank (instance discrimination).

Import each from its own module, e.g. ``from rq_core.losses.ntxent import NTXentLoss``.
"""
