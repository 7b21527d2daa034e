"""How the back ends print the np.linalg ops: the NumPy call itself, one statement each.

They are not elementwise, so the loop planner leaves them out of every loop
(it fuses only what its tables name) and the Numba back end prints them as
these same statements between loops: Numba compiles ``np.linalg.inv``,
``solve``, ``det``, ``slogdet``, ``cholesky``, ``eigh``, ``eigvalsh``, ``pinv`` and ``svd`` in
nopython mode through SciPy's LAPACK (SciPy is a dependency), on any layout
(a transposed view is copied to Fortran order, as LAPACK wants).
"""

from __future__ import annotations

from diffc.codegen.printer import Expr, Printer
from diffc.ir import DType, Node, Op

# op -> (the np.linalg function, the part of its result the op stands for or None for all of it, more arguments)
CALLS: dict[Op, tuple[str, int | None, str]] = {
    Op.INV: ("np.linalg.inv", None, ""), Op.SOLVE: ("np.linalg.solve", None, ""), Op.DET: ("np.linalg.det", None, ""),
    Op.LOGABSDET: ("np.linalg.slogdet", 1, ""), Op.DETSIGN: ("np.linalg.slogdet", 0, ""),
    Op.CHOLESKY: ("np.linalg.cholesky", None, ""), Op.EIGVALSH: ("np.linalg.eigvalsh", None, ""),
    Op.EIGVECSH: ("np.linalg.eigh", 1, ""), Op.PINV: ("np.linalg.pinv", None, ""),
    # one spelling of the SVD for both back ends (Numba has no compute_uv): the same bits
    Op.SVD_U: ("np.linalg.svd", 0, ", full_matrices=False"), Op.SVDVALS: ("np.linalg.svd", 1, ", full_matrices=False"),
    Op.SVD_VT: ("np.linalg.svd", 2, ", full_matrices=False"),
}


class LinalgPrinting(Printer):
    """The np.linalg ops' printer methods, shared by both back ends (``print_<op>`` is :meth:`print_linalg`)."""

    def print_linalg(self, node: Node, *args: Expr) -> Expr:
        """``np.linalg.inv(a)``; ``np.linalg.slogdet(a)[1]`` for an op that is one part of a tuple."""
        fn, part, extra = CALLS[node.op]
        call = self.call(fn, *args, extra=extra)
        return call if part is None else Expr(f"{call.text}[{part}]")


class NumbaLinalgPrinting(LinalgPrinting):
    """Numba's det and slogdet of a float32 matrix are float64 numbers (NumPy's are float32): cast back,
    so that a float32 program stays float32."""

    def print_linalg(self, node: Node, *args: Expr) -> Expr:
        expr = super().print_linalg(node, *args)
        return Expr(f"np.float32({expr.text})") if not node.shape and node.dtype is DType.F32 else expr


for _op in CALLS:
    setattr(LinalgPrinting, f"print_{_op.value}", LinalgPrinting.print_linalg)
    setattr(NumbaLinalgPrinting, f"print_{_op.value}", NumbaLinalgPrinting.print_linalg)
