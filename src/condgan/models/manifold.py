"""Where an embedding lies on the training images' neighbour graph: a few spectral coordinates.

A label-free embedding (selfsup) puts an image next to images of its class
(about 80 % of its nearest ones), but a class is not one tight cloud: it is a
chain of such neighbourhoods, and cosine similarity alone ranks the far end of
the chain below a near image of another class. The low-frequency eigenvectors
of the graph that joins each training image to its nearest ones (spectral
embedding: Belkin & Niyogi's Laplacian eigenmaps; the normalised form of Ng,
Jordan & Weiss) are nearly constant along such chains and change between them.
The first few carry the class-level structure; more follow noise (measured in
docs/similarity.md: 6 for Fashion-MNIST, and the eigengap rule chose worse).

`fit` builds that graph on reference embeddings of training images (no labels)
and keeps them with their coordinates; any image, seen or not, then gets the
weighted mean of its nearest references' coordinates (the Nystrom-style
extension). Retrieval of a whole class (MAP@R) is what gains; see
docs/similarity.md for the measurements.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from scipy.sparse.linalg import eigsh
from torch import nn

NEIGHBOURS = 10  # graph edges per reference image, and references averaged for an image's coordinates
DENSE_BELOW = 2000  # graphs of up to this many images are solved by a dense eigendecomposition
TEMPERATURE = 0.1  # edge weight exp((cosine - 1) / TEMPERATURE): close neighbours count far more


class GraphCoordinates(nn.Module):
    """`coords` spectral coordinates for embeddings of width `dim`, from `refs` reference embeddings.

    Before the first fit the references are zeros and every image's coordinates are zeros, which the
    embedder's normalisation turns into "no coordinates" (its embedding is then what it was without)."""

    def __init__(self, dim: int, coords: int, refs: int):
        super().__init__()
        self.register_buffer("refs", torch.zeros(refs, dim))
        self.register_buffer("coords", torch.zeros(refs, coords))

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        """Unit-length coordinates of unit-length embeddings e (zeros before the first fit)."""
        with torch.autocast(e.device.type, enabled=False):  # bf16 cannot tell a cosine of 0.998 from 1
            similarity, nearest = most_similar(e.float(), self.refs, NEIGHBOURS)
        weight = torch.exp((similarity - 1) / TEMPERATURE)
        mean = (weight[..., None] * self.coords[nearest]).sum(1) / weight.sum(1, keepdim=True)
        return F.normalize(mean, dim=1)

    @torch.no_grad()
    def fit(self, e: torch.Tensor) -> None:
        """Keep these unit-length reference embeddings (as many as `refs`, fewer padded with zeros) and their
        coordinates: the graph's first eigenvectors after the trivial one, each scaled to unit variance."""
        n, m = min(len(e), len(self.refs)), self.coords.shape[1]
        refs = e[:n].float().cpu()
        k = min(NEIGHBOURS, n - 1)
        if k < 1 or n < m + 2:  # too few images for a graph with this many coordinates: leave them unfitted
            return
        nearest_sim, nearest = (t[:, 1:] for t in most_similar(refs, refs, k + 1))  # not itself (or its copy)
        weight = torch.exp((nearest_sim.double() - 1) / TEMPERATURE).numpy().ravel()
        graph = sp.csr_matrix((weight, (np.repeat(np.arange(n), k), nearest.numpy().ravel())), shape=(n, n))
        graph = graph.maximum(graph.T)  # an edge either way is an edge both ways
        scale = sp.diags(1 / np.sqrt(np.asarray(graph.sum(1)).ravel()))
        normalised = scale @ graph @ scale
        if n <= DENSE_BELOW:  # ARPACK wants far more points than eigenvectors; a small graph is solved whole
            values, vectors = np.linalg.eigh(normalised.toarray())
        else:
            start = np.random.RandomState(0).rand(n)  # a fixed start vector: the same references give the same fit
            values, vectors = eigsh(normalised, k=m + 1, which="LA", v0=start)
        vectors = vectors[:, np.argsort(-values)[:m + 1]]
        vectors = scale @ vectors[:, 1:]  # random-walk eigenvectors, the constant one dropped
        vectors /= vectors.std(0, keepdims=True).clip(min=1e-12)
        self.refs.zero_()[:n] = refs.to(self.refs)
        self.coords.zero_()[:n] = torch.from_numpy(vectors).float().to(self.coords)



def most_similar(queries: torch.Tensor, refs: torch.Tensor, k: int, chunk: int = 2048) -> tuple[torch.Tensor, torch.Tensor]:
    """(similarities, indices), each (N, k): every query's k references of highest inner product (cosine for
    unit vectors), best first; a query that is also a reference finds itself. In blocks to bound memory."""
    k = min(k, len(refs))
    blocks = [(queries[i:i + chunk] @ refs.T).topk(k, dim=1) for i in range(0, len(queries), chunk)]
    if not blocks:
        return queries.new_zeros(0, k), torch.zeros(0, k, dtype=torch.long)
    return torch.cat([b.values for b in blocks]), torch.cat([b.indices for b in blocks])
