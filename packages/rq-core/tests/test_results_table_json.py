"""A results table with intervals survives results.json: the main job's report rebuilds each
app's tables with ResultsTable.from_json and must show the cells as the app's results.md does
(it showed the JSON dicts of the intervals)."""

import json

import numpy as np
from rq_core.runs import ResultsTable
from rq_core.uncertainty import accuracy_statistic, compare_methods


def test_intervals_come_back_from_json_as_the_table_showed_them():
    truth = np.arange(300) % 3 != 0
    stats = {
        "random": {"keyword": accuracy_statistic(truth & (np.arange(300) % 5 != 0))},
        "rq": {"keyword": accuracy_statistic(truth)},
    }
    for table in compare_methods("Linear probe", stats):
        again = ResultsTable.from_json(json.loads(json.dumps(table.to_json())))
        assert again.markdown() == table.markdown()
        assert "'low'" not in again.markdown()
