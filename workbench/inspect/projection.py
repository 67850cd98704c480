"""Two dimensions of a split's features for its map: UMAP (umap-learn) where it is quick enough, PCA where
it is not (or where umap-learn is not installed), and which one was used, to be said on the figure.

    projected = project(features)                 # method "auto": UMAP up to UMAP_LIMIT points, else PCA
    projected.coords, projected.method, projected.note

UMAP keeps neighbourhoods (clusters of a class, the images a model confuses, near-duplicates side by side);
PCA only the two directions of largest variance, a coarser picture, but seconds for 50,000 points where
UMAP takes minutes on a 2-core CPU (bench/data_quality_features.py measures UMAP on 10,000 points).
"""

import time
import warnings
from dataclasses import dataclass

import numpy as np

from workbench.errors import UserError, choose

METHODS = ("auto", "umap", "pca")
UMAP_LIMIT = 15000  # points: "auto" uses UMAP up to here (10,000 test images: about a minute on 2 cores)
VERSION = "umap-200-pca-init"  # in the maps' cache keys: a changed setting recomputes them
SEED = 0  # UMAP's random_state and PCA's sign convention: the same features give the same map


@dataclass(frozen=True)
class Projection:
    coords: np.ndarray  # float32 [N, 2]
    method: str  # "umap" or "pca": what was used
    note: str  # why, when "auto" chose PCA (empty otherwise)
    seconds: float


def umap_available() -> bool:
    try:
        import umap  # noqa: F401, PLC0415 - umap-learn pulls numba and llvmlite (seconds): only when asked
    except ImportError:
        return False
    return True


def pca(features, dims: int = 2) -> np.ndarray:
    """The features' coordinates on their `dims` principal axes. By hand because it is a few lines of NumPy and
    scikit-learn's PCA would add nothing: the axes are the top eigenvectors of the D x D covariance (D, the
    features' length, is a few hundred: a far smaller problem than the SVD of the N x D matrix, 10x faster
    measured on 10,000 x 256); the signs are fixed so that each axis' largest loading is positive (the same
    features give the same picture)."""
    x = np.asarray(features, np.float64)
    x = x - x.mean(axis=0)
    _, vectors = np.linalg.eigh(x.T @ x)  # eigenvalues ascending: the last columns are the largest
    axes = vectors[:, ::-1][:, :dims].T.copy()
    axes *= np.sign(axes[np.arange(len(axes)), np.abs(axes).argmax(axis=1)])[:, None]
    return (x @ axes.T).astype(np.float32)


def umap_2d(features, *, neighbours: int = 15) -> np.ndarray:
    """UMAP of the features to 2-D with the cosine metric (the duplicates' similarity), seeded (so one thread).

    200 optimisation epochs from a PCA start instead of umap-learn's defaults for up to 10,000 points (500
    epochs from a spectral start, whose sparse eigenproblem is slow here): 10,000 lenet features took 13 s
    against 203 s with the defaults on this 2-core machine at load 14, numba already compiled."""
    try:
        import umap  # noqa: PLC0415 - umap-learn pulls numba and llvmlite (seconds): only when asked
    except ImportError:
        raise UserError("umap-learn is not installed (pip install -r requirements.txt); choose PCA") from None
    x = np.asarray(features, np.float32)
    neighbours = max(2, min(neighbours, len(x) - 1))
    reducer = umap.UMAP(
        n_components=2, n_neighbors=neighbours, metric="cosine", random_state=SEED, n_epochs=200, init="pca", n_jobs=1
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="n_jobs value", category=UserWarning)  # seeded: one thread, known
        return np.asarray(reducer.fit_transform(x), np.float32)


def project(features, method: str = "auto", *, limit: int = UMAP_LIMIT) -> Projection:
    """2-D coordinates of `features` [N, D] by `method` ("auto": UMAP up to `limit` points, else PCA)."""
    method = choose("map method", method, METHODS)
    x = np.asarray(features, np.float32)
    if x.ndim != 2 or len(x) < 3:
        raise UserError(f"a map needs at least 3 images' features; got shape {list(x.shape)}")
    note = ""
    if method == "auto":
        if len(x) > limit:
            method, note = "pca", f"PCA: {len(x):,} points are more than UMAP maps quickly here ({limit:,})"
        elif not umap_available():
            method, note = "pca", "PCA: umap-learn is not installed"
        else:
            method = "umap"
    started = time.perf_counter()
    coords = umap_2d(x) if method == "umap" else pca(x)
    return Projection(coords, method, note, time.perf_counter() - started)
