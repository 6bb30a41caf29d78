"""Shape data: readers of files on disk, the HDF5 shape cache, shape sources for it, the
embedded procedural family, packed batches and the k-means pseudo-labels.

- :mod:`~rq_points.data.readers`: meshes and point files -> :class:`~rq_points.data.readers.Shape`.
- :mod:`~rq_points.data.shape_cache`: write once / read lazily by index (HDF5).
- :mod:`~rq_points.data.sources`: procedural, folder (``metadata.csv``) and Sweet Home 3D sources.
- :mod:`~rq_points.data.procedural`: the part-labelled offline shape family.
- :mod:`~rq_points.data.packed`: a dataset over a cache and the packed-batch collate.
- :mod:`~rq_points.data.kmeans`: per-shape k-means cluster ids (MID-Net's point pseudo-labels).
"""
