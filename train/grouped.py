"""The shared pieces of the conditional-logit fit (`fit_answer.py`): a softmax over groups of
consecutive rows, one group a question's candidates, and the standardization whose scaling the fits fold back."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Groups:
    starts: np.ndarray  # first row of each group
    owner: np.ndarray  # group of each row

    @classmethod
    def of(cls, sizes: np.ndarray) -> Groups:
        """Groups of `sizes[i]` consecutive rows each."""
        return cls(np.concatenate(([0], np.cumsum(sizes)[:-1])), np.repeat(np.arange(len(sizes)), sizes))

    def exp(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """exp(z) shifted by each group's maximum (so nothing overflows), and each group's sum of it."""
        e = np.exp(z - np.maximum.reduceat(z, self.starts)[self.owner])
        return e, self.sum(e)

    def sum(self, values: np.ndarray) -> np.ndarray:
        return np.add.reduceat(values, self.starts)


def standardize(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Columns with mean 0 and standard deviation 1, and the mean and scale to fold back into fitted weights."""
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    return (x - mean) / scale, mean, scale
