"""The fused-loop printer of the Numba back end: a :class:`~diffc.codegen.loop_plan.Plan` as Python text.

Statements of the plan print as NumPy (the host printer's ``emit``); each
loop prints from small pieces, one per kind of loop member, chosen by a
table (:data:`NODE_PIECES`, :data:`REDUCTION_PIECES`) the way the adjoint
rules are one table:

- a per-element value is the op's own scalar printer applied to the
  elements of its operands (``exp_f64(x[i] - m)``);
- a slice reads at its position (``x[i + 1]``); a row dot product is an
  inner loop over a matrix row;
- a reduction accumulates (``total += e_i``); ``A.T @ v`` adds a weighted row
  (``w_bar[j] += X[i, j] * dz_i``); the scatter of a slice's adjoint adds into
  its place, or into a window of registers when its offsets are fixed.

Three rules keep every loop valid and linear:

1. An operand a loop reads whole (an array it indexes, a scalar it uses) is
   a *name* bound before the loop (:meth:`LoopPrinting.invariant`): a
   reduction, a matrix product or a mask is computed once, never per element,
   and ``(W * 0.7)[i, j]`` cannot lose its parentheses.
2. A block is printed only when it has lines: no empty ``for`` body.
3. Parallel chunks combine their partial results only when there are some.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from diffc.codegen.loop_plan import PARALLEL_MIN_WORK, Loop, Plan, Statement, fixed_offset, slice_position, work
from diffc.codegen.naming import LOOP_NAMES
from diffc.codegen.printer import PRODUCT, SUM, Expr
from diffc.ir import Node, Op

# Rows per block of a row kernel: 64 rows of 64 doubles stay in the first-level cache.
BLOCK_ROWS = 64
# ops printed in loops as calls of diffc's vectorizable helpers, by their name in vmath.FUNCTIONS
FAST_TRIG = re.compile(r"\b(sin|cos)_(f64|f32)\(")  # a call of a full-range sine or cosine helper
VECTOR_MATH = {Op.EXP: "exp", Op.EXPM1: "expm1", Op.LOG: "log", Op.LOG1P: "log1p", Op.SIN: "sin", Op.COS: "cos",
               Op.TANH: "tanh", Op.SIGMOID: "sigmoid", Op.SOFTPLUS: "softplus"}
# a whole operand a loop may read without a name of its own: a name, a number, a typed number
CHEAP_OPERAND = re.compile(r"-?[A-Za-z_][\w.]*|-?[\d.]+(e[-+]?\d+)?|np\.float(32|64)\(-?[\d.]+(e[-+]?\d+)?\)")


@dataclass(frozen=True)
class Final:
    """A reduction of a parallel loop: per-chunk parts combined, in chunk order, after the loop."""

    var: str      # the result
    parts: str    # the per-chunk array
    acc: str      # the chunk's scalar accumulator ("" for a row of width ``width``)
    width: str = ""
    dtype: str = ""


@dataclass
class LoopText:
    """The text of one loop while its pieces are printed: what goes before, in and after it."""

    loop: Loop
    plan: Plan
    exprs: dict[Node, Expr]
    i: str
    size: str
    blocked: bool       # a row kernel: three passes per block of rows
    parallel: bool
    start: str = ""     # the first row of a block
    chunk: str = ""     # the chunk index of a parallel loop
    chunks: str = ""    # the chunk count of a parallel loop (a fresh name: a user's may be "chunks")
    before: list[str] = field(default_factory=list)
    inside: list[str] = field(default_factory=list)
    after: list[str] = field(default_factory=list)
    dots: list[str] = field(default_factory=list)        # first pass over a block: one dot product per row
    accumulate: list[str] = field(default_factory=list)  # last pass over a block: w_bar += X[i] * weight
    blocks: list[str] = field(default_factory=list)      # block arrays carrying values from pass to pass
    local: dict[Node, Expr] = field(default_factory=dict)
    finals: list[Final] = field(default_factory=list)
    windows: set[Node] = field(default_factory=set)      # scatters printed as register windows

    @property
    def unsigned(self) -> bool:
        """The loop index of a parallel chunk is unsigned (see :meth:`LoopPrinting.passes`)."""
        return self.parallel and not self.blocked


def _times(size: str, factor: int) -> str:
    return f"{size} * {factor}" if size.isidentifier() else f"({size}) * {factor}"


class LoopPrinting:
    """Mixin for a printer: print a :class:`Plan`'s stages, fusing its loops.

    The host printer provides ``method``, ``emit``, ``fresh_var``, ``namer``,
    ``dim``, ``dtype``, ``uses``, ``program``, ``require``; loop bodies reuse
    its per-op methods on scalar operands, with the few ops whose array and
    scalar forms differ (``where``, ``broadcast``, ``cast``) printed by
    ``scalar_<op>``.
    """

    parallel_enabled = True
    vector_math = True
    parallel = False

    def fused_statements(self, nodes, exprs: dict[Node, Expr], body: list[str]) -> bool:  # type: ignore[no-untyped-def]
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

    # -- operands -------------------------------------------------------------------
    def invariant(self, t: LoopText, x: Node) -> Expr:
        """``x`` as the loop reads it whole: a name, bound before the loop unless it is one already.

        An inlined expression indexed per element would be computed per
        element (``np.sum(e)`` in the body is O(n^2)) and could bind wrongly
        (``W * 0.7[i, j]``); a name is computed once.
        """
        whole = t.exprs[x]
        if whole.text.isidentifier() or (x.ndim == 0 and CHEAP_OPERAND.fullmatch(whole.text)):
            return whole
        var = self.fresh_var(x)  # type: ignore[attr-defined]
        t.before.append(f"{var} = {whole.text}")
        t.exprs[x] = Expr(var)
        return t.exprs[x]

    def element(self, t: LoopText, x: Node) -> Expr:
        """Operand ``x`` at the current element: a loop-local value, a scalar, or ``array[i]``."""
        if x in t.local:
            return t.local[x]
        whole = self.invariant(t, x)
        if x.ndim == 0:
            return whole
        return Expr(f"{whole.text}[{'0' if x.shape[0] == 1 else t.i}]")

    # -- scalar forms of ops ----------------------------------------------------------
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

    def scalar_where(self, node: Node, c: Expr, a: Expr, b: Expr) -> Expr:
        return Expr(f"{a.text if a.prec > 10 else f'({a.text})'} if {c.text if c.prec > 10 else f'({c.text})'} "
                    f"else {b.text if b.prec >= 10 else f'({b.text})'}", 10)

    def scalar_broadcast(self, node: Node, x: Expr) -> Expr:
        return x

    def scalar_cast(self, node: Node, x: Expr) -> Expr:
        return Expr(f"{self.dtype(node.dtype)}({x.text})")  # type: ignore[attr-defined]

    # -- pieces: per-element values ----------------------------------------------------
    def piece_elementwise(self, t: LoopText, node: Node) -> None:
        """The op's scalar printer on its operands' elements; named when stored, shared or deep."""
        args = [self.element(t, x) for x in node.inputs]
        expr = self.scalar_method(node.op)(node, *args)
        notes = self.notes_of(node, args)  # type: ignore[attr-defined]
        if node.inputs:
            expr = Expr(expr.text, expr.prec, 1 + max(a.depth for a in args), notes)
        stored = node in t.plan.materialized
        if stored or node in node.graph.names or self.uses.get(node, 0) > 1 or expr.depth > 3:  # type: ignore[attr-defined]
            array = self.fresh_var(node) if stored else ""  # type: ignore[attr-defined]
            var = self.namer.fresh(f"{array}_i") if stored else self.fresh_var(node)  # type: ignore[attr-defined]
            t.inside += self.comment(notes) + [f"{var} = {expr.text}"]  # type: ignore[attr-defined]
            expr = Expr(var)
            if stored:  # the array takes the value's name, the element is name_i
                t.before.append(f"{array} = {self._empty(t.size, node)}")
                t.inside.append(f"{array}[{t.i}] = {var}")
                t.exprs[node] = Expr(array)
        t.local[node] = expr

    def piece_slice(self, t: LoopText, node: Node) -> None:
        """``x[1:]`` at i is ``x[i + 1]``; a statement that uses the slice gets the view itself."""
        position = slice_position(node)
        assert position is not None
        source = self.invariant(t, node.inputs[0])
        t.local[node] = Expr(f"{source.text}[{position(t.i, self.dim, t.unsigned)}]")  # type: ignore[attr-defined]
        if node in t.plan.materialized and node not in t.exprs:
            t.exprs[node] = self.print_slice(node, source)  # type: ignore[attr-defined]

    def piece_row_dot(self, t: LoopText, node: Node) -> None:
        """``z = A @ w`` at row i: an inner loop over the row (in a block's first pass when blocked)."""
        matrix = self.invariant(t, t.plan.row_matrix[node]).text
        vector = self.invariant(t, node.inputs[1]).text
        var = self.fresh_var(node)  # type: ignore[attr-defined]
        j = self.namer.fresh(LOOP_NAMES["column"])  # type: ignore[attr-defined]
        lines = [f"{var} = 0.0", f"for {j} in range({self.dim(node.inputs[1].shape[0])}):",  # type: ignore[attr-defined]
                 f"    {var} += {matrix}[{t.i}, {j}] * {vector}[{j}]"]
        expr = Expr(var)
        if t.blocked:
            block = self.namer.fresh(f"{var}_block")  # type: ignore[attr-defined]
            t.blocks.append(f"{block} = np.empty({BLOCK_ROWS}{self.dtype_arg(node)})")
            t.dots += lines + [f"{block}[{t.i} - {t.start}] = {var}"]
            expr = Expr(f"{block}[{t.i} - {t.start}]")
        else:
            t.inside += lines
        t.local[node] = expr
        if node in t.plan.materialized:  # a row dot product kept for later
            array = self.namer.fresh(f"{var}_all")  # type: ignore[attr-defined]
            t.before.append(f"{array} = {self._empty(t.size, node)}")
            t.inside.append(f"{array}[{t.i}] = {expr.text}")
            t.exprs[node] = Expr(array)

    # -- pieces: reductions ---------------------------------------------------------------
    def piece_sum(self, t: LoopText, node: Node) -> None:
        """``total += x_i`` (a mean divides once, after the loop)."""
        var, acc = self._accumulator(t, node)
        x = self.element(t, node.inputs[0])
        t.inside += self.comment(self.notes_of(node, [x])) + [f"{acc} += {x.text}"]  # type: ignore[attr-defined]
        if node.op is Op.MEAN:
            t.after.append(f"{var} /= {t.size}")

    def piece_matmul(self, t: LoopText, node: Node) -> None:
        """``u @ v`` of one loop accumulates a product; ``A.T @ v`` and ``v @ A`` accumulate rows."""
        if node in t.plan.row_matrix:
            self._row_accumulate(t, node)
            return
        var, acc = self._accumulator(t, node)
        u, v = (self.element(t, x) for x in node.inputs)
        t.inside += self.comment(self.notes_of(node, [u, v]))  # type: ignore[attr-defined]
        t.inside.append(f"{acc} += {self.wrap(u, PRODUCT)} * {self.wrap(v, PRODUCT + 1)}")  # type: ignore[attr-defined]

    def _accumulator(self, t: LoopText, node: Node) -> tuple[str, str]:
        """The result variable and what the loop adds into (a chunk's own variable when parallel)."""
        var = self.fresh_var(node)  # type: ignore[attr-defined]
        t.exprs[node] = Expr(var)
        if not t.parallel:
            t.before.append(f"{var} = 0.0")
            return var, var
        parts = self.namer.fresh(f"{var}_parts")  # type: ignore[attr-defined]
        acc = self.namer.fresh(f"{var}_chunk")  # type: ignore[attr-defined]
        t.before.append(f"{parts} = np.empty({t.chunks}{self.dtype_arg(node)})")  # each chunk stores its own
        t.finals.append(Final(var, parts, acc))
        return var, acc

    def _row_accumulate(self, t: LoopText, node: Node) -> None:
        """``v_bar = A.T @ v``: row i of A, weighted by v[i] (in a block's last pass when blocked)."""
        matrix = self.invariant(t, t.plan.row_matrix[node]).text
        source = node.inputs[1] if node.inputs[0].ndim == 2 else node.inputs[0]
        var = self.fresh_var(node)  # type: ignore[attr-defined]
        width = self.dim(node.shape[0])  # type: ignore[attr-defined]
        j = self.namer.fresh(LOOP_NAMES["column"])  # type: ignore[attr-defined]
        parts = self.namer.fresh(f"{var}_parts") if t.parallel else ""  # type: ignore[attr-defined]
        target = f"{parts}[{t.chunk}, {j}]" if t.parallel else f"{var}[{j}]"
        shape = f"({t.chunks}, {width})" if t.parallel else width
        t.before.append(f"{parts if t.parallel else var} = np.zeros({shape}{self.dtype_arg(node)})")
        weight = self.element(t, source)
        weight_text = self.wrap(weight, PRODUCT + 1)  # type: ignore[attr-defined]
        if t.blocked:
            block = self.namer.fresh(f"{var}_weight")  # type: ignore[attr-defined]
            t.blocks.append(f"{block} = np.empty({BLOCK_ROWS}{self.dtype_arg(node)})")
            t.inside.append(f"{block}[{t.i} - {t.start}] = {weight.text}")
            weight_text = f"{block}[{t.i} - {t.start}]"
        lines = self.comment(self.notes_of(node, [weight]))  # type: ignore[attr-defined]
        lines += [f"for {j} in range({width}):", f"    {target} += {matrix}[{t.i}, {j}] * {weight_text}"]
        (t.accumulate if t.blocked else t.inside).extend(lines)
        if t.parallel:  # no chunk variable: rows add into parts[chunk, :]
            t.finals.append(Final(var, parts, "", width, self.dtype_arg(node)))
        t.exprs[node] = Expr(var)

    def piece_scatter(self, t: LoopText, node: Node) -> None:
        """``x_bar[i + 1] += g``: into the array of the sum of scatters it belongs to."""
        root = t.plan.scatter_root(node)
        if node in t.windows:
            t.exprs[node] = t.exprs[root]
            return
        if root not in t.exprs:
            array = self.fresh_var(root)  # type: ignore[attr-defined]
            t.before.append(f"{array} = np.zeros({self.dim(root.shape[0])}{self.dtype_arg(root)})")  # type: ignore[attr-defined]
            t.exprs[root] = Expr(array)
        if node.op is Op.UNSLICE:
            position = slice_position(node)
            assert position is not None
            t.inside.append(f"{t.exprs[root].text}[{position(t.i, self.dim)}] += "  # type: ignore[attr-defined]
                            f"{self.element(t, node.inputs[0]).text}")
        t.exprs[node] = t.exprs[root]

    def print_windows(self, t: LoopText) -> None:
        """Scatters at fixed offsets as a window of registers: each element written once.

        Rosenbrock's gradient adds ``a[i]`` at ``i`` and ``b[i]`` at ``i + 1``.
        Adding into memory (``x_bar[i + 1] += b``, then ``x_bar[i + 1] += a``
        in the next iteration) makes each iteration wait for the last one's
        store, and the loop cannot use vector instructions. Keeping the
        partial sum for ``i + 1`` in a variable (``next = b``, then
        ``x_bar[i] = next + a``) writes each element once, in order.
        """
        groups: dict[Node, list[Node]] = {}
        for node in t.loop.reductions:
            if node.op is Op.UNSLICE and node in t.plan.scatters:
                groups.setdefault(t.plan.scatter_root(node), []).append(node)
        for root, parts in groups.items():
            offsets = [fixed_offset(u) for u in parts]
            if all(o is not None for o in offsets):
                self._window(t, root, parts, offsets)  # type: ignore[arg-type]
                t.windows.update(n for n in t.plan.scatters if t.plan.scatter_root(n) is root)

    def _window(self, t: LoopText, root: Node, parts: list[Node], offsets: list[int]) -> None:
        namer = self.namer  # type: ignore[attr-defined]
        low, high = min(offsets), max(offsets)
        size_out = self.dim(root.shape[0])  # type: ignore[attr-defined]
        array = self.fresh_var(root)  # type: ignore[attr-defined]
        t.exprs[root] = Expr(array)
        t.before.append(f"{array} = {self._empty(size_out, root)}")
        by_offset: dict[int, list[Expr]] = {}
        for u, o in zip(parts, offsets, strict=True):
            by_offset.setdefault(o - low, []).append(self.element(t, u.inputs[0]))

        def total(j: int, start: str | None) -> str:
            """``start + t1 + t2``; a later term keeps its own grouping: ``a + (b - c)``."""
            terms = ([Expr(start)] if start else []) + by_offset.get(j, [])
            texts = [e.text if k == 0 or e.prec > SUM else f"({e.text})" for k, e in enumerate(terms)]
            return " + ".join(texts) if texts else "0.0"

        carries = [namer.fresh(f"{array}_next") for _ in range(high - low)]
        t.before += [f"{c} = 0.0" for c in carries]
        at = f"{t.i} + {low}" if low else t.i
        t.inside.append(f"{array}[{at}] = {total(0, carries[0] if carries else None)}")
        for j in range(len(carries)):
            t.inside.append(f"{carries[j]} = {total(j + 1, carries[j + 1] if j + 1 < len(carries) else None)}")
        end = self.dim(t.loop.size)  # type: ignore[attr-defined]
        for j, c in enumerate(carries):  # the last positions, still in registers
            position = f"{end} + {low + j}" if low + j else end
            t.after += [f"if {position} < {size_out}:", f"    {array}[{position}] = {c}"]
        zero = namer.fresh(LOOP_NAMES["carry"])
        if low:  # positions before the first write
            t.after += [f"for {zero} in range(min({low}, {size_out})):", f"    {array}[{zero}] = 0.0"]
        t.after += [f"for {zero} in range({f'{end} + {high}' if high else end}, {size_out}):",
                    f"    {array}[{zero}] = 0.0"]

    # -- the loop as a whole ------------------------------------------------------------------
    def print_loop(self, loop: Loop, plan: Plan, exprs: dict[Node, Expr], body: list[str]) -> None:
        if not loop.nodes and not loop.reductions:  # every node sank into a later loop: nothing to print
            return
        namer = self.namer  # type: ignore[attr-defined]
        # Row kernels run in blocks of rows: the dot products of a block, then the elementwise
        # chain over the block (which vectorizes across rows: exp, log... in SIMD), then the
        # row accumulations. The block's rows stay in cache between the first and last pass.
        blocked = any(n in plan.row_matrix for n in loop.nodes + loop.reductions)
        size = self.dim(loop.size)  # type: ignore[attr-defined]
        # a loop over a fixed size too small for threads (the same test the parallel loop makes at run time)
        small = size.isdigit() and int(size) * work(loop, plan) < PARALLEL_MIN_WORK
        parallel = self.parallel_enabled and plan.parallel_candidate(loop) and not small
        index = namer.fresh(LOOP_NAMES["index"])
        t = LoopText(loop, plan, exprs, index, size, blocked, parallel)
        t.start = namer.fresh(LOOP_NAMES["start"]) if blocked else ""
        t.chunk = namer.fresh(LOOP_NAMES["chunk"]) if parallel else ""
        t.chunks = namer.fresh(LOOP_NAMES["chunks"]) if parallel else ""
        for node in loop.nodes:
            getattr(self, NODE_PIECES.get(node.op, "piece_elementwise"))(t, node)
        self.print_windows(t)
        for node in loop.reductions:
            getattr(self, REDUCTION_PIECES[node.op])(t, node)
        if not (t.inside or t.dots or t.accumulate):  # nothing per element (a slice used only whole)
            body += t.before + t.after
            return
        if parallel:
            self._assemble_parallel(t, body)
        else:
            body += t.before + t.blocks + self.passes(t, "0", t.size) + t.after

    def _assemble_parallel(self, t: LoopText, body: list[str]) -> None:
        """Fixed chunks combined in chunk order: the same bits on every run.

        The chunk count is Numba's thread pool size, a compile-time constant,
        not the threads available at the call, so the result is the same
        whatever thread cap is set.
        """
        chunk, chunks = t.chunk, t.chunks
        size = t.size if t.size.isidentifier() or t.size.isdigit() else f"({t.size})"  # chunk * (m + n) // chunks
        body.append(f"{chunks} = numba.config.NUMBA_NUM_THREADS if {_times(size, work(t.loop, t.plan))} >= "
                    f"{PARALLEL_MIN_WORK} else 1")
        body += t.before
        per_chunk = [f"{f.acc} = 0.0" for f in t.finals if f.acc] + t.blocks
        per_chunk += self.passes(t, f"{chunk} * {size} // {chunks}", f"({chunk} + 1) * {size} // {chunks}")
        per_chunk += [f"{f.parts}[{chunk}] = {f.acc}" for f in t.finals if f.acc]
        body += serial_twin(chunk, chunks, self.require("numba_threads", "pool_threads"), per_chunk)  # type: ignore[attr-defined]
        # the parts added in chunk order by one plain loop: np.sum(parts, axis=0) adds them in the
        # same order, but costs Numba over a second to compile
        combine: list[str] = []
        for f in t.finals:
            if f.acc:
                body.append(f"{f.var} = 0.0")
                combine.append(f"    {f.var} += {f.parts}[{chunk}]")
            else:
                j = self.namer.fresh(LOOP_NAMES["column"])  # type: ignore[attr-defined]
                body.append(f"{f.var} = np.zeros({f.width}{f.dtype})")
                combine += [f"    for {j} in range({f.width}):", f"        {f.var}[{j}] += {f.parts}[{chunk}, {j}]"]
        if combine:
            body += [f"for {chunk} in range({chunks}):", *combine]
        body += t.after
        self.parallel = True

    def passes(self, t: LoopText, low: str, high: str) -> list[str]:
        """The loop over ``range(low, high)``, or its three passes per block of rows."""
        i = t.i
        if t.blocked:
            stop = self.namer.fresh(LOOP_NAMES["stop"])  # type: ignore[attr-defined]
            lines = [f"for {t.start} in range({low}, {high}, {BLOCK_ROWS}):",
                     f"    {stop} = min({t.start} + {BLOCK_ROWS}, {high})"]
            for phase in (t.dots, t.inside, t.accumulate):
                if phase:
                    lines += [f"    for {i} in range({t.start}, {stop}):"] + ["        " + line for line in phase]
            return lines
        if low == "0":
            lines = [f"for {i} in range({high}):"]
        else:  # chunk bounds as unsigned: x[i] needs no negative-index check, and the loop vectorizes
            lines = [f"for {i} in range(np.uint64({low}), np.uint64({high})):"]
        lines += ["    " + line for line in t.inside]
        trig_arrays = self.trig_arrays(t)
        if not trig_arrays:
            return lines
        # the same loop twice: sin and cos of |x| <= 2**20 (nearly always) need no Payne-Hanek step;
        # a chunk with a larger |x| (rare) calls libm, exact everywhere, instead of vectorizing
        check = " and ".join(f"{self.require('vmath', 'trig_fast_range')}({a}, {low}, {high})"  # type: ignore[attr-defined]
                             for a in trig_arrays)
        fast = [FAST_TRIG.sub(self.fast_trig, line) for line in lines]
        libm = [FAST_TRIG.sub(r"np.\1(", line) for line in lines]
        return [f"if {check}:", *("    " + line for line in fast), "else:", *("    " + line for line in libm)]

    def trig_arrays(self, t: LoopText) -> list[str] | None:
        """The arrays the loop's vector-math sines and cosines read, when every one reads an array element.

        Those arguments can be range-checked before the loop; a sine of a
        value computed in the loop cannot, and keeps the full-range helper.
        """
        arrays: list[str] = []
        for node in t.loop.nodes:
            if node.op not in (Op.SIN, Op.COS) or not self.vector_math:
                continue
            x = node.inputs[0]
            whole = t.exprs.get(x)
            if x in t.local or whole is None or x.ndim != 1 or x.shape[0] == 1 or not whole.text.isidentifier():
                return None
            if whole.text not in arrays:
                arrays.append(whole.text)
        return arrays or None

    def fast_trig(self, match: re.Match[str]) -> str:
        """``sin_f64(`` -> ``sin_fast_f64(`` (helper names are reserved: no user name can match)."""
        from diffc.support.vmath import FAST_HELPERS

        function, dtype = match.group(1), match.group(2)
        return f"{self.require('vmath', FAST_HELPERS[(function, dtype)])}("  # type: ignore[attr-defined]

    def _empty(self, size: str, node: Node) -> str:
        """A new vector the loop fills: float arrays by ``empty_f64``/``empty_f32`` (huge pages when large)."""
        helper = {"f64": "empty_f64", "f32": "empty_f32"}.get(node.dtype.value)
        if helper is None:
            return f"np.empty({size}{self.dtype_arg(node)})"
        return f"{self.require('numba_loops', helper)}({size})"  # type: ignore[attr-defined]


# what each member of a loop prints as: per-element values by op (default: the op's scalar form) ...
NODE_PIECES: dict[Op, str] = {Op.SLICE: "piece_slice", Op.MATMUL: "piece_row_dot"}
# ... and the reductions that end the loop's domain (every op of loop_plan.REDUCTION_RULES)
REDUCTION_PIECES: dict[Op, str] = {Op.SUM: "piece_sum", Op.MEAN: "piece_sum", Op.MATMUL: "piece_matmul",
                                   Op.UNSLICE: "piece_scatter", Op.ADD: "piece_scatter"}


def serial_twin(chunk: str, chunks: str, threads: str, per_chunk: list[str]) -> list[str]:
    """The chunk loop twice: ``prange`` when there are chunks and threads to share them, else ``range``.

    A call that chose one chunk (a small input), or runs on one thread (a
    forked child, where GNU OpenMP would kill the process, or
    ``set_num_threads(1)``: see diffc/threads.py), never enters a parallel
    region: waking the thread pool costs milliseconds on a loaded machine.
    Both loops run the same chunks in the same order, so the bits agree.
    """
    inner = ["        " + line for line in per_chunk]
    return [f"if {chunks} > 1 and {threads}() > 1:", f"    for {chunk} in numba.prange({chunks}):", *inner,
            "else:", f"    for {chunk} in range({chunks}):", *inner]
