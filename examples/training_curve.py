"""Training curves of logistic regression on the breast-cancer data, plotted to a PNG with matplotlib.

The loss is ``logistic_regression.loss`` (the notes' cross-entropy as a NumPy
function, compiled by diffc); the script trains it by gradient descent at
three learning rates and draws training and test loss against the step on a
log scale, so the effect of the learning rate can be seen. matplotlib runs on
its Agg back end (no display needed).

    python examples/training_curve.py [--small] [--steps N] [--out curve.png]
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from common import load, parse_args  # noqa: E402
from logistic_regression import loss  # noqa: E402

import diffc  # noqa: E402

RATES = (0.05, 0.5, 2.0)


def curves(f: diffc.Compiled, data, steps: int, lr: float) -> tuple[list[float], list[float]]:
    """Training and test loss at every step of gradient descent from zero."""
    X_train, X_test, y_train, y_test = data
    w, b = np.zeros(X_train.shape[1]), 0.0
    train, test = [], []
    for _ in range(steps):
        J, (dw, db) = f.value_and_grad(w, b, X_train, y_train)
        train.append(J)
        test.append(f(w, b, X_test, y_test))
        w, b = w - lr * dw, b - lr * db
    return train, test


def main() -> None:
    options = parse_args(__doc__, {"steps": (int, 300, "gradient steps"),
                                   "out": (str, "training_curve.png", "the PNG to write")})
    steps = 40 if options.small else options.steps
    X_train, X_test, y_train, y_test = load("breast_cancer")
    data = (X_train, X_test, y_train.astype(float), y_test.astype(float))
    f = diffc.compile(loss, args={"w": "f64[n]", "b": "f64", "X": "f64[m,n]", "y": "f64[m]"}, wrt=("w", "b"),
                      backend=options.backend)
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for lr, colour in zip(RATES, ("tab:blue", "tab:orange", "tab:green"), strict=True):
        train, test = curves(f, data, steps, lr)
        axes.plot(train, color=colour, label=f"train, lr = {lr}")
        axes.plot(test, color=colour, linestyle="--", label=f"test, lr = {lr}")
        print(f"lr {lr:<5} loss: first {train[0]:.6f}  last train {train[-1]:.6f}  last test {test[-1]:.6f}")
    axes.set(xlabel="gradient step", ylabel="cross-entropy", yscale="log",
             title="Logistic regression on breast-cancer data (gradient by diffc)")
    axes.legend()
    figure.tight_layout()
    figure.savefig(options.out, dpi=100)
    print(f"wrote {options.out}")


if __name__ == "__main__":
    main()
