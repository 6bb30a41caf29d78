"""The main job's parts (``scripts/main_job.py``, ``./dev demo``), one concern per module.

- :mod:`rq_demo.apps`: the typed registry of the apps (:class:`~rq_demo.apps.AppSpec`), also
  read by ``tests/docker``, and the stages' expected times with the date of their measurement.
- :mod:`rq_demo.stages`: which stages run, and whether a finished one is reused.
- :mod:`rq_demo.progress`: a bar per stage, the whole-run ETA, heartbeat lines without a
  terminal.
- :mod:`rq_demo.report`: ``report.md`` and ``report.html``.

``scripts/`` is on the import path of the tests (``pythonpath`` in pyproject.toml) and of
``python scripts/main_job.py`` (the script's own folder).
"""
