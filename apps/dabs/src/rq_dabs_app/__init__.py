"""The ``rq-dabs`` command: configs and CLI wiring around :mod:`rq_dabs`."""
