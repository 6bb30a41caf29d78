import numpy as np
from rq_points.data.kmeans import kmeans_cluster_ids


def test_separated_blobs_get_one_cluster_each():
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0, 0], [5, 0, 0], [0, 5, 0]], np.float32)
    pts = np.concatenate([c + 0.1 * rng.standard_normal((100, 3)) for c in centres]).astype(
        np.float32
    )
    ids = kmeans_cluster_ids(pts, 3, seed=1)
    for b in range(3):
        assert len(set(ids[b * 100 : (b + 1) * 100].tolist())) == 1
    assert len(set(ids.tolist())) == 3


def test_fewer_points_than_clusters():
    ids = kmeans_cluster_ids(np.eye(3, dtype=np.float32), 100)
    assert sorted(ids.tolist()) == [0, 1, 2]
