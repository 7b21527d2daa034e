"""What the examples share: the ``--small`` switch and scikit-learn's bundled data, split and standardised.

The data sets ship inside scikit-learn (no download). ``--small`` (or the
environment variable ``DIFFC_EXAMPLES_SMALL=1``) makes each example run in a
second or two, which is how the test suite runs them.
"""

from __future__ import annotations

import argparse
import os

import numpy as np


def parse_args(doc: str | None, extra: dict[str, tuple[type, object, str]] | None = None) -> argparse.Namespace:
    """``--small``, ``--backend`` and the example's own options (name -> (type, default, help))."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument("--small", action="store_true", default=os.environ.get("DIFFC_EXAMPLES_SMALL") == "1",
                        help="a small, fast run (as the test suite does); also DIFFC_EXAMPLES_SMALL=1")
    parser.add_argument("--backend", choices=("numba", "numpy"), default="numba",
                        help="diffc's back end: fused loops compiled by Numba (default) or NumPy statements")
    for name, (kind, default, text) in (extra or {}).items():
        parser.add_argument(f"--{name}", type=kind, default=default, help=text)
    return parser.parse_args()


def load(name: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``X_train, X_test, y_train, y_test`` of a bundled data set, features standardised on the training part."""
    from sklearn import datasets
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=seed, stratify=y)
    scaler = StandardScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test), y_train, y_test
