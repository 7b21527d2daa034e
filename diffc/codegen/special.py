"""The Numba back end's scipy.special ops: Numba compiles neither SciPy's ufuncs nor a digamma.

A number (a loop's element, a 0-d value) calls Python's ``math`` module,
which Numba compiles natively (``math.erf``, ``math.erfc``, ``math.lgamma``),
or diffc's digamma and trigamma (:mod:`diffc.support.numba_special`); an array statement
(outside the fused loops) maps the same scalar code over the elements with
``special_elements``. The NumPy back end prints the SciPy calls themselves.
"""

from __future__ import annotations

from diffc.codegen.printer import Expr
from diffc.ir import DType, Node, Op

# op -> (the scalar function, its code for support.numba_special.special_elements)
SCALARS: dict[Op, tuple[str, int]] = {Op.ERF: ("math.erf", 0), Op.ERFC: ("math.erfc", 1),
                                      Op.GAMMALN: ("lgamma", 2), Op.DIGAMMA: ("digamma", 3),
                                      Op.TRIGAMMA: ("trigamma", 4)}


class NumbaSpecialPrinting:
    """Mixin for the Numba printer: ``print_<op>`` (an array or a number) and ``scalar_<op>`` (in loops)."""

    def scalar_special(self, node: Node, x: Expr) -> Expr:
        """One element; ``lgamma`` and ``digamma`` are diffc's (an exact pole at 0, -1, ... gives inf / NaN
        without Python's ``ValueError``); a float32 result is cast back (the helpers compute in float64)."""
        name, _ = SCALARS[node.op]
        if "." not in name:
            name = self.require("numba_special", name)  # type: ignore[attr-defined]
        text = f"{name}({x.text})"
        return Expr(f"np.float32({text})" if node.dtype is DType.F32 else text)

    def print_special(self, node: Node, x: Expr) -> Expr:
        if not node.shape:
            return self.scalar_special(node, x)
        helper = self.require("numba_special", "special_elements")  # type: ignore[attr-defined]
        return Expr(f"{helper}({x.text}, {SCALARS[node.op][1]})")


for _op in SCALARS:
    setattr(NumbaSpecialPrinting, f"print_{_op.value}", NumbaSpecialPrinting.print_special)
    setattr(NumbaSpecialPrinting, f"scalar_{_op.value}", NumbaSpecialPrinting.scalar_special)
