"""k-means for `ssp`: Lloyd on a sample after greedy k-means++ seeding recovers planted clusters like scikit-learn's
full k-means, the final assignment is the nearest centre with the exact distance, `rows` restricts the points,
memory maps are read chunk by chunk (identical values), and empty clusters are re-seeded."""

import numpy as np
import pytest
import torch

from hf_prune.kmeans import kmeans, nearest_centre, read_rows


def blobs(n=3000, k=6, d=10, seed=0, dtype=np.float16):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=6, size=(k, d))
    truth = rng.integers(0, k, size=n)
    return (centres[truth] + rng.normal(size=(n, d))).astype(dtype), truth


def test_recovers_blobs_like_sklearn_and_assigns_exactly():
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score

    x, truth = blobs()
    ours = kmeans(x, 6, seed=0)
    assign, dist = nearest_centre(x, ours)
    assert adjusted_rand_score(truth, assign) > 0.99
    ref = KMeans(6, n_init=3, random_state=0).fit(x.astype(np.float64))
    assert float((dist**2).sum()) <= ref.inertia_ * 1.02
    # the reported distances are the exact Euclidean distances to the assigned centre, and it is the nearest one
    c = ours.numpy().astype(np.float64)
    naive = [np.sqrt(((x[i].astype(np.float64) - c[assign[i]]) ** 2).sum()) for i in range(0, 3000, 97)]
    np.testing.assert_allclose(dist[::97], naive, rtol=1e-6)
    all_d = ((x[:, None, :].astype(np.float64) - c[None]) ** 2).sum(-1)
    assert (assign == all_d.argmin(1)).all()


def test_sample_cap_and_spherical_geometry():
    x, truth = blobs(n=4000, k=5, d=8, seed=1, dtype=np.float32)
    centres = kmeans(x, 5, max_points_per_centre=40, normalize=True, seed=3)  # clusters on 200 sampled rows
    assert torch.allclose(centres.norm(dim=1), torch.ones(5), atol=1e-5)
    assign, dist = nearest_centre(x, centres, normalize=True)
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    cos = u @ centres.numpy().T
    assert (assign == cos.argmax(1)).all()
    np.testing.assert_allclose(dist, np.sqrt(np.maximum(2 - 2 * cos.max(1), 0)), atol=1e-5)
    assert kmeans(x, 5, seed=3, normalize=True, max_points_per_centre=40).equal(centres)  # seeded


def test_rows_restricts_the_points():
    x = np.concatenate([np.zeros((50, 2)), np.full((50, 2), 10.0)])
    centres = kmeans(x, 1, rows=np.arange(50, 100))
    np.testing.assert_allclose(centres.numpy(), [[10.0, 10.0]], atol=1e-5)
    with pytest.raises(ValueError, match=r"num_clusters must be in \[1, 50\]"):
        kmeans(x, 51, rows=np.arange(50))


def test_memory_maps_are_read_in_chunks_with_the_same_values(tmp_path):
    x, _ = blobs(n=70_000, k=3, d=4)
    np.save(tmp_path / "f.npy", x)
    mapped = np.load(tmp_path / "f.npy", mmap_mode="r")
    np.testing.assert_array_equal(read_rows(mapped, 65_530, 70_000), x[65_530:])
    a = kmeans(mapped, 3, seed=2, max_points_per_centre=30_000)  # a sample spanning several read blocks
    b = kmeans(x, 3, seed=2, max_points_per_centre=30_000)
    assert torch.equal(a, b)
    (np.save(tmp_path / "short.npy", x[:10]))
    truncated = np.load(tmp_path / "short.npy", mmap_mode="r")
    with open(tmp_path / "short.npy", "r+b") as f:
        f.truncate(f.seek(0, 2) - 8)
    with pytest.raises(OSError, match="shorter than its header"):
        read_rows(truncated, 0, 10)


def test_duplicate_points_fewer_than_k_still_give_k_centres():
    x = np.repeat(np.eye(3), 10, axis=0)  # 3 distinct points, 30 rows
    centres = kmeans(x, 5, seed=0)
    assert centres.shape == (5, 3) and torch.isfinite(centres).all()
    assign, dist = nearest_centre(x, centres)
    np.testing.assert_allclose(dist, 0.0, atol=1e-6)
