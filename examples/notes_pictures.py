"""The lecture notes' computation graphs, written as Graphviz files by diffc.

Three graphs from the notes: e = (a + b)(b + 1) with intermediates c and d;
the DAG logistic regression L = ½‖w‖² − λ log σ(y wᵀx) with a label
y in {−1, 1}; and a linear layer followed by a ReLU, h = max(W x, 0). For each
one the script writes ``<name>.dot``: the forward graph with the derivative on
each edge, the adjoint nodes, and every value and adjoint at one point
(``f.to_dot(at=...)``). Where Graphviz's ``dot`` program is installed it also
renders ``<name>.svg`` (``f.render``).

    python examples/notes_pictures.py [--out DIRECTORY]     (the graphs are small: --small changes nothing)
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from common import parse_args

import diffc


def dag_logistic(w, x, y, lam):
    """The notes' DAG logistic regression: ½‖w‖² − λ log p(y|x), p(y|x) = σ(y wᵀx)."""
    return 0.5 * np.dot(w, w) - lam * np.log(1 / (1 + np.exp(-y * np.dot(w, x))))


def relu_layer(W, x):
    """A linear layer and a ReLU, summed to a scalar so that it has a gradient."""
    return np.sum(np.maximum(W @ x, 0.0))


def graphs(backend: str) -> dict[str, tuple[diffc.Compiled, tuple]]:
    """name -> (compiled function, a point at which to print its value and gradient)."""
    dag_types = {"w": "f64[n]", "x": "f64[n]", "y": "f64", "lam": "f64"}
    return {
        "e_graph": (diffc.compile("c = a + b; d = b + 1; e = c * d", backend=backend), (2.0, 1.0)),
        "dag_logistic": (diffc.compile(dag_logistic, args=dag_types, wrt="w", backend=backend),
                         (np.zeros(3), np.array([1.0, -2.0, 0.5]), 1.0, 1.0)),
        "relu_layer": (diffc.compile(relu_layer, args={"W": "f64[m,n]", "x": "f64[n]"}, wrt="W", backend=backend),
                       (np.array([[1.0, 1.0], [-2.0, 0.5]]), np.array([1.0, 2.0]))),
    }


def plain(value):
    """Arrays as nested lists, tuples of them as tuples: one printable line."""
    if isinstance(value, tuple):
        return tuple(plain(v) for v in value)
    return value.tolist() if isinstance(value, np.ndarray) else value


def write(name: str, f: diffc.Compiled, point: tuple, out: Path) -> None:
    """The picture with each edge's derivative and every value and adjoint at ``point``."""
    dot_text = f.to_dot(at=point)
    path = out / f"{name}.dot"
    path.write_text(dot_text)
    print(f"wrote {path} ({dot_text.count('->')} edges)")
    if shutil.which("dot"):
        svg = out / f"{name}.svg"
        f.render(svg, at=point)
        print(f"wrote {svg}")


def main() -> None:
    options = parse_args(__doc__, {"out": (str, "pictures", "directory for the .dot (and .svg) files")})
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, (f, point) in graphs(options.backend).items():
        write(name, f, point, out)
        print(f"  {name}{plain(point)}: value {f(*point):.6g}, gradient {plain(f.grad(*point))}")
    if not shutil.which("dot"):
        print("Graphviz's dot is not installed (apt install graphviz, or conda install graphviz): "
              "only .dot files were written")


if __name__ == "__main__":
    main()
