"""The loop planner of the Numba back end: which nodes fuse into which loop, in what order.

NumPy statements make one temporary array per operation and read each input
once per statement that uses it. The planner groups the nodes of one
iteration domain (a vector of length ``n``) into one loop, so that forward and
backward of an elementwise loss run in the same iteration and the reductions
that end the domain accumulate inside it. Row kernels: ``z = X @ w`` feeding a
row-wise loss is a dot product per row, and its adjoint ``X.T @ dz`` an
accumulation per row, so X is read once, a row at a time.

1. **Classify** each node by the tables :data:`LOOP_RULES` and
   :data:`REDUCTION_RULES`: a *loop node* computed per element of a domain, a
   *reduction* that ends a domain (``sum``, ``mean``, ``u @ v``, ``X.T @ v``,
   the scatter of a slice's adjoint), or a *statement*. Anything the tables do
   not name is a statement: the printer prints it as NumPy between loops,
   which is always correct.
2. **Schedule** in topological order: a loop node joins the earliest loop of
   its domain that comes after all it needs; a statement goes into the slot
   right after the last loop it needs (so scalars such as ``1 / m`` are
   hoisted above a loop instead of splitting it).
3. **Materialize**: loop nodes used outside their loop (or returned) are
   stored in arrays; the others stay loop-local scalars.

Positions are integers (loop index, statement slot), never searched for in a
list, so planning is linear in the number of nodes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from diffc.ir import ELEMENTWISE, LEAVES, Dim, Node, Op, users

# Above this much work per loop (elements times inner width) the loop runs on
# all cores in fixed chunks; below, the launch (about 3-4 us) costs more than it saves.
PARALLEL_MIN_WORK = 1 << 21
# Transcendental functions cost ~20-50 arithmetic ops each: loops that call them
# are compute-bound and parallelise from smaller sizes.
TRANSCENDENTAL = frozenset({Op.EXP, Op.LOG, Op.SIN, Op.COS, Op.TAN, Op.TANH, Op.SIGMOID, Op.SQRT, Op.POW})
TRANSCENDENTAL_WEIGHT = 16


@dataclass(eq=False)
class Loop:
    """One fused loop over ``range(size)``; ``index`` is its place among the loops."""

    size: Dim
    index: int
    nodes: list[Node] = field(default_factory=list)        # per-element values, in order
    reductions: list[Node] = field(default_factory=list)   # results complete after the loop


@dataclass(eq=False)
class Statement:
    """A node printed as a NumPy statement, before loop number ``slot``."""

    node: Node
    slot: int


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
    """Which nodes fuse into which loop, in what order (see the module docstring)."""

    def __init__(self, nodes: Sequence[Node], outputs: Sequence[Node], available: set[Node]) -> None:
        self.loops: list[Loop] = []
        self.slots: list[list[Statement]] = [[]]  # slots[s]: the statements printed before loop s
        self.home: dict[Node, Stage] = {}
        self.kind: dict[Node, str] = {}
        self.row_matrix: dict[Node, Node] = {}  # row ops: the matrix they read by rows
        self.outputs = set(outputs)
        self.available = available
        self.scatters: set[Node] = set()          # reductions that add into a zeroed array
        self.merged_into: dict[Node, Node] = {}   # a scatter summed into another: the sum's array is its array
        self.users = users(nodes)
        for node in nodes:
            if not self.given(node):
                self._place(node)
        self._sink(nodes)
        self.materialized = self._materialized(nodes)

    @property
    def stages(self) -> list[Stage]:
        """Statements and loops in printing order."""
        out: list[Stage] = []
        for loop, slot in zip(self.loops + [None], self.slots, strict=True):
            out += slot
            if loop is not None:
                out.append(loop)
        return out

    # -- classification ----------------------------------------------------------
    def loop_domain(self, node: Node) -> Dim | None:
        """The domain of a per-element node (by :data:`LOOP_RULES`), or ``None``."""
        d = _domain(node)
        if d is None:
            return None
        rule = LOOP_RULES.get(node.op, _elementwise_rule if node.op in ELEMENTWISE else None)
        return d if rule is not None and rule(self, node, d) else None

    def outside(self, x: Node, d: Dim) -> bool:
        """``x`` is not computed per element of domain ``d`` (a whole array, ready before)."""
        return self.kind.get(x) != "loop" or _domain(x) != d

    def is_loop(self, x: Node) -> bool:
        return self.kind.get(x) == "loop"

    def reduction_source(self, node: Node) -> Node | None:
        """The loop node a reduction consumes, when it ends that node's domain (by :data:`REDUCTION_RULES`)."""
        rule = REDUCTION_RULES.get(node.op)
        return rule(self, node) if rule is not None else None

    # -- scheduling ----------------------------------------------------------------
    def given(self, x: Node) -> bool:
        """``x`` is ready before any stage: an argument, a constant, a size, or printed already."""
        return x in self.available or x.op in LEAVES

    def loop_ready(self, x: Node, domain: Dim) -> int:
        """The first loop index at which a loop node of ``domain`` may use ``x``."""
        if self.given(x):
            return 0
        home = self.home[x]
        if isinstance(home, Statement):
            return home.slot
        return home.index if self.is_loop(x) and _domain(x) == domain else home.index + 1

    def slot_ready(self, x: Node) -> int:
        """The first statement slot at which a statement may use ``x``."""
        if self.given(x):
            return 0
        home = self.home[x]
        return home.slot if isinstance(home, Statement) else home.index + 1

    def _place(self, node: Node) -> None:
        if self._place_reduction(node):
            return
        domain = self.loop_domain(node)
        if domain is None:
            self.kind[node] = "statement"
            slot = max((self.slot_ready(x) for x in node.inputs), default=0)
            statement = Statement(node, slot)
            self.slots[slot].append(statement)
            self.home[node] = statement
            return
        self.kind[node] = "loop"
        earliest = max((self.loop_ready(x, domain) for x in node.inputs), default=0)
        loop = next((loop for loop in self.loops[earliest:] if loop.size == domain), None)
        if loop is None:
            loop = Loop(domain, len(self.loops))
            self.loops.append(loop)
            self.slots.append([])
        loop.nodes.append(node)
        self.home[node] = loop

    def _place_reduction(self, node: Node) -> bool:
        """Put a reduction into the loop of the value it reduces, when all else it needs is ready."""
        source = self.reduction_source(node)
        if source is None:
            return False
        loop = self.home[source]
        others = [x for x in node.inputs if x is not source and not self.is_loop(x) and x not in self.scatters]
        if isinstance(loop, Loop) and all(self.slot_ready(x) <= loop.index for x in others):
            self.kind[node] = "reduction"
            loop.reductions.append(node)
            self.home[node] = loop
            return True
        self.row_matrix.pop(node, None)
        self.scatters.discard(node)
        return False

    def _sink(self, nodes: Sequence[Node]) -> None:
        """Move a loop node into the later loop that holds all its users.

        Placement is greedy (the earliest loop that can compute a node), so a
        value needed only after a reduction (``0.5 * w`` added to ``X.T @ dz``)
        lands in an early loop and would be stored in an array; sinking it
        next to its users keeps it in a register.
        """
        for node in reversed(nodes):
            if not self.is_loop(node) or node in self.outputs or node in self.row_matrix:
                continue
            homes = {id(self.home[u]): self.home[u] for u in self.users[node] if u in self.home}
            if len(homes) != 1 or any(not self.is_loop(u) for u in self.users[node]):
                continue
            (target,) = homes.values()
            source = self.home[node]
            if target is source or not isinstance(target, Loop) or not isinstance(source, Loop) \
                    or target.size != source.size or target.index < source.index:
                continue
            source.nodes.remove(node)
            first_user = min(target.nodes.index(u) for u in self.users[node])
            target.nodes.insert(first_user, node)
            self.home[node] = target

    def _materialized(self, nodes: Sequence[Node]) -> set[Node]:
        """Loop nodes whose values are needed outside their loop: they get arrays."""
        out = {n for n in self.outputs if self.is_loop(n)}
        for node in nodes:
            for x in node.inputs:
                if self.is_loop(x) and self.home.get(node) is not self.home[x]:
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
        return any(stage.node.op in ELEMENTWISE and stage.node.ndim
                   and any(x.ndim and x.shape != stage.node.shape for x in stage.node.inputs)
                   for slot in self.slots for stage in slot)

    def has_loops(self) -> bool:
        return bool(self.loops)

    def scatter_root(self, node: Node) -> Node:
        """The sum of scatters whose array ``node`` adds into (``node`` itself when it is not merged)."""
        while node in self.merged_into:
            node = self.merged_into[node]
        return node


# -- the tables: what each op can be in a loop -------------------------------------------------------------------

def _elementwise_rule(plan: Plan, node: Node, d: Dim) -> bool:
    return all(x.ndim <= 1 for x in node.inputs)


def _broadcast_rule(plan: Plan, node: Node, d: Dim) -> bool:
    return node.inputs[0].ndim == 0


def _slice_rule(plan: Plan, node: Node, d: Dim) -> bool:
    """``x[1:]`` of a whole vector reads ``x[i + 1]``."""
    return node.inputs[0].ndim == 1 and plan.outside(node.inputs[0], d) and slice_position(node) is not None


def _row_dot_rule(plan: Plan, node: Node, d: Dim) -> bool:
    """``z = A @ w``: a dot product per row of a whole matrix A."""
    a, w = node.inputs
    if a.ndim == 2 and w.ndim == 1 and plan.outside(a, d) and plan.outside(w, d):
        plan.row_matrix[node] = a
        return True
    return False


LoopRule = Callable[[Plan, Node, Dim], bool]
# ops computed per element of a rank-1 domain beyond the elementwise ones, each with its condition
LOOP_RULES: dict[Op, LoopRule] = {Op.BROADCAST: _broadcast_rule, Op.SLICE: _slice_rule, Op.MATMUL: _row_dot_rule}


def _sum_rule(plan: Plan, node: Node) -> Node | None:
    x = node.inputs[0]
    return x if x.ndim == 1 and node.shape == () and plan.is_loop(x) else None


def _unslice_rule(plan: Plan, node: Node) -> Node | None:
    """The adjoint of ``x[1:]`` adds each element into its place of a zeroed array (``x_bar[i + 1] += g``)."""
    g = node.inputs[0]
    if node.ndim == 1 and g.ndim == 1 and plan.is_loop(g) and slice_position(node) is not None:
        plan.scatters.add(node)
        return g
    return None


def _scatter_sum_rule(plan: Plan, node: Node) -> Node | None:
    """The sum of two scatters of one loop (Rosenbrock's two slices) adds into one array."""
    a, b = node.inputs
    if all(x in plan.scatters and len(plan.users[x]) == 1 for x in node.inputs) and plan.home[a] is plan.home[b]:
        plan.scatters.add(node)
        plan.merged_into[a] = plan.merged_into[b] = node
        return a
    return None


def _matmul_rule(plan: Plan, node: Node) -> Node | None:
    """``u @ v`` of one loop, ``A.T @ v`` (rows of A weighted by v) and ``v @ A``."""
    a, b = node.inputs
    if a.ndim == 1 and b.ndim == 1 and plan.is_loop(a) and plan.is_loop(b) and plan.home[a] is plan.home[b]:
        return a
    matrix = _is_transposed_input(a)
    if matrix is not None and b.ndim == 1 and plan.is_loop(b) and plan.outside(matrix, b.shape[0]):
        plan.row_matrix[node] = matrix
        return b
    if a.ndim == 1 and b.ndim == 2 and plan.is_loop(a) and plan.outside(b, a.shape[0]):
        plan.row_matrix[node] = b
        return a
    return None


ReductionRule = Callable[[Plan, Node], "Node | None"]
# reductions that can end a loop's domain: the rule returns the loop node reduced, or None
REDUCTION_RULES: dict[Op, ReductionRule] = {Op.SUM: _sum_rule, Op.MEAN: _sum_rule, Op.UNSLICE: _unslice_rule,
                                            Op.ADD: _scatter_sum_rule, Op.MATMUL: _matmul_rule}


def slice_position(node: Node):  # type: ignore[no-untyped-def]
    """For a rank-1 ``x[start:stop:step]`` (or its adjoint), a printer of the position of element i.

    Returns ``None`` for what a loop does not read this way (negative steps
    with a start, integer indices, new axes). The position of element i
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


def fixed_offset(node: Node) -> int | None:
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
