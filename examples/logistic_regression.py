"""Logistic regression, the lecture notes' loss, trained by gradient descent on real data.

The loss is the notes' vectorised form written as a plain NumPy function
(z = Xw + b, a = sigmoid(z), J = -mean(y log a + (1-y) log(1-a))); diffc
compiles it and its gradient (dJ/dw = X^T (a - y) / m, dJ/db = mean(a - y)
in the notes) from that function alone. The data is scikit-learn's bundled
breast-cancer set (569 tumours, 30 features, no download), standardised.
The script prints the falling loss under a tqdm progress bar and the test
accuracy at the end (about 96%).

    python examples/logistic_regression.py [--small] [--steps N] [--lr ALPHA]
"""

from __future__ import annotations

import numpy as np
from common import load, parse_args
from tqdm import tqdm

import diffc


def loss(w, b, X, y):
    """The notes' cross-entropy of a logistic regression, averaged over the m examples."""
    z = X @ w + b
    a = 1 / (1 + np.exp(-z))  # diffc rewrites this to a stable sigmoid and log(a) to -softplus(-z)
    return -np.mean(y * np.log(a) + (1 - y) * np.log(1 - a))


def train(X, y, steps: int, lr: float, backend: str = "numba") -> tuple[np.ndarray, float, list[float]]:
    """Gradient descent from zero: w <- w - lr * dw, b <- b - lr * db (the notes' update rule)."""
    f = diffc.compile(loss, args={"w": "f64[n]", "b": "f64", "X": "f64[m,n]", "y": "f64[m]"}, wrt=("w", "b"),
                      backend=backend)
    w, b = np.zeros(X.shape[1]), 0.0
    losses = []
    bar = tqdm(range(steps), desc="gradient descent", mininterval=0.2)
    for step in bar:
        J, (dw, db) = f.value_and_grad(w, b, X, y)
        w, b = w - lr * dw, b - lr * db
        losses.append(J)
        if step % 10 == 0:
            bar.set_postfix(loss=f"{J:.4f}")
    return w, b, losses


def accuracy(w, b, X, y) -> float:
    return float(np.mean(((X @ w + b) > 0) == y))


def main() -> None:
    options = parse_args(__doc__, {"steps": (int, 500, "gradient steps"), "lr": (float, 0.5, "learning rate")})
    steps = 60 if options.small else options.steps
    X_train, X_test, y_train, y_test = load("breast_cancer")
    w, b, losses = train(X_train, y_train.astype(float), steps, options.lr, options.backend)
    for k in sorted({0, 1, 2, 5, 10, steps // 2, steps - 1}):
        print(f"step {k:4d}  loss {losses[k]:.6f}")
    print(f"final training loss {losses[-1]:.6f}")
    print(f"test accuracy {accuracy(w, b, X_test, y_test):.4f}")


if __name__ == "__main__":
    main()
