"""tune's `gp` sampler: Bayesian optimization with a Gaussian process, numpy only.

TPE and CMA-ES need many trials before they beat local random changes; a research run has
tens. A Gaussian process models the noisy metric from the first trials on, and expected
improvement picks the next sample inside a trust region around the best trial: a box that
is wide after a new best and narrows while later trials fail to beat it, since code that
already works is improved near where it stands (bench/README.md, research).

The model: every parameter mapped to [0, 1] (a log scale where the dimension has one),
each choice of a categorical parameter a coordinate of its own (one-hot); a Matérn 5/2
kernel with a length scale per coordinate, its signal and noise variance fitted to the
trials by maximum a posteriori; the metric standardized with outliers pulled in,
failures counted as the worst result seen. Proposals still running count as if they had
scored what the model predicts for them (a kriging believer), so parallel asks spread out.

Cost grows with the cube of the trials modelled: past MAX_MODELLED, the best half and the
latest half of them are kept.
"""

import math

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState

MAX_MODELLED = 200
REGION_START, REGION_SHRINK, REGION_MIN = 0.3, 0.85, 0.05
PRIOR_QUANTILE = 0.5
ROUNDING = (1, 2, 3)  # significant digits tried, in order
EDGE = 0.01  # of a float's range kept clear at each end unless the best trial lies there
ROUNDING_COST = math.log(1 / 0.9)
SQRT5 = math.sqrt(5)


class GPSampler(optuna.samplers.BaseSampler):
    """Relative sampling over `space` (set before each ask); what it lacks, `independent`."""

    def __init__(self, seed=None, independent=None):
        self.rng = np.random.default_rng(seed)
        self.independent = independent or optuna.samplers.RandomSampler(seed=seed)
        self.space = {}
        self.theta = None  # the last fit, where the next one starts

    def reseed_rng(self):
        self.rng = np.random.default_rng()
        self.independent.reseed_rng()

    def infer_relative_search_space(self, study, trial):
        return {k: d for k, d in self.space.items() if not d.single()}

    def sample_independent(self, study, trial, name, distribution):
        return self.independent.sample_independent(study, trial, name, distribution)

    def sample_relative(self, study, trial, search_space):
        if not search_space:
            return {}
        cube = Cube(search_space)
        done, values, running, unknown = [], [], [], []
        for t in study.get_trials(deepcopy=False):
            x = cube.encode(t.params)
            if x is None:
                continue
            if t.state == TrialState.COMPLETE:
                done.append(x)
                values.append(t.value if study.direction.name == "MINIMIZE" else -t.value)
            elif t.state == TrialState.PRUNED:  # a failure: as bad as the worst result
                done.append(x)
                values.append(None)
            elif t.state == TrialState.RUNNING and t.number != trial.number:
                running.append(x)
            elif t.state == TrialState.FAIL:  # asked, not run (a repeat of one in flight)
                unknown.append(x)
        known = [v for v in values if v is not None]
        if not known:
            return {}  # nothing to model yet: every parameter sampled independently
        worst = max(known)
        y = np.array([worst if v is None else v for v in values])
        stall = len(y) - 1 - int(np.argmin(y))  # trials told since the best one
        X = np.array(done)
        X, y = modelled(X, y)
        # The prior mean at the median result, not the mean, which a few bad results drag up.
        y = standardized(y)
        y = y - np.quantile(y, PRIOR_QUANTILE)
        self.theta = fit(X, y, self.theta)
        model = Posterior(X, y, self.theta)
        if running:  # kriging believer: pretend the running ones scored the prediction
            R = np.array(running)
            model = Posterior(np.vstack([X, R]), np.concatenate([y, model.mean(R)]), self.theta)
        # Not to be sampled again: what was measured, what runs, what was asked and not run
        # (a sample that repeats a trial in flight would otherwise come back every ask).
        seen = np.vstack([X] + [np.array(p) for p in (running, unknown) if p])
        best = self.maximize(cube, model, X, seen, region(stall))
        return {} if best is None else cube.decode(best)

    def maximize(self, cube, model, X, seen, radius):
        """Expected improvement, maximized by random and local search inside a box of
        half-side `radius` around the best trial (and steps around the next best few)."""
        mean = model.mean(X)
        incumbent = mean.min()
        order = np.argsort(mean)[:5]
        w = cube.width
        center = X[order[0]]

        def inside(C):
            return cube.snap(cube.within(C, center, radius))

        box = center + radius * (2 * self.rng.random((1000, w)) - 1)
        candidates = [inside(cube.flip(box, radius, self.rng))]
        for s in (0.25, 0.5, 1.0):
            around = X[self.rng.choice(order, 300)]
            step = around + s * radius * self.rng.normal(size=around.shape)
            candidates.append(inside(cube.flip(step, s * radius, self.rng)))
            # One coordinate at a time, as a person changes one setting.
            axis = around.copy()
            cols = self.rng.integers(w, size=len(axis))
            axis[np.arange(len(axis)), cols] += s * radius * self.rng.normal(size=len(axis))
            candidates.append(inside(axis))
        C = np.vstack(candidates)
        score = acquisition(model, C, incumbent, seen)
        top = C[np.argsort(-score)[:10]]
        top_score = np.sort(score)[::-1][:10]
        for s in (0.3, 0.1, 0.03):  # refine the best few with ever smaller steps
            for _ in range(3):
                step = inside(top + s * radius * self.rng.normal(size=top.shape))
                new = acquisition(model, step, incumbent, seen)
                better = new > top_score
                top[better], top_score[better] = step[better], new[better]
        # Every candidate a repeat (a small discrete space, used up near the incumbent):
        # left to the independent sampler.
        if np.isneginf(top_score.max()):
            return None
        return self.rounder(cube, model, incumbent, seen, top[np.argmax(top_score)], top_score.max())

    def rounder(self, cube, model, incumbent, seen, x, score):
        """The pick with its numbers rounded to one, two or three significant digits, each
        where that costs under a tenth of the expected improvement: a reader sees `0.001`,
        not `0.000973`, `400`, not `399`, and round values are where people put settings."""
        for col in cube.numeric:
            for digits in ROUNDING:
                u = cube.rounded(x[col], col, digits)
                if u is None:  # rounded out of the range: a digit more may fit
                    continue
                if u == x[col]:
                    break
                y = x.copy()
                y[col] = u
                new = acquisition(model, y[None, :], incumbent, seen)[0]
                if new >= score - ROUNDING_COST:
                    x, score = y, max(score, new)
                    break
        return x


class Cube:
    """A search space as the unit cube: numbers scaled, each choice a coordinate."""

    def __init__(self, space):
        self.space = space
        self.columns = {}
        width = 0
        for name in sorted(space):
            d = space[name]
            n = len(d.choices) if isinstance(d, CategoricalDistribution) else 1
            self.columns[name] = (width, n)
            width += n
        self.width = width
        # Number columns, with their dimension: the ones a sample may round.
        self.numeric = {
            self.columns[name][0]: d
            for name, d in space.items()
            if not isinstance(d, CategoricalDistribution)
        }

    def bounds(self, d):
        low, high = float(d.low), float(d.high)
        return (math.log(low), math.log(high)) if d.log else (low, high)

    def within(self, X, center, radius):
        """Points with their number coordinates clipped to the box around `center` (choices
        are changed by `flip`, not by distance)."""
        X = X.copy()
        for col, d in self.numeric.items():
            X[:, col] = np.clip(X[:, col], center[col] - radius, center[col] + radius)
            # A range's very end is where degenerate settings sit (a momentum or a beta of 1,
            # a rate ten times the default): expected improvement, most unsure in the corners,
            # picks them first, and a diverged run teaches little.
            if isinstance(d, optuna.distributions.FloatDistribution):
                lo, hi = min(EDGE, center[col]), max(1 - EDGE, center[col])
                X[:, col] = np.clip(X[:, col], lo, hi)
        return X

    def flip(self, X, p, rng):
        """Each choice of each point replaced by a random one with probability `p` (at least
        a tenth): steps in the cube move a one-hot coordinate too little to change it."""
        X = X.copy()
        for name, (col, n) in self.columns.items():
            if isinstance(self.space[name], CategoricalDistribution):
                hit = rng.random(len(X)) < max(p, 0.1)
                X[hit, col : col + n] = np.eye(n)[rng.integers(n, size=int(hit.sum()))]
        return X

    def rounded(self, u, col, digits):
        """Coordinate `u` of a number column, its value rounded to `digits` significant
        digits; None where that value is outside the range."""
        d = self.numeric[col]
        low, high = self.bounds(d)
        v = low + u * (high - low)
        v = math.exp(v) if d.log else v
        if isinstance(d, optuna.distributions.IntDistribution):
            v = round(v)
        if v == 0:
            return u
        r = float(f"{v:.{digits}g}")
        # Not onto an end of the range (see `within`), unless the value is already at that end.
        near = 1e-9 * (d.high - d.low)
        kept = (abs(v - d.low) <= near and r == d.low) or (abs(v - d.high) <= near and r == d.high)
        if not (d.low < r < d.high or kept):
            return None
        return ((math.log(r) if d.log else r) - low) / (high - low)

    def encode(self, params):
        """A trial's point, or None for one that lacks a parameter or lies outside."""
        x = np.zeros(self.width)
        for name, (col, n) in self.columns.items():
            d = self.space[name]
            if name not in params:
                return None
            v = params[name]
            if isinstance(d, CategoricalDistribution):
                if v not in d.choices:
                    return None
                x[col + d.choices.index(v)] = 1
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not d.low <= v <= d.high:
                return None
            low, high = self.bounds(d)
            x[col] = ((math.log(v) if d.log else v) - low) / (high - low)
        return x

    def decode(self, x):
        out = {}
        for name, (col, n) in self.columns.items():
            d = self.space[name]
            if isinstance(d, CategoricalDistribution):
                out[name] = d.choices[int(np.argmax(x[col : col + n]))]
                continue
            low, high = self.bounds(d)
            v = low + min(1.0, max(0.0, x[col])) * (high - low)
            v = math.exp(v) if d.log else v
            if isinstance(d, optuna.distributions.IntDistribution):
                v = int(min(d.high, max(d.low, round(v))))
            else:
                v = min(d.high, max(d.low, v))
            out[name] = v
        return out

    def snap(self, X):
        """Points the space can hold: inside the cube, integers whole, one choice each."""
        X = np.clip(np.atleast_2d(X), 0, 1)
        for name, (col, n) in self.columns.items():
            d = self.space[name]
            if isinstance(d, CategoricalDistribution):
                pick = np.argmax(X[:, col : col + n], axis=1)
                X[:, col : col + n] = np.eye(n)[pick]
            elif isinstance(d, optuna.distributions.IntDistribution):
                low, high = self.bounds(d)
                v = low + X[:, col] * (high - low)
                v = np.clip(np.round(np.exp(v) if d.log else v), d.low, d.high)
                X[:, col] = ((np.log(v) if d.log else v) - low) / (high - low)
        return X if X.shape[0] > 1 else X[0]


def region(stall):
    """The trust region's half-side in the cube: wide after a new best, narrowing while the
    trials after it fail to beat it. Code that already works is improved near where it
    stands; a model fitted to few trials is most wrong far from them, in the corners."""
    return max(REGION_MIN, REGION_START * REGION_SHRINK**stall)


def modelled(X, y):
    """At most MAX_MODELLED trials: the best half and the latest half."""
    if len(y) <= MAX_MODELLED:
        return X, y
    half = MAX_MODELLED // 2
    keep = np.union1d(np.argsort(y)[:half], np.arange(len(y) - half, len(y)))
    return X[keep], y[keep]


def standardized(y):
    """Centred and scaled, results beyond Tukey's upper fence pulled back to it: one
    diverged run (or a failure, counted as the worst) would otherwise squeeze every good
    result into a sliver of the scale, where the model cannot tell them apart."""
    finite = y[np.isfinite(y)]
    y = np.clip(y, finite.min(), finite.max()) if len(finite) else np.zeros_like(y)
    big = np.abs(y).max()
    y = y / big if big > 0 else y  # values near 1e308 would overflow the sums below
    q1, q3 = np.quantile(y, [0.25, 0.75])
    y = np.minimum(y, q3 + 1.5 * (q3 - q1)) if q3 > q1 else y
    sd = y.std()
    return (y - y.mean()) / (sd if sd > 0 else 1)


def kernel(A, B, ls):
    """Matérn 5/2 with unit variance, and the scaled squared differences it came from."""
    D2 = ((A[:, None, :] - B[None, :, :]) / ls) ** 2
    r = np.sqrt(D2.sum(-1))
    return (1 + SQRT5 * r + 5 / 3 * r**2) * np.exp(-SQRT5 * r), D2, r


# theta = log length scales (one per coordinate), log signal variance, log noise variance.
# Priors, in log space (mean, sd): length scales near a fifth of the cube, signal near the
# standardized metric's variance, noise small but free to grow where the metric is noisy.
LS_PRIOR, SIGNAL_PRIOR, NOISE_PRIOR = (math.log(0.2), 1.5), (0.0, 1.0), (math.log(0.01), 2.0)
LOWER = (math.log(0.005), math.log(0.05), math.log(1e-6))
UPPER = (math.log(10.0), math.log(20.0), math.log(2.0))


def log_posterior(theta, X, y):
    """The log marginal likelihood plus log priors, and its gradient."""
    n, d = X.shape
    ls, signal, noise = np.exp(theta[:d]), math.exp(theta[d]), math.exp(theta[d + 1])
    M, D2, r = kernel(X, X, ls)
    K = signal * M + (noise + 1e-8) * np.eye(n)
    L = np.linalg.cholesky(K)
    alpha = np.linalg.solve(L.T, np.linalg.solve(L, y))
    Kinv = np.linalg.solve(L.T, np.linalg.solve(L, np.eye(n)))
    value = -0.5 * y @ alpha - np.log(np.diag(L)).sum()
    W = np.outer(alpha, alpha) - Kinv
    dM = signal * 5 / 3 * (1 + SQRT5 * r) * np.exp(-SQRT5 * r)
    grad = np.empty(d + 2)
    grad[:d] = 0.5 * np.einsum("ij,ijk->k", W * dM, D2)
    grad[d] = 0.5 * np.sum(W * signal * M)
    grad[d + 1] = 0.5 * np.trace(W) * noise
    for i, (mean, sd) in enumerate([LS_PRIOR] * d + [SIGNAL_PRIOR, NOISE_PRIOR]):
        value -= 0.5 * ((theta[i] - mean) / sd) ** 2
        grad[i] -= (theta[i] - mean) / sd**2
    return value, grad


def fit(X, y, start=None, steps=150, rate=0.05):
    """Hyperparameters by gradient ascent (Adam) on the log posterior: from the last fit,
    briefly, when there is one (a trial more changes it little), else from the priors."""
    d = X.shape[1]
    lower = np.array([LOWER[0]] * d + list(LOWER[1:]))
    upper = np.array([UPPER[0]] * d + list(UPPER[1:]))
    default = np.array([LS_PRIOR[0]] * d + [SIGNAL_PRIOR[0], NOISE_PRIOR[0]])
    starts = [default]
    if start is not None and len(start) == d + 2:
        starts, steps = [start], steps // 3
    best, best_value = default, -np.inf
    for theta in starts:
        theta, m, v = theta.copy(), np.zeros(d + 2), np.zeros(d + 2)
        for step in range(1, steps + 1):
            try:
                value, grad = log_posterior(theta, X, y)
            except np.linalg.LinAlgError:
                break
            if value > best_value:
                best, best_value = theta.copy(), value
            m = 0.9 * m + 0.1 * grad
            v = 0.999 * v + 0.001 * grad**2
            theta = np.clip(
                theta + rate * (m / (1 - 0.9**step)) / (np.sqrt(v / (1 - 0.999**step)) + 1e-8),
                lower,
                upper,
            )
    return best


class Posterior:
    def __init__(self, X, y, theta):
        d = X.shape[1]
        self.X, self.ls = X, np.exp(theta[:d])
        self.signal, noise = math.exp(theta[d]), math.exp(theta[d + 1])
        K = self.signal * kernel(X, X, self.ls)[0] + (noise + 1e-8) * np.eye(len(X))
        self.L = np.linalg.cholesky(K)
        self.alpha = np.linalg.solve(self.L.T, np.linalg.solve(self.L, y))

    def mean(self, C):
        return self.signal * kernel(C, self.X, self.ls)[0] @ self.alpha

    def mean_sd(self, C):
        Ks = self.signal * kernel(C, self.X, self.ls)[0]
        v = np.linalg.solve(self.L, Ks.T)
        var = np.maximum(self.signal - (v**2).sum(0), 1e-12)
        return Ks @ self.alpha, np.sqrt(var)


def acquisition(model, C, incumbent, seen):
    """Log expected improvement below the incumbent's predicted value; points already
    measured or running are never picked again."""
    mu, sd = model.mean_sd(C)
    z = (incumbent - mu) / sd
    score = np.log(sd) + log_h(z)
    repeat = (np.abs(C[:, None, :] - seen[None, :, :]).max(-1) < 1e-9).any(1)
    score[repeat] = -np.inf
    return score


def log_h(z):
    """log(z Φ(z) + φ(z)), stable far into the tail where expected improvement underflows."""
    z = np.asarray(z, dtype=float)
    out = np.empty_like(z)
    near = z > -6
    zn = z[near]
    cdf = 0.5 * np.vectorize(math.erfc, otypes=[float])(-zn / math.sqrt(2))
    pdf = np.exp(-0.5 * zn**2) / math.sqrt(2 * math.pi)
    out[near] = np.log(np.maximum(zn * cdf + pdf, 1e-300))
    zf = z[~near]  # φ(z)/z² (1 - 3/z²…): the tail's leading terms
    out[~near] = -0.5 * zf**2 - 0.5 * math.log(2 * math.pi) - 2 * np.log(-zf) + np.log1p(-3 / zf**2)
    return out
