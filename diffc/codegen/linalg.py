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
    Op.CHOLESKY: ("np.linalg.cholesky", None, ""), Op.PINV: ("np.linalg.pinv", None, ""),
    Op.EIGVALSH: ("np.linalg.eigvalsh", None, ""),  # alone; beside the vectors, eigh's values (SHARED)
}
# ops that are parts of one call's tuple: when a function reads several parts of the same call (eigh's
# values and vectors, slogdet's sign and logarithm, the SVD's three), the call is made once
SHARED: dict[Op, tuple[str, int, str]] = {
    Op.LOGABSDET: ("np.linalg.slogdet", 1, ""), Op.DETSIGN: ("np.linalg.slogdet", 0, ""),
    Op.EIGVALSH: ("np.linalg.eigh", 0, ""), Op.EIGVECSH: ("np.linalg.eigh", 1, ""),
    # one spelling of the SVD for both back ends (Numba has no compute_uv): the same bits
    Op.SVD_U: ("np.linalg.svd", 0, ", full_matrices=False"), Op.SVDVALS: ("np.linalg.svd", 1, ", full_matrices=False"),
    Op.SVD_VT: ("np.linalg.svd", 2, ", full_matrices=False"),
}


class LinalgPrinting(Printer):
    """The np.linalg ops' printer methods, shared by both back ends (``print_<op>`` is :meth:`print_linalg`,
    ``state_<op>`` of a part of a tuple is :meth:`state_part`)."""

    def linalg_value(self, node: Node, text: str) -> str:
        """The printed value of ``node`` (a back end whose LAPACK widens a dtype narrows it back here)."""
        return text

    def print_linalg(self, node: Node, *args: Expr) -> Expr:
        """``np.linalg.inv(a)``."""
        fn, _, extra = CALLS[node.op]
        return Expr(self.linalg_value(node, self.call(fn, *args, extra=extra).text))

    def print_part(self, node: Node, *args: Expr) -> Expr:
        """``np.linalg.slogdet(a)[1]``: the expression of one part (statements use :meth:`state_part`)."""
        fn, part, extra = SHARED[node.op]
        return Expr(self.linalg_value(node, f"{self.call(fn, *args, extra=extra).text}[{part}]"))

    def state_part(self, node: Node, var: str, *args: Expr) -> list[str]:
        """``w = np.linalg.eigh(a)[0]``; ``eigh = np.linalg.eigh(a)`` first when another op of the function
        reads another part of the same call, whose later parts then read ``eigh``."""
        fn, part, extra = SHARED[node.op]
        memo = self._calls()
        key = (fn, extra, tuple(a.text for a in args))
        if key not in memo and not self._siblings(node):
            alone = self.print_linalg if node.op in CALLS else self.print_part
            return [f"{var} = {alone(node, *args).text}"]
        lines = []
        if key not in memo:
            memo[key] = self.namer.fresh(fn.rsplit(".", 1)[1])
            lines.append(f"{memo[key]} = {self.call(fn, *args, extra=extra).text}")
        return lines + [f"{var} = {self.linalg_value(node, f'{memo[key]}[{part}]')}"]

    def _siblings(self, node: Node) -> bool:
        """Whether the function reads another part of the same call of the same input."""
        fn = SHARED[node.op][0]
        return any(other.op is not node.op and other.op in SHARED and SHARED[other.op][0] == fn
                   and other.inputs == node.inputs for other in self.uses)

    def _calls(self) -> dict[tuple[str, str, tuple[str, ...]], str]:
        """The tuples bound in the function being printed (a new function has a new namer)."""
        if getattr(self, "_calls_namer", None) is not self.namer:
            self._calls_namer, self._bound = self.namer, {}
        return self._bound  # type: ignore[no-any-return]


class NumbaLinalgPrinting(LinalgPrinting):
    """Numba's det and slogdet of a float32 matrix are float64 numbers (NumPy's are float32): cast back,
    so that a float32 program stays float32."""

    def linalg_value(self, node: Node, text: str) -> str:
        return f"np.float32({text})" if not node.shape and node.dtype is DType.F32 else text


for _op in CALLS:
    setattr(LinalgPrinting, f"print_{_op.value}", LinalgPrinting.print_linalg)
for _op in SHARED:
    setattr(LinalgPrinting, f"state_{_op.value}", LinalgPrinting.state_part)
    if _op not in CALLS:
        setattr(LinalgPrinting, f"print_{_op.value}", LinalgPrinting.print_part)
