"""Smooth ECE (Błasiok & Nakkiran 2023) for many bootstrap resamples at once.

``relplot.smECE`` is the reference: the same reflected Gaussian kernel, grids, density
epsilon and bisection for the bandwidth, checked to 1e-4 in tests/test_estimators.py. It
scores one sample in ~9 ms, so 1,000 resamples would take ~9 s. Here a resample is a row of
count weights over one sample, and all rows go through each step together:

* splatting a row onto a bandwidth's grid needs, per grid cell, the row's sums of w*v and
  w*v*f over the predictions in that cell: differences of cumulative sums over the sorted
  predictions, taken once for every bandwidth;
* smoothing plus reading off at the mesh is one banded matrix per bandwidth (the kernel is
  cut at 8 bandwidths, where it is below 1e-13 of its peak), multiplied in blocks;
* relplot's smECE at bandwidth s is sum_t |smoothed residual(t)| / sum_t density(t); the
  density sum is linear in the weights, and |sum of smoothed residuals| <= numerator <=
  max kernel mass * sum |residuals| bounds smECE from both sides, which settles most
  bisection steps of most rows without the matrix product.
"""

from __future__ import annotations

import collections

import torch

MESH_POINTS = 200  # relplot.config.smECE_mesh_pts
DENSITY_EPS = 1e-4  # relplot.kernels.BaseKernelMixin.smooth
SIGMA_FLOOR = 1e-3  # relplot.metrics.smECE's eps
REFINE = 10  # bisection steps of relplot.metrics.search_param
TRUNCATE = 8.0  # kernel half-width in bandwidths
BLOCK = 128  # mesh points per block of the banded product


def reflect(index: torch.Tensor, size: int) -> torch.Tensor:
    """Mirror indices into 0..size-1 without repeating the edge (relplot's reflection)."""
    index = index.abs()
    return torch.where(index >= size, 2 * (size - 1) - index, index)


CACHE_BYTES = 256 * 2**20  # a bandwidth's blocks take ~0.1-5 MB; a run visits ~50-400
_cache: collections.OrderedDict[float, Bandwidth] = collections.OrderedDict()


def bandwidth(sigma: float) -> Bandwidth:
    """Bandwidths depend on sigma alone, and the bisections of one run revisit the same few
    hundred dyadic values (building one costs 3-8 ms): kept, least recently used dropped
    first, within a memory budget rather than a count (a count of 64 rebuilt each ~5 times)."""
    found = _cache.get(sigma)
    if found is not None:
        _cache.move_to_end(sigma)
        return found
    made = _cache[sigma] = Bandwidth(sigma)
    total = sum(bw.nbytes for bw in _cache.values())
    while total > CACHE_BYTES and len(_cache) > 1:
        total -= _cache.popitem(last=False)[1].nbytes
    return made


class Bandwidth:
    """relplot's ReflectedGaussianKernel(sigma).smooth on a grid, as (grid, mesh) blocks."""

    def __init__(self, sigma: float) -> None:
        self.sigma = sigma
        grid = max(2000, round(20 / sigma)) // 2 + 1  # relplot: GaussianKernel.apply
        mesh = torch.linspace(0, 1, max(round(10 / sigma), MESH_POINTS), dtype=torch.float64)
        self.grid, self.n_mesh = grid, len(mesh)
        # np.convolve(reflected, kernel, "valid")[grid//2 : grid//2 + grid] at u is
        # sum_d kernel[grid//2 - d] * values[reflect(u + d)]
        t = torch.linspace(0, 1, grid, dtype=torch.float64)
        kernel = torch.exp(-((t - 0.5) ** 2) / (2 * sigma**2)) / ((2 * torch.pi) ** 0.5 * sigma)
        reach = min(grid - 1, int(TRUNCATE * sigma * (grid - 1)) + 2)
        d = torch.arange(-reach, reach + 1)
        d = d[(grid // 2 - d >= 0) & (grid // 2 - d < grid)]
        weights = kernel[grid // 2 - d]
        # relplot.kernels.interpolate: mesh point m between grid cells c and c + 1, so its
        # value is sum over u in (c, c+1), d of (1-frac | frac) * weights[d] * values[u + d]
        pos = mesh * (grid - 1)
        cell = pos.long().clamp(0, grid - 2)
        frac = pos - cell
        self.column_sums = torch.zeros(grid, dtype=torch.float64)  # a unit's share of sum_t
        self.blocks = []
        for first in range(0, self.n_mesh, BLOCK):
            m = torch.arange(first, min(first + BLOCK, self.n_mesh))
            u = torch.stack([cell[m], cell[m] + 1], dim=1)  # (M, 2)
            share = torch.stack([1 - frac[m], frac[m]], dim=1)
            sources = reflect(u[:, :, None] + d, grid)  # (M, 2, D)
            values = share[:, :, None] * weights  # (M, 2, D)
            low, high = int(sources.min()), int(sources.max()) + 1
            block = torch.zeros(high - low, len(m), dtype=torch.float64)
            columns = (m - first)[:, None, None].expand_as(sources)
            flat = ((sources - low) * len(m) + columns).flatten()
            block.view(-1).index_add_(0, flat, values.flatten())
            self.column_sums[low:high] += block.sum(dim=1)
            self.blocks.append((low, high, block))
        self.nbytes = sum(block.numel() for _, _, block in self.blocks) * 8

    def numerator(self, splatted: torch.Tensor) -> torch.Tensor:
        """sum_t |smoothed(t)| for each column of grid values (grid, R)."""
        total = torch.zeros(splatted.shape[1], dtype=torch.float64)
        for low, high, block in self.blocks:
            total += (block.T @ splatted[low:high]).abs().sum(dim=0)
        return total


class SortedWeights:
    """Cumulative sums of count weights over the predictions sorted by confidence, from which
    a row's splat onto any grid is a few gathers (relplot.kernels.smooth_round_to_grid)."""

    def __init__(
        self, f: torch.Tensor, residual: torch.Tensor, weights: torch.Tensor, presorted: bool
    ) -> None:
        if presorted:
            self.f, r, w = f, residual, weights
        else:
            order = torch.argsort(f)
            self.f, r, w = f[order], residual[..., order], weights[:, order]
        # w: (R, N), so the cumulative sums run along contiguous memory
        wr = w * r
        # residual (N,): one label set; (R, N): one per row (labels redrawn, weights of ones)
        self.abs_residual = w @ r.abs() if r.dim() == 1 else (w * r.abs()).sum(dim=1)  # (R,)
        self.weights, self.f_unsorted, self.residual = weights, f, residual
        if residual.dim() == 2:  # unsorted, for ``mass``: computed once, not per bisection step
            self.weighted_residual = weights * residual
        zero = torch.zeros(w.shape[0], 1, dtype=torch.float64)
        self.cums = {}
        self.cums["r"] = tuple(torch.cat([zero, v.cumsum(dim=1)], dim=1) for v in (wr, wr * self.f))

    def mass(self, bandwidths: list[Bandwidth]) -> torch.Tensor:
        """sum_t density(t) and sum_t smoothed residual(t) at each bandwidth, for every row:
        (R, 2 * len(bandwidths)). Both are linear in the weights, each prediction adding the
        kernel mass its grid cells spread over the mesh: one matrix product for all."""
        columns = []
        for bw in bandwidths:
            pos = self.f_unsorted * (bw.grid - 1)
            cell = pos.long().clamp(0, bw.grid - 2)
            frac = pos - cell
            columns.append(bw.column_sums[cell] * (1 - frac) + bw.column_sums[cell + 1] * frac)
        per_point = torch.stack(columns, dim=1)  # (N, bandwidths)
        density = self.weights @ per_point
        if self.residual.dim() == 1:
            residual = self.weights @ (per_point * self.residual[:, None])
        else:
            residual = self.weighted_residual @ per_point
        return torch.stack([density, residual], dim=2).flatten(1)

    def splat(self, name: str, grid: int, rows: torch.Tensor) -> torch.Tensor:
        """``rows`` of sum_i w_i v_i spread linearly onto ``grid`` points, as columns."""
        cell = (self.f * (grid - 1)).long().clamp(0, grid - 2)
        cells = torch.arange(grid - 1)
        edges = torch.cat([torch.searchsorted(cell, cells), cell.new_tensor([len(cell)])])
        at_edges = (rows[:, None], edges[None, :])  # gathers only what is needed
        cum_v, cum_vf = self.cums[name]
        sum_v = cum_v[at_edges].diff(dim=1).T
        # sum of w*v*frac with frac = f*(grid-1) - cell
        sum_vf = cum_vf[at_edges].diff(dim=1).T
        sum_frac = (grid - 1) * sum_vf - cells[:, None] * sum_v
        out = torch.zeros(grid, sum_v.shape[1], dtype=torch.float64)
        out[:-1] += sum_v - sum_frac
        out[1:] += sum_frac
        return out


def smooth_ece(
    f: torch.Tensor, hit: torch.Tensor, weights: torch.Tensor, presorted: bool = False
) -> torch.Tensor:
    """relplot.smECE(f, hit) (bandwidth by its bisection) per row of count ``weights`` (R, N);
    ``hit`` (N,), or (R, N) for a label set per row (redrawn labels); ``presorted``: ``f`` is
    already in ascending order."""
    f, hit, weights = f.double(), hit.double(), weights.double()
    rows = weights.shape[0]
    sums = SortedWeights(f, f - hit, weights, presorted)

    def bounds(sigmas: list[float]) -> dict[float, tuple[torch.Tensor, ...]]:
        """Per bandwidth: density sum and the lower/upper bounds of smECE, for every row."""
        if not sigmas:
            return {}
        masses = sums.mass([bandwidth(s) for s in sigmas])
        out = {}
        for i, s in enumerate(sigmas):
            bw = bandwidth(s)
            density = masses[:, 2 * i] + bw.n_mesh * DENSITY_EPS
            upper = bw.column_sums.max() * sums.abs_residual / density
            out[s] = (density, masses[:, 2 * i + 1].abs() / density, upper)
        return out

    def exact(s: float, pick: torch.Tensor, density: torch.Tensor) -> torch.Tensor:
        bw = bandwidth(s)
        return bw.numerator(sums.splat("r", bw.grid, pick)) / density

    def step(sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """relplot's predicate ``sigma < eps or sigma < smECE(sigma)`` per row, and smECE where
        computed (NaN where the bounds settled the predicate)."""
        holds = sigma < SIGMA_FLOOR
        value = torch.full((rows,), float("nan"), dtype=torch.float64)
        sigmas = sigma[~holds].unique().tolist()
        for s, (density, lower, upper) in bounds(sigmas).items():
            pick = sigma == s
            below = pick & (s < lower * (1 - 1e-9))
            above = pick & (s >= upper * (1 + 1e-9))
            holds |= below
            open_rows = (pick & ~(below | above)).nonzero().squeeze(1)
            if len(open_rows):
                value[open_rows] = exact(s, open_rows, density[open_rows])
                holds[open_rows] = s < value[open_rows]
        return holds, value

    start = torch.ones(rows, dtype=torch.float64)
    holds, value_at_start = step(start)
    end = torch.zeros(rows, dtype=torch.float64)
    searching = ~holds  # relplot returns 1 at once where the predicate holds at 1
    for _ in range(REFINE):
        mid = torch.where(searching, (start + end) / 2, start)
        holds_mid, value_mid = step(mid)
        moved = searching & ~holds_mid
        end = torch.where(searching & holds_mid, mid, end)
        start = torch.where(moved, mid, start)
        value_at_start = torch.where(moved, value_mid, value_at_start)
    missing = value_at_start.isnan()
    sigmas = start[missing].unique().tolist()
    for s, (density, _, _) in bounds(sigmas).items():
        pick = ((start == s) & missing).nonzero().squeeze(1)
        value_at_start[pick] = exact(s, pick, density[pick])
    return value_at_start
