"""Shared helpers for rq-points tests."""

import numpy as np
import pytest
import torch
from rq_points.data.packed import collate_shapes
from rq_points.data.procedural import generate_shapes


def shape_items(num_per_class: int = 1, num_points: int = 256, seed: int = 0) -> list[dict]:
    items = []
    for i, s in enumerate(generate_shapes(num_per_class, num_points, seed)):
        items.append(
            {
                "points": s.shape.points,
                "normals": s.shape.normals,
                "labels": s.shape.labels,
                "cluster_ids": np.arange(num_points) % 7,
                "class_id": s.class_id,
                "index": i,
            }
        )
    return items


@pytest.fixture
def make_items():
    """The factory :func:`shape_items` (fixtures are how test modules reach it)."""
    return shape_items


@pytest.fixture
def packed_batch():
    return collate_shapes(shape_items())


@pytest.fixture
def generator():
    return torch.Generator().manual_seed(0)
