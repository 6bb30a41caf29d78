import ocnn
import pytest
import torch
from rq_points.octree_batch import build_octree_batch, leaf_majority_label


def _cloud(n=300, shapes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    p = torch.rand(n, 3, generator=g) * 1.8 - 0.9
    nrm = torch.nn.functional.normalize(torch.randn(n, 3, generator=g), dim=1)
    return p, nrm, torch.arange(n) % shapes


def test_points_on_or_outside_the_cube_are_refused():
    p, n, ids = _cloud()
    p[5] = torch.tensor([1.0, 0.0, 0.0])  # exactly on the boundary: outside ocnn's grid
    with pytest.raises(ValueError, match="strictly inside"):
        build_octree_batch(p, n, ids, 3, depth=4)
    p[5] = torch.tensor([0.3, -1.2, 0.0])
    with pytest.raises(ValueError, match="1 points lie on or outside"):
        build_octree_batch(p, n, ids, 3, depth=4)


def test_point_leaf_index_finds_each_points_own_leaf():
    p, n, ids = _cloud()
    ob = build_octree_batch(p, n, ids, 3, depth=5)
    depth = 5
    x, y, z, b = ob.octree.xyzb(depth, nempty=True)
    leaf_xyz = torch.stack([x, y, z], 1)[ob.point_leaf]
    cell = ((p + 1) * 2 ** (depth - 1)).floor().long()  # [-1, 1] -> [0, 2^depth)
    assert torch.equal(leaf_xyz.long(), cell)
    assert torch.equal(b[ob.point_leaf].long(), ids)


def test_merged_octree_has_neighbours_and_convolves_like_single_octrees():
    p, n, ids = _cloud()
    ob = build_octree_batch(p, n, ids, 3, depth=4)
    for d in range(1, 5):
        assert ob.octree.neighs[d] is not None
    torch.manual_seed(0)
    conv = ocnn.nn.OctreeConv(4, 5, nempty=True)
    merged = conv(ob.octree.get_input_feature("ND", nempty=True), ob.octree, 4)
    start = 0
    for s in range(3):
        single = build_octree_batch(
            p[ids == s],
            n[ids == s],
            torch.zeros(int((ids == s).sum()), dtype=torch.long),
            1,
            depth=4,
        )
        out = conv(single.octree.get_input_feature("ND", nempty=True), single.octree, 4)
        torch.testing.assert_close(merged[start : start + len(out)], out)
        start += len(out)


def test_merge_without_construct_all_neigh_is_what_we_guard_against():
    # Documents the pitfall: raw merge_octrees leaves no neighbour table at the merged depths.
    p, n, ids = _cloud()
    trees = []
    for s in range(3):
        t = ocnn.octree.Octree(4, 2)
        t.build_octree(ocnn.octree.Points(p[ids == s], n[ids == s]))
        t.construct_all_neigh()
        trees.append(t)
    merged = ocnn.octree.merge_octrees(trees)
    assert merged.neighs[4] is None


def test_leaf_majority_label():
    leaf = torch.tensor([0, 0, 0, 1, 1, 2, 2, 3])
    labels = torch.tensor([4, 4, 1, 2, 3, -1, -1, 0])
    assert leaf_majority_label(leaf, labels, 5).tolist() == [4, 2, -1, 0, -1]
