"""Loop fusion for the Numba back end: elementwise chains become one pass.

NumPy statements make one temporary array per operation and read each input
once per statement that uses it. Here the nodes of one iteration domain (a
vector of length ``n``) are printed as the body of one ``for i in range(n)``
loop: forward and backward of an elementwise loss run in the same iteration,
their intermediate values stay in registers, and the reductions that end the
domain accumulate inside the loop.

Row kernels: a matrix-vector product ``X @ w`` feeding a row-wise loss is a
dot product per row (an inner loop), and the adjoint ``X.T @ dz`` is an
accumulation per row (``w_bar[j] += X[i, j] * dz``), so X is read once, a row
at a time, for the value and the gradient.

Everything else (matrix products, reshapes, reductions over some axes) stays
a NumPy statement between loops. The plan is made once per function:

1. **Classify** each node: a *loop node* computed per element of a domain, a
   *reduction* that ends a domain (``sum``, ``mean``, ``dot``, ``X.T @ v``),
   or a *statement*.
2. **Schedule** in topological order: a loop node joins the earliest loop of
   its domain that comes after all it needs; a statement goes right after the
   last thing it needs (so scalars such as ``1 / m`` are hoisted above the
   loop instead of splitting it).
3. **Print**: loop nodes used outside their loop (or returned) are stored in
   arrays; the others are loop-local scalars.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from diffc.codegen.printer import ATOM, SUM, Expr
from diffc.ir import ELEMENTWISE, Dim, Node, Op, users

# Rows per block of a row kernel: 64 rows of 64 doubles stay in the first-level cache.
BLOCK_ROWS = 64
# Above this much work per loop (elements times inner width) the loop runs on
# all cores in fixed chunks; below, the launch (about 3-4 us) costs more than it saves.
PARALLEL_MIN_WORK = 1 << 21
# Transcendental functions cost ~20-50 arithmetic ops each: loops that call them
# are compute-bound and parallelise from smaller sizes.
TRANSCENDENTAL = frozenset({Op.EXP, Op.LOG, Op.SIN, Op.COS, Op.TAN, Op.TANH, Op.SIGMOID, Op.SQRT, Op.POW})
TRANSCENDENTAL_WEIGHT = 16


# ops printed in loops as calls of diffc's vectorizable helpers, by their name in vmath.FUNCTIONS
FAST_TRIG = re.compile(r"\b(sin|cos)_(f64|f32)\(")  # a call of a full-range sine or cosine helper
VECTOR_MATH = {Op.EXP: "exp", Op.EXPM1: "expm1", Op.LOG: "log", Op.LOG1P: "log1p", Op.SIN: "sin", Op.COS: "cos",
               Op.TANH: "tanh", Op.SIGMOID: "sigmoid", Op.SOFTPLUS: "softplus"}


@dataclass
class Loop:
    """One fused loop over ``range(size)``."""

    size: Dim
    nodes: list[Node] = field(default_factory=list)        # per-element values, in order
    reductions: list[Node] = field(default_factory=list)   # results complete after the loop


@dataclass
class Statement:
    node: Node


Stage = Loop | Statement


def _domain(node: Node) -> Dim | None:
    shape = node.shape
    return shape[0] if len(shape) == 1 else None


def _is_transposed_input(x: Node) -> Node | None:
    """``A`` when ``x`` is ``A.T`` of a matrix, else ``None``."""
    if x.op is Op.TRANSPOSE and x.ndim == 2 and x.attr("axes") == (1, 0):
        return x.inputs[0]
    return None


class Plan:
    """Which nodes fuse into which loop, in what order."""

    def __init__(self, nodes: Sequence[Node], outputs: Sequence[Node], available: set[Node]) -> None:
        self.stages: list[Stage] = []
        self.home: dict[Node, Stage] = {}
        self.kind: dict[Node, str] = {}
        self.row_matrix: dict[Node, Node] = {}  # row ops: the matrix they read by rows
        self.outputs = set(outputs)
        self.available = available
        self.scatters: set[Node] = set()          # reductions that add into a zeroed array
        self.merged_into: dict[Node, Node] = {}   # a scatter summed into another: the sum's array is its array
        self.users = users(nodes)
        for node in nodes:
            if node in available or node.op in (Op.CONST, Op.DIM, Op.INPUT):
                continue
            self._place(node)
        self._sink(nodes)
        self.materialized = self._materialized(nodes)

    # -- classification ----------------------------------------------------------
    def loop_domain(self, node: Node) -> Dim | None:
        """The domain of a per-element node, or ``None``."""
        d = _domain(node)
        if d is None:
            return None
        if node.op in ELEMENTWISE and all(x.ndim <= 1 for x in node.inputs):
            return d
        if node.op is Op.BROADCAST and node.inputs[0].ndim == 0:
            return d
        if node.op is Op.SLICE and node.inputs[0].ndim == 1 and self._outside(node.inputs[0], d) \
                and slice_position(node) is not None:  # x[1:] reads x[i + 1]
            return d
        if node.op is Op.MATMUL:  # z = A @ w: a dot product per row of A
            a, w = node.inputs
            if a.ndim == 2 and w.ndim == 1 and self._outside(a, d) and self._outside(w, d):
                self.row_matrix[node] = a
                return d
        return None

    def _outside(self, x: Node, d: Dim) -> bool:
        """``x`` is not computed per element of domain ``d`` (a whole array, ready before)."""
        return self.kind.get(x) != "loop" or _domain(x) != d

    def reduction_source(self, node: Node) -> Node | None:
        """The loop node a reduction consumes, when it ends that node's domain.

        Scatters count: the adjoint of ``x[1:]`` adds each element into its
        place of a zeroed array (``x_bar[i + 1] += g``), and the sum of such
        scatters from one loop (Rosenbrock's two slices) adds into one array.
        """
        if node.op is Op.UNSLICE and node.ndim == 1 and node.inputs[0].ndim == 1 \
                and self.kind.get(node.inputs[0]) == "loop" and slice_position(node) is not None:
            self.scatters.add(node)
            return node.inputs[0]
        if node.op is Op.ADD and all(x in self.scatters and len(self.users[x]) == 1 for x in node.inputs) \
                and self.home[node.inputs[0]] is self.home[node.inputs[1]]:
            self.scatters.add(node)
            for x in node.inputs:
                self.merged_into[x] = node
            return node.inputs[0]
        if node.op in (Op.SUM, Op.MEAN) and node.inputs[0].ndim == 1 and node.shape == ():
            return node.inputs[0] if self.kind.get(node.inputs[0]) == "loop" else None
        if node.op is Op.MATMUL:
            a, b = node.inputs
            if a.ndim == 1 and b.ndim == 1 and self.kind.get(a) == "loop" and self.kind.get(b) == "loop" \
                    and self.home[a] is self.home[b]:
                return a  # u . v
            matrix = _is_transposed_input(a)
            if matrix is not None and b.ndim == 1 and self.kind.get(b) == "loop":  # A.T @ v: rows of A
                self.row_matrix[node] = matrix
                return b
            if a.ndim == 1 and b.ndim == 2 and self.kind.get(a) == "loop":  # v @ A
                self.row_matrix[node] = b
                return a
        return None

    # -- scheduling ----------------------------------------------------------------
    def _position(self, stage: Stage) -> int:
        return self.stages.index(stage)

    def _ready(self, x: Node, domain: Dim | None) -> int:
        """The first stage position at which ``x`` may be used by a consumer of ``domain``."""
        if x in self.available or x.op in (Op.CONST, Op.DIM, Op.INPUT):
            return 0
        stage = self.home[x]
        position = self._position(stage)
        same_loop_ok = self.kind[x] == "loop" and domain is not None and _domain(x) == domain
        return position if same_loop_ok else position + 1

    def _place(self, node: Node) -> None:
        if self._place_reduction(node):
            return
        domain = self.loop_domain(node)
        if domain is not None:
            self.kind[node] = "loop"
            earliest = max((self._ready(x, domain) for x in node.inputs), default=0)
            for stage in self.stages[earliest:]:
                if isinstance(stage, Loop) and stage.size == domain:
                    stage.nodes.append(node)
                    self.home[node] = stage
                    return
            loop = Loop(domain, [node])
            self.stages.append(loop)
            self.home[node] = loop
            return
        self.kind[node] = "statement"
        statement = Statement(node)
        position = max((self._ready(x, None) for x in node.inputs), default=0)
        self.stages.insert(position, statement)
        self.home[node] = statement

    def _place_reduction(self, node: Node) -> bool:
        """Put a reduction into the loop of the value it reduces, when all else it needs is ready."""
        source = self.reduction_source(node)
        if source is None:
            return False
        loop = self.home[source]
        others = [x for x in node.inputs if x is not source and self.kind.get(x) != "loop" and x not in self.scatters]
        if isinstance(loop, Loop) and all(self._ready(x, None) <= self._position(loop) for x in others):
            self.kind[node] = "reduction"
            loop.reductions.append(node)
            self.home[node] = loop
            return True
        self.row_matrix.pop(node, None)
        return False

    def _sink(self, nodes: Sequence[Node]) -> None:
        """Move a loop node into the later loop that holds all its users.

        Placement is greedy (the earliest loop that can compute a node), so a
        value needed only after a reduction (``0.5 * w`` added to ``X.T @ dz``)
        lands in an early loop and would be stored in an array; sinking it
        next to its users keeps it in a register.
        """
        for node in reversed(nodes):
            if self.kind.get(node) != "loop" or node in self.outputs or node in self.row_matrix:
                continue
            homes = {id(self.home[u]): self.home[u] for u in self.users[node] if u in self.home}
            if len(homes) != 1 or any(self.kind.get(u) != "loop" for u in self.users[node]):
                continue
            (target,) = homes.values()
            source = self.home[node]
            if target is source or not isinstance(target, Loop) or not isinstance(source, Loop) \
                    or target.size != source.size or self._position(target) < self._position(source):
                continue
            source.nodes.remove(node)
            first_user = min(target.nodes.index(u) for u in self.users[node])
            target.nodes.insert(first_user, node)
            self.home[node] = target

    def _materialized(self, nodes: Sequence[Node]) -> set[Node]:
        """Loop nodes whose values are needed outside their loop: they get arrays."""
        out = {n for n in self.outputs if self.kind.get(n) == "loop"}
        for node in nodes:
            for x in node.inputs:
                if self.kind.get(x) == "loop" and self.home.get(node) is not self.home[x]:
                    out.add(x)
        return out

    def parallel_candidate(self, loop: Loop) -> bool:
        """Loops that read matrix rows or call transcendental functions are worth threads.

        Pure arithmetic over vectors is bound by memory bandwidth, and a
        vector that fits in L3 cache ran slower on two threads than on one.
        """
        if any(n in self.scatters for n in loop.reductions):  # neighbouring chunks would add into one place
            return False
        if self.broadcasting_statements():  # Numba's parallel mode refuses NumPy broadcasting of size-1 axes
            return False
        return any(n in self.row_matrix or n.op in TRANSCENDENTAL for n in loop.nodes + loop.reductions)

    def broadcasting_statements(self) -> bool:
        """Some NumPy statement broadcasts one array against another of another shape."""
        return any(isinstance(stage, Statement) and stage.node.op in ELEMENTWISE and stage.node.ndim
                   and any(x.ndim and x.shape != stage.node.shape for x in stage.node.inputs)
                   for stage in self.stages)

    def has_loops(self) -> bool:
        return any(isinstance(stage, Loop) for stage in self.stages)


def slice_position(node: Node):  # type: ignore[no-untyped-def]
    """For a rank-1 ``x[start:stop:step]`` (or its adjoint), a printer of the position of element i.

    Returns ``None`` for what a loop does not read this way (negative steps
    without a start, integer indices, new axes). The position of element i
    is ``start + step * i``; Python's clipping of the start happens once, on
    the symbolic start, and the loop's length (the slice's size) keeps every
    position in range.
    """
    index = node.attr("index")
    items = [item for item in index.items if item[0] != "new"]
    if len(items) != 1 or len(index.items) != 1 or items[0][0] != "slice":
        return None
    _, start, _, step = items[0]
    size = (node.inputs[0] if node.op is Op.SLICE else node).shape[0]
    if step < 0 and start is not None:
        return None

    def position(i: str, dim, unsigned: bool = False) -> str:  # type: ignore[no-untyped-def]
        """Element i's position; with an unsigned ``i``, a start that is a size is added to ``np.int64(i)``.

        Numba types unsigned + signed as float64; unsigned + a literal stays an integer.
        """
        if step < 0:  # x[::-1]: from the last element down
            base = f"{dim(size)} - 1"
        elif start is None or start == 0:
            base = ""
        elif isinstance(start, int) and start > 0:
            base = str(start)
        elif isinstance(start, int):  # counts from the end, clipped at 0
            base = f"max({dim(size)} - {-start}, 0)"
        else:
            base = dim(start)
        if unsigned and base and not base.isdigit():
            i = f"np.int64({i})"
        offset = i if step == 1 else f"{step} * {i}" if step > 0 else f"{-step} * {i}"
        if not base:
            return offset
        return f"{base} + {offset}" if step > 0 else f"{base} - {offset}"

    return position


def _fixed_offset(node: Node) -> int | None:
    """The constant start of a step-1 scatter ``zeros(n)[start:] = g``, else ``None``."""
    items = node.attr("index").items
    if len(items) != 1 or items[0][0] != "slice":
        return None
    _, start, _, step = items[0]
    if step != 1:
        return None
    if start is None:
        return 0
    return start if isinstance(start, int) and start >= 0 else None


def work(loop: Loop, plan: Plan, row_width: int = 64) -> int:
    """A rough cost of one loop, for the serial/parallel choice (symbolic sizes guessed large)."""
    per_element = 0
    for node in loop.nodes + loop.reductions:
        if node in plan.row_matrix:
            per_element += row_width
        per_element += TRANSCENDENTAL_WEIGHT if node.op in TRANSCENDENTAL else 1
    return per_element


def _times(size: str, factor: int) -> str:
    return f"{size} * {factor}" if size.isidentifier() else f"({size}) * {factor}"


class LoopPrinting:
    """Mixin for a printer: print a :class:`Plan`'s stages, fusing its loops.

    The host printer provides ``method``, ``emit``, ``fresh_var``, ``namer``,
    ``dim``, ``dtype``, ``uses``, ``program``; loop bodies reuse its per-op
    methods on scalar operands, with the few ops whose array and scalar forms
    differ (``where``, ``broadcast``, ``cast``) printed by ``scalar_<op>``.
    """

    parallel_enabled = True
    vector_math = True

    def fused_statements(self, nodes: Sequence[Node], exprs: dict[Node, Expr], body: list[str]) -> bool:
        """Print ``nodes`` with loops; ``False`` (printing nothing) when there is nothing to fuse."""
        plan = Plan(nodes, self.program.outputs, set(exprs))  # type: ignore[attr-defined]
        if not plan.has_loops():
            return False
        for node in nodes:
            if node.op in (Op.CONST, Op.DIM) and node not in exprs:
                exprs[node] = self.method(node.op)(node)  # type: ignore[attr-defined]
        for stage in plan.stages:
            if isinstance(stage, Statement):
                node = stage.node
                exprs[node] = self.emit(node, [exprs[x] for x in node.inputs], body)  # type: ignore[attr-defined]
            else:
                self.print_loop(stage, plan, exprs, body)
        return True

    def scalar_method(self, op: Op):  # type: ignore[no-untyped-def]
        if op in VECTOR_MATH and (self.vector_math or op in (Op.SIGMOID, Op.SOFTPLUS)):  # no libm sigmoid
            return self.scalar_vector_math
        found = getattr(self, f"scalar_{op.value}", None)
        return found if found is not None else self.method(op)  # type: ignore[attr-defined]

    def scalar_vector_math(self, node: Node, x: Expr) -> Expr:
        """diffc's branch-free exp, log, sin... (``diffc/support/vmath.py``): LLVM vectorizes them."""
        from diffc.support.vmath import HELPERS

        name = HELPERS[(VECTOR_MATH[node.op], node.dtype.value)]
        return Expr(f"{self.require('vmath', name)}({x.text})")  # type: ignore[attr-defined]

    def trig_arrays(self, loop: Loop, local: dict[Node, Expr], exprs: dict[Node, Expr]) -> list[str] | None:
        """The arrays the loop's vector-math sines and cosines read, when every one reads an array element.

        Those arguments can be range-checked before the loop; a sine of a
        value computed in the loop cannot, and keeps the full-range helper.
        """
        arrays: list[str] = []
        for node in loop.nodes:
            if node.op not in (Op.SIN, Op.COS) or not self.vector_math:
                continue
            x = node.inputs[0]
            whole = exprs.get(x)
            if x in local or whole is None or x.ndim != 1 or x.shape[0] == 1 or not whole.text.isidentifier():
                return None
            if whole.text not in arrays:
                arrays.append(whole.text)
        return arrays or None

    def fast_trig(self, match: re.Match[str]) -> str:
        """``sin_f64(`` -> ``sin_fast_f64(`` (helper names are reserved: no user name can match)."""
        from diffc.support.vmath import FAST_HELPERS

        function, dtype = match.group(1), match.group(2)
        return f"{self.require('vmath', FAST_HELPERS[(function, dtype)])}("  # type: ignore[attr-defined]

    def scalar_where(self, node: Node, c: Expr, a: Expr, b: Expr) -> Expr:
        return Expr(f"{a.text if a.prec > 10 else f'({a.text})'} if {c.text if c.prec > 10 else f'({c.text})'} "
                    f"else {b.text if b.prec >= 10 else f'({b.text})'}", 10)

    def scalar_broadcast(self, node: Node, x: Expr) -> Expr:
        return x

    def scalar_cast(self, node: Node, x: Expr) -> Expr:
        return Expr(f"{self.dtype(node.dtype)}({x.text})")  # type: ignore[attr-defined]

    def print_loop(self, loop: Loop, plan: Plan, exprs: dict[Node, Expr], body: list[str]) -> None:
        if not loop.nodes and not loop.reductions:  # every node sank into a later loop: nothing to print
            return
        namer = self.namer  # type: ignore[attr-defined]
        size = self.dim(loop.size)  # type: ignore[attr-defined]
        i = namer.fresh("i")
        before: list[str] = []
        inside: list[str] = []
        after: list[str] = []
        local: dict[Node, Expr] = {}
        # Row kernels run in blocks of rows: the dot products of a block, then the elementwise
        # chain over the block (which vectorizes across rows: exp, log... in SIMD), then the
        # row accumulations. The block's rows stay in cache between the first and last pass.
        blocked = any(n in plan.row_matrix for n in loop.nodes + loop.reductions)
        start = namer.fresh("start") if blocked else ""
        dots: list[str] = []       # first pass over a block: one dot product per row
        accumulate: list[str] = []  # last pass over a block: w_bar += X[i] * weight
        blocks: list[str] = []     # the block arrays carrying values from one pass to the next

        parallel = self.parallel_enabled and plan.parallel_candidate(loop)
        unsigned = parallel and not blocked  # the loop index of a chunk (see passes)

        def element(x: Node) -> Expr:
            if x in local:
                return local[x]
            whole = exprs[x]
            if x.ndim == 0:
                return whole
            index = "0" if x.shape[0] == 1 else i
            # an inlined expression (x @ A) is indexed as a whole: (x @ A)[i], never x @ A[i]
            return Expr(f"{whole.text if whole.prec >= ATOM else f'({whole.text})'}[{index}]")

        for node in loop.nodes:
            if node.op is Op.SLICE:  # x[1:] at i is x[i + 1]
                position = slice_position(node)
                assert position is not None
                local[node] = Expr(f"{exprs[node.inputs[0]].text}[{position(i, self.dim, unsigned)}]")  # type: ignore[attr-defined]
                if node in plan.materialized and node not in exprs:  # a statement uses it too: the view itself
                    exprs[node] = self.print_slice(node, exprs[node.inputs[0]])  # type: ignore[attr-defined]
                continue
            if node in plan.row_matrix:  # z = A @ w: the dot product of row i
                matrix, vector = exprs[plan.row_matrix[node]].text, exprs[node.inputs[1]].text
                var = self.fresh_var(node)  # type: ignore[attr-defined]
                j = namer.fresh("j")
                lines = [f"{var} = 0.0", f"for {j} in range({self.dim(node.inputs[1].shape[0])}):",  # type: ignore[attr-defined]
                         f"    {var} += {matrix}[{i}, {j}] * {vector}[{j}]"]
                expr = Expr(var)
                if blocked:
                    block = namer.fresh(f"{var}_block")
                    blocks.append(f"{block} = np.empty({BLOCK_ROWS}{self._dtype_arg(node)})")
                    dots += lines + [f"{block}[{i} - {start}] = {var}"]
                    expr = Expr(f"{block}[{i} - {start}]")
                else:
                    inside += lines
            else:
                args = [element(x) for x in node.inputs]
                expr = self.scalar_method(node.op)(node, *args)
                if node.inputs:
                    expr = Expr(expr.text, expr.prec, 1 + max(a.depth for a in args))
                stored = node in plan.materialized
                if stored or node in node.graph.names or self.uses.get(node, 0) > 1 \
                        or expr.depth > 3:  # type: ignore[attr-defined]
                    array = self.fresh_var(node) if stored else ""  # type: ignore[attr-defined]
                    var = namer.fresh(f"{array}_i") if stored else self.fresh_var(node)  # type: ignore[attr-defined]
                    inside.append(f"{var} = {expr.text}")
                    expr = Expr(var)
                    if stored:  # the array takes the value's name, the element is name_i
                        before.append(f"{array} = {self._empty(size, node)}")
                        inside.append(f"{array}[{i}] = {var}")
                        exprs[node] = Expr(array)
            local[node] = expr
            if node in plan.materialized and node not in exprs:  # a row dot product kept for later
                array = namer.fresh(f"{expr.text}_all")
                before.append(f"{array} = {self._empty(size, node)}")
                inside.append(f"{array}[{i}] = {expr.text}")
                exprs[node] = Expr(array)
        chunk = namer.fresh("chunk") if parallel else ""
        # (result, per-chunk parts, chunk accumulator or "" for rows, row width or "" for scalars, dtype argument)
        finals: list[tuple[str, str, str, str, str]] = []
        windows = self.print_windows(loop, plan, exprs, element, i, before, inside, after)
        for node in loop.reductions:
            if node in plan.scatters and node in windows:
                continue
            if node in plan.scatters:  # x_bar[i + 1] += g: into the array of the sum it belongs to
                root = node
                while root in plan.merged_into:
                    root = plan.merged_into[root]
                if root not in exprs:
                    array = self.fresh_var(root)  # type: ignore[attr-defined]
                    before.append(f"{array} = np.zeros({self.dim(root.shape[0])}{self._dtype_arg(root)})")  # type: ignore[attr-defined]
                    exprs[root] = Expr(array)
                if node.op is Op.UNSLICE:
                    position = slice_position(node)
                    assert position is not None
                    inside.append(f"{exprs[root].text}[{position(i, self.dim)}] += {element(node.inputs[0]).text}")  # type: ignore[attr-defined]
                exprs[node] = exprs[root]
                continue
            var = self.fresh_var(node)  # type: ignore[attr-defined]
            parts = namer.fresh(f"{var}_parts") if parallel else ""
            if node in plan.row_matrix:  # v_bar = A.T @ v: row i of A, weighted by v[i]
                matrix = exprs[plan.row_matrix[node]].text
                source = node.inputs[1] if node.inputs[0].ndim == 2 else node.inputs[0]
                width = self.dim(node.shape[0])  # type: ignore[attr-defined]
                j = namer.fresh("j")
                target = f"{parts}[{chunk}, {j}]" if parallel else f"{var}[{j}]"
                shape = f"(chunks, {width})" if parallel else width
                before.append(f"{parts if parallel else var} = np.zeros({shape}{self._dtype_arg(node)})")
                weight = element(source)  # the right operand of *: parenthesised unless it binds tighter
                weight_text = weight.text if weight.prec > 70 else f"({weight.text})"
                if blocked:
                    block = namer.fresh(f"{var}_weight")
                    blocks.append(f"{block} = np.empty({BLOCK_ROWS}{self._dtype_arg(node)})")
                    inside.append(f"{block}[{i} - {start}] = {weight.text}")
                    weight_text = f"{block}[{i} - {start}]"
                lines = [f"for {j} in range({width}):", f"    {target} += {matrix}[{i}, {j}] * {weight_text}"]
                if blocked:
                    accumulate += lines
                else:
                    inside += lines
                if parallel:  # no chunk variable: rows add into parts[chunk, :]
                    finals.append((var, parts, "", width, self._dtype_arg(node)))
                exprs[node] = Expr(var)
                continue
            # in parallel loops each chunk sums into its own variable, stored in parts[chunk]
            acc = namer.fresh(f"{var}_chunk") if parallel else var
            if parallel:
                before.append(f"{parts} = np.empty(chunks{self._dtype_arg(node)})")  # each chunk stores its own
                finals.append((var, parts, acc, "", ""))
            else:
                before.append(f"{var} = 0.0")
            if node.op is Op.MATMUL:  # u . v
                u, v = (element(x) for x in node.inputs)
                inside.append(f"{acc} += {u.text if u.prec >= 70 else f'({u.text})'} * "
                              f"{v.text if v.prec > 70 else f'({v.text})'}")
            else:
                inside.append(f"{acc} += {element(node.inputs[0]).text}")
            if node.op is Op.MEAN:
                after.append(f"{var} /= {size}")
            exprs[node] = Expr(var)
        trig_arrays = None if blocked else self.trig_arrays(loop, local, exprs)

        def passes(low: str, high: str) -> list[str]:
            """The loop over ``range(low, high)``, or its three passes per block of rows."""
            if not blocked:
                if low == "0":
                    lines = [f"for {i} in range({high}):"]
                else:  # chunk bounds as unsigned: x[i] needs no negative-index check, and the loop vectorizes
                    lines = [f"for {i} in range(np.uint64({low}), np.uint64({high})):"]
                lines += ["    " + line for line in inside]
                if not trig_arrays:
                    return lines
                # the same loop twice: sin and cos of |x| <= 2**20 (nearly always) need no Payne-Hanek step;
                # a chunk with a larger |x| (rare) calls libm, exact everywhere, instead of vectorizing
                check = " and ".join(f"{self.require('vmath', 'trig_fast_range')}({a}, {low}, {high})"  # type: ignore[attr-defined]
                                     for a in trig_arrays)
                fast = [FAST_TRIG.sub(self.fast_trig, line) for line in lines]
                libm = [FAST_TRIG.sub(r"np.\1(", line) for line in lines]
                return [f"if {check}:", *("    " + line for line in fast), "else:", *("    " + line for line in libm)]
            stop = namer.fresh("stop")
            lines = [f"for {start} in range({low}, {high}, {BLOCK_ROWS}):",
                     f"    {stop} = min({start} + {BLOCK_ROWS}, {high})"]
            for phase in (dots, inside, accumulate):
                if phase:
                    lines += [f"    for {i} in range({start}, {stop}):"] + ["        " + line for line in phase]
            return lines

        if not parallel:
            body += before + blocks + passes("0", size) + after
            return
        # Fixed chunks combined in chunk order: the same bits on every run. The chunk count is
        # Numba's thread pool size, a compile-time constant, not the threads available at the
        # call, so the result is the same whatever thread cap is set.
        body.append(f"chunks = numba.config.NUMBA_NUM_THREADS if {_times(size, work(loop, plan))} >= "
                    f"{PARALLEL_MIN_WORK} else 1")
        body += before
        body.append(f"for {chunk} in numba.prange(chunks):")
        body += [f"    {acc} = 0.0" for _, _, acc, _, _ in finals if acc]
        body += ["    " + line for line in blocks]
        body += ["    " + line for line in passes(f"{chunk} * {size} // chunks", f"({chunk} + 1) * {size} // chunks")]
        body += [f"    {parts}[{chunk}] = {acc}" for _, parts, acc, _, _ in finals if acc]
        # the parts added in chunk order by one plain loop: np.sum(parts, axis=0) adds them in the
        # same order, but costs Numba over a second to compile
        combine: list[str] = []
        for var, parts, acc, width, dtype in finals:
            if acc:
                body.append(f"{var} = 0.0")
                combine.append(f"    {var} += {parts}[{chunk}]")
            else:
                j = namer.fresh("j")
                body.append(f"{var} = np.zeros({width}{dtype})")
                combine += [f"    for {j} in range({width}):", f"        {var}[{j}] += {parts}[{chunk}, {j}]"]
        body += [f"for {chunk} in range(chunks):", *combine]
        body += after
        self.parallel = True

    def print_windows(self, loop: Loop, plan: Plan, exprs: dict[Node, Expr], element,  # type: ignore[no-untyped-def]
                      i: str, before: list[str], inside: list[str], after: list[str]) -> set[Node]:
        """Scatters at fixed offsets as a window of registers: each element written once.

        Rosenbrock's gradient adds ``a[i]`` at ``i`` and ``b[i]`` at ``i + 1``.
        Adding into memory (``x_bar[i + 1] += b``, then ``x_bar[i + 1] += a``
        in the next iteration) makes each iteration wait for the last one's
        store, and the loop cannot use vector instructions. Keeping the
        partial sum for ``i + 1`` in a variable (``next = b``, then
        ``x_bar[i] = next + a``) writes each element once, in order.
        Returns the scatter nodes printed here.
        """
        groups: dict[Node, list[Node]] = {}
        for node in loop.reductions:
            if node.op is Op.UNSLICE and node in plan.scatters:
                root = node
                while root in plan.merged_into:
                    root = plan.merged_into[root]
                groups.setdefault(root, []).append(node)
        done: set[Node] = set()
        namer = self.namer  # type: ignore[attr-defined]
        for root, parts in groups.items():
            offsets = [_fixed_offset(u) for u in parts]
            if any(o is None for o in offsets):
                continue
            low, high = min(offsets), max(offsets)  # type: ignore[type-var]
            width = high - low + 1
            size_out = self.dim(root.shape[0])  # type: ignore[attr-defined]
            array = self.fresh_var(root)  # type: ignore[attr-defined]
            exprs[root] = Expr(array)
            before.append(f"{array} = {self._empty(size_out, root)}")
            by_offset: dict[int, list[Expr]] = {}
            for u, o in zip(parts, offsets, strict=True):
                by_offset.setdefault(o - low, []).append(element(u.inputs[0]))  # type: ignore[operator]

            def total(j: int, start: str | None, by_offset: dict[int, list[Expr]] = by_offset) -> str:
                """``start + t1 + t2``; a later term keeps its own grouping: ``a + (b - c)``."""
                terms = ([Expr(start)] if start else []) + by_offset.get(j, [])
                texts = [t.text if k == 0 or t.prec > SUM else f"({t.text})" for k, t in enumerate(terms)]
                return " + ".join(texts) if texts else "0.0"

            carries = [namer.fresh(f"{array}_next") for _ in range(width - 1)]
            before += [f"{c} = 0.0" for c in carries]
            at = f"{i} + {low}" if low else i
            inside.append(f"{array}[{at}] = {total(0, carries[0] if carries else None)}")
            for j in range(width - 1):
                inside.append(f"{carries[j]} = {total(j + 1, carries[j + 1] if j + 1 < len(carries) else None)}")
            end = self.dim(loop.size)  # type: ignore[attr-defined]
            for j, c in enumerate(carries):  # the last positions, still in registers
                position = f"{end} + {low + j}" if low + j else end
                after += [f"if {position} < {size_out}:", f"    {array}[{position}] = {c}"]
            zero = namer.fresh("k")
            if low:  # positions before the first write
                after += [f"for {zero} in range(min({low}, {size_out})):", f"    {array}[{zero}] = 0.0"]
            after += [f"for {zero} in range({f'{end} + {high}' if high else end}, {size_out}):",
                      f"    {array}[{zero}] = 0.0"]
            done.update(parts)
            node = root
            done.add(node)
            for n in plan.scatters:
                r = n
                while r in plan.merged_into:
                    r = plan.merged_into[r]
                if r is root:
                    done.add(n)
                    exprs[n] = exprs[root]
        return done

    def _empty(self, size: str, node: Node) -> str:
        """A new vector the loop fills: float arrays by ``empty_f64``/``empty_f32`` (huge pages when large)."""
        helper = {"f64": "empty_f64", "f32": "empty_f32"}.get(node.dtype.value)
        if helper is None:
            return f"np.empty({size}{self._dtype_arg(node)})"
        return f"{self.require('numba_loops', helper)}({size})"  # type: ignore[attr-defined]

    def _dtype_arg(self, node: Node) -> str:
        from diffc.ir import DType

        return "" if node.dtype is DType.F64 else f", dtype={self.dtype(node.dtype)}"  # type: ignore[attr-defined]
