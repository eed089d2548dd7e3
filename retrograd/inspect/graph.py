"""The backward graph, drawn with its numbers: ``draw_graph(output)`` walks the graph from
``output.grad_fn`` to the leaves and writes it in Graphviz's DOT language.

What the drawing shows (``show`` picks the rows):

- One box per op: the op's output tensor, titled with the forward op (``Mul``; its node is
  ``<MulBackward>``), and one box per leaf (a parameter or an input that requires grad),
  titled with its name from ``params``. Arrows point the way the forward ran.
- Small tensors (at most ``max_values`` elements) show their values and gradients, large ones
  their shape and dtype, the bytes the op keeps for backward and the gradient's L2 norm.
- Each arrow is coloured by the norm of the gradient that flowed back along it, on a log
  scale from blue (the smallest in the drawing) to red (the largest), so vanishing and
  exploding paths stand out; the caption is the legend. Grey dashed: not known.
- Ops cluster by the module that made them (``node.module_path``); ``collapse_modules`` folds
  each top-level module (one box per Transformer block) so that a deep model stays readable.

What is known depends on what the graph still holds. Leaves keep ``.data`` and ``.grad``; the
output keeps its value; an intermediate tensor's value and gradient are gone unless it was
kept (``retain_grad()``, or named in ``params`` and retained), and backward frees what the ops
saved. For the full picture (every value, every gradient, the gradient along every edge, the
saved bytes), run the forward and the backward inside ``record_graph()``: it watches them
through the observer slot and keeps a copy of small arrays and the norm of large ones.

    >>> import retrograd as rg
    >>> a = rg.tensor(2.0, requires_grad=True)
    >>> b = rg.tensor(-3.0, requires_grad=True)
    >>> with rg.inspect.record_graph() as recording:
    ...     y = a * b
    ...     y.backward()
    >>> drawing = rg.inspect.draw_graph(y, params={"a": a, "b": b, "y": y}, recording=recording)
    >>> print(drawing.table())
    box  title    rows
    ---  -------  ----------------------------
    n0   y = Mul  data -6 | grad 1 | saved 8 B
    n1   a        data 2 | grad -3
    n2   b        data -3 | grad 2
    >>> drawing.render("graph.svg")  # doctest: +SKIP

Rendering (``render``, ``pipe``) needs Graphviz's ``dot`` program; the DOT source
(``drawing.source``) needs only the ``graphviz`` Python package (extras ``test`` and ``train``).
"""

import html
import os
import shutil
import weakref

import numpy as np

from retrograd import _checks
from retrograd.autograd.function import INPUT, OUTPUT, AccumulateGrad
from retrograd.autograd.observer import ObserverBlock
from retrograd.inspect._calls import saved_nbytes
from retrograd.inspect.render import format_bytes, format_count, text_table
from retrograd.tensor import Tensor
from retrograd.utils.serialization import atomic_write

__all__ = ["draw_graph", "record_graph", "GraphDrawing", "GraphRecording", "DotNotFoundError",
           "edge_colour"]

SHOW = ("data", "grad", "shape", "saved")

_BLUE, _RED = (44, 123, 182), (215, 25, 28)     # the smallest and the largest gradient norm
_UNKNOWN = "#9e9e9e"
_NONFINITE = "#000000"
_FILL = {"op": "#eeeeee", "leaf": "#d9f0d3", "output": "#fff2b3", "module": "#f3ead7"}
_LEGEND_TICKS = 5


class DotNotFoundError(FileNotFoundError, RuntimeError):
    """Graphviz's ``dot`` program is not installed (or not on PATH)."""


# ----------------------------------------------------------------------------- recording

class ArraySummary:
    """What a drawing keeps of one array: shape, dtype, L2 norm (in float64), and a copy of
    the values when there are at most ``max_values`` of them (else ``values`` is None)."""

    __slots__ = ("shape", "dtype", "norm", "values")

    def __init__(self, value, max_values):
        array = np.asarray(value._data if isinstance(value, Tensor) else value)
        self.shape, self.dtype = array.shape, array.dtype
        flat = array.reshape(-1).astype(np.float64)
        self.norm = float(np.sqrt(np.dot(flat, flat)))
        self.values = array.copy() if array.size <= max_values else None


class GraphRecording(ObserverBlock):
    """Watches ops (made by ``record_graph()``): for every node recorded inside the block, the
    summary of each output, the bytes saved for backward, and, for every backward pass run
    inside the block, the gradient of each output and the norm of the gradient along each
    input edge (the last pass wins). Nodes are held weakly: recording keeps no graph alive."""

    def __init__(self, max_values=16):
        self.max_values = max_values
        self.outputs = weakref.WeakKeyDictionary()     # node -> [ArraySummary per output]
        self.saved = weakref.WeakKeyDictionary()       # node -> bytes kept for backward
        self.grads = weakref.WeakKeyDictionary()       # node -> [ArraySummary or None]
        self.edge_norms = weakref.WeakKeyDictionary()  # node -> [norm or None per input]

    def after_forward(self, op, node, inputs, outputs, module_path):
        if node is None:
            return
        outs = outputs if type(outputs) is tuple else (outputs,)
        self.outputs[node] = [ArraySummary(o, self.max_values) for o in outs]
        self.saved[node] = saved_nbytes(node)

    def before_backward(self, node, grad_outputs):
        self.grads[node] = [ArraySummary(g, self.max_values) if g is not None else None
                            for g in grad_outputs]

    def after_backward(self, node, grad_outputs, grad_inputs):
        self.edge_norms[node] = [ArraySummary(g, 0).norm if g is not None else None
                                 for g in grad_inputs]


def record_graph(max_values=16):
    """Context manager: record the values and gradients of the ops run inside the block, for
    ``draw_graph(..., recording=...)``. Run the backward inside the block too.

    Example:
        >>> import retrograd as rg
        >>> x = rg.tensor([1.0, 2.0], requires_grad=True)
        >>> with rg.inspect.record_graph() as recording:
        ...     y = (x * x).sum()
        ...     y.backward()
        >>> [s.values.tolist() for s in recording.grads[y.grad_fn.next_functions[0][0]]]
        [[1.0, 1.0]]
    """
    return GraphRecording(max_values)


# ----------------------------------------------------------------------------- what is known

class _Slot:
    """One tensor of the drawing: an op's output ``(node, k)`` or a leaf ``(AccumulateGrad,
    0)``, with what is known of it (None where unknown)."""

    __slots__ = ("name", "shape", "dtype", "values", "grad", "module")

    def __init__(self):
        self.name = self.shape = self.dtype = self.values = self.grad = self.module = None


class _Facts:
    """Everything the drawing knows of one graph, from the recording first, then from the
    graph itself (leaves, retained and named tensors, saved values not yet freed)."""

    def __init__(self, output, names, recording, max_values):
        self.output, self.names, self.recording = output, names, recording
        self.max_values = max_values
        self.nodes, self.edges, self.consumers = _walk(output.grad_fn)

    def recorded(self, table, node):
        return getattr(self.recording, table).get(node) if self.recording is not None else None

    def slot(self, node, k):
        if type(node) is AccumulateGrad:
            return self._leaf_slot(node)
        slot, tensor = _Slot(), self._live_tensor(node, k)
        slot.name = self.names.of_output(node, k)
        slot.module = node.module_path or None
        summaries = self.recorded("outputs", node)
        array = tensor._data if tensor is not None else self._saved_array(node, k)
        if summaries is not None:
            known = summaries[k]
            slot.shape, slot.dtype, slot.values = known.shape, known.dtype, known.values
        elif array is not None:
            slot.shape, slot.dtype = array.shape, array.dtype
            slot.values = array.copy() if array.size <= self.max_values else None
        else:
            slot.shape, slot.dtype = self._meta(node, k)
        grads = self.recorded("grads", node)
        if grads is not None:
            slot.grad = grads[k]
        elif tensor is not None and tensor.grad is not None:
            slot.grad = ArraySummary(tensor.grad, self.max_values)
        return slot

    def _leaf_slot(self, node):
        slot, tensor = _Slot(), node.variable
        slot.name = self.names.of_leaf(tensor)
        slot.shape, slot.dtype = tensor._data.shape, tensor._data.dtype
        if tensor._data.size <= self.max_values:
            slot.values = tensor._data.copy()
        recorded = self.recorded("grads", node)
        if tensor.grad is not None:   # the accumulated .grad, as the user reads it
            slot.grad = ArraySummary(tensor.grad, self.max_values)
        elif recorded is not None:
            slot.grad = recorded[0]
        if slot.name is not None and "." in slot.name:   # "blocks.0.attn.qkv.weight"
            slot.module = slot.name.rsplit(".", 1)[0]
        else:
            paths = {parent.module_path for parent, _ in self.consumers.get((node, 0), ())}
            slot.module = paths.pop() if len(paths) == 1 else None
        return slot

    def _live_tensor(self, node, k):
        """A Tensor of output k still reachable: named in params, retained, or the output."""
        tensor = self.names.tensor_of(node, k)
        retained = (node._retained or {}).get(k)
        if tensor is None and retained is not None:
            tensor = retained()
            tensor = tensor if tensor is not None and tensor.grad_fn is node else None
        if tensor is None and self.output.grad_fn is node and self.output._output_nr == k:
            tensor = self.output
        return tensor

    def _saved_array(self, node, k):
        """Output k's value if the graph still keeps it for backward (before backward frees
        it): saved as the node's output, or as an input of a node that consumes it."""
        for saved in getattr(node, "_saved", None) or ():
            if saved is not None and saved.kind == OUTPUT and saved.position == k:
                return saved.value
        for parent, _ in self.consumers.get((node, k), ()):
            for saved in getattr(parent, "_saved", None) or ():
                if saved is not None and saved.kind == INPUT and saved.value.grad_fn is node \
                        and saved.value._output_nr == k:
                    return saved.value._data
        return None

    def _meta(self, node, k):
        """(shape, dtype) of output k from the graph's metadata, or (None, None)."""
        meta = getattr(node, "_output_meta", None)
        if meta is not None:
            return meta[k][0], meta[k][1]
        for parent, i in self.consumers.get((node, k), ()):
            shape, dtype = parent._input_meta[i]
            return shape, dtype
        return None, None

    def saved_bytes(self, node):
        recorded = self.recorded("saved", node)
        if recorded is not None:
            return recorded
        if type(node) is AccumulateGrad or getattr(node, "_freed", False):
            return None
        return saved_nbytes(node)

    def edge_norm(self, parent, i, child_slot, child, k):
        """The norm of the gradient that flowed from ``parent`` to its input ``i``."""
        norms = self.recorded("edge_norms", parent)
        if norms is not None:
            return norms[i]
        if len(self.consumers.get((child, k), ())) == 1 and child_slot.grad is not None:
            return child_slot.grad.norm   # the only way out of the child: the same gradient
        return None


def _walk(root):
    """Nodes (discovery order from the root), edges (parent, i, child, k) and the consumers
    of each (child, k): a list of (parent, i). Iterative: deep graphs have no recursion."""
    nodes, edges, consumers = [], [], {}
    seen, stack = {root}, [root]
    while stack:
        node = stack.pop()
        nodes.append(node)
        found = []
        for i, edge in enumerate(node._edges):
            if edge is None:
                continue
            child, k = edge
            edges.append((node, i, child, k))
            consumers.setdefault((child, k), []).append((node, i))
            if child not in seen:
                seen.add(child)
                found.append(child)
        stack.extend(reversed(found))   # first inputs first: the drawing reads in order
    return nodes, edges, consumers


class _Names:
    """Names from ``params``: leaves by identity, non-leaf tensors by (node, output_nr)."""

    def __init__(self, params):
        self.leaves, self.outputs = {}, {}
        for name, tensor in _named(params):
            if tensor.grad_fn is None:
                self.leaves[id(tensor)] = (name, tensor)
            else:
                self.outputs[(tensor.grad_fn, tensor._output_nr)] = (name, tensor)

    def of_leaf(self, tensor):
        entry = self.leaves.get(id(tensor))
        return entry[0] if entry is not None and entry[1] is tensor else None

    def of_output(self, node, k):
        entry = self.outputs.get((node, k))
        return entry[0] if entry is not None else None

    def tensor_of(self, node, k):
        entry = self.outputs.get((node, k))
        return entry[1] if entry is not None else None


def _named(params):
    """(name, Tensor) pairs of ``params``: a dict, pairs (model.named_parameters()), or a
    list of Tensors (named by position)."""
    if params is None:
        return []
    items = list(params.items()) if isinstance(params, dict) else list(params)
    pairs = []
    for position, item in enumerate(items):
        if isinstance(item, Tensor):
            item = (f"params[{position}]", item)
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], Tensor)):
            raise TypeError(f"draw_graph: params must map names to Tensors (a dict, or pairs "
                            f"like model.named_parameters()), or list Tensors; entry "
                            f"{position} is {type(item).__name__}")
        pairs.append((str(item[0]), item[1]))
    return pairs


# ----------------------------------------------------------------------------- boxes and lines

class _Box:
    """One box of the drawing: an op, a leaf or a folded module."""

    __slots__ = ("id", "kind", "title", "rows", "cluster", "tooltip", "is_output")

    def __init__(self, box_id, kind, title, rows, cluster, tooltip="", is_output=False):
        self.id, self.kind, self.title, self.rows = box_id, kind, title, rows
        self.cluster, self.tooltip, self.is_output = cluster, tooltip, is_output


def _units(path):
    """A module path in units of folding: an index joins the name of its container
    ("blocks.0.attn" -> ["blocks.0", "attn"]), so that folding at depth 1 gives one box per
    Transformer block, not one for the whole ModuleList."""
    units = []
    for part in path.split(".") if path else ():
        if part.isdigit() and units and not units[-1].split(".")[0].isdigit():
            units[-1] += "." + part
        else:
            units.append(part)
    return units


def _cluster_of(module, depth):
    """The cluster path of a box made in ``module``: folded at ``depth`` units (depth 0: the
    innermost module itself)."""
    units = _units(module)
    if not units:
        return None
    return ".".join(units[:depth] if depth else units)


def _op_title(node):
    name = node.name()
    return name[:-len("Backward")] if name.endswith("Backward") and name != "Backward" else name


def _num(x):
    return f"{x:.4g}"


def _values_text(values):
    if values.ndim == 0:
        return _num(values.item()) if values.dtype.kind in "fc" else str(values.item())
    return np.array2string(values, separator=", ", max_line_width=48,
                           formatter={"float_kind": _num})


def _slot_rows(slot, show, prefix=""):
    """The text rows of one tensor: values when small (they show the shape too),
    shape/dtype/|grad| when large."""
    rows = []
    small = slot.values is not None
    if small and "data" in show:
        rows.append(f"{prefix}data {_values_text(slot.values)}")
    if "shape" in show and slot.shape is not None and not (small and "data" in show):
        rows.append(f"{prefix}{tuple(slot.shape)} {slot.dtype}")
    if "grad" in show and slot.grad is not None:
        if slot.grad.values is not None:
            rows.append(f"{prefix}grad {_values_text(slot.grad.values)}")
        else:
            rows.append(f"{prefix}|grad| {slot.grad.norm:.3g}")
    return rows


def _boxes_and_lines(facts, show, depth, fold):
    """Every box and every line (src, dst, norm) before folding; with the slots of each box."""
    boxes, slots, ids = [], {}, {}
    for node in facts.nodes:
        ids[node] = f"n{len(ids)}"
        n_out = len(getattr(node, "_output_meta", None) or (None,))
        node_slots = [facts.slot(node, k) for k in range(n_out)]
        slots[node] = node_slots
        boxes.append(_box(facts, node, ids[node], node_slots, show, depth, fold))
    lines = []
    for parent, i, child, k in facts.edges:
        norm = facts.edge_norm(parent, i, slots[child][k], child, k)
        lines.append((ids[child], ids[parent], norm, f"{_title(child, slots[child][k])} -> "
                      f"{_op_title(parent)} (input {i})"))
    return boxes, slots, lines


def _title(node, slot):
    if type(node) is AccumulateGrad:
        return slot.name if slot.name is not None else "leaf"
    op = _op_title(node)
    return f"{slot.name} = {op}" if slot.name is not None else op


def _box(facts, node, box_id, node_slots, show, depth, fold):
    leaf = type(node) is AccumulateGrad
    rows = []
    for k, slot in enumerate(node_slots):
        rows += _slot_rows(slot, show, f"[{k}] " if len(node_slots) > 1 else "")
    saved = None if leaf else facts.saved_bytes(node)
    if "saved" in show and saved:
        rows.append(f"saved {format_bytes(saved)}")
    module = node_slots[0].module
    cluster = _cluster_of(module, depth if fold else 0) if module is not None else None
    tooltip = node.name() + (f" in {module}" if module else "")
    return _Box(box_id, "leaf" if leaf else "op", _title(node, node_slots[0]), rows, cluster,
                tooltip, node is facts.output.grad_fn)


# ----------------------------------------------------------------------------- folding

def _fold(facts, boxes, slots, lines, show):
    """Replace the boxes of each folded module by one box that sums them up; lines inside a
    module vanish, parallel lines merge (the largest norm colours them)."""
    members, by_id = {}, {}
    for node, box in zip(facts.nodes, boxes):
        if box.cluster is not None:
            members.setdefault(box.cluster, []).append((node, box))
    kept = [box for box in boxes if box.cluster is None]
    for n, (path, group) in enumerate(members.items()):
        module_box = _module_box(f"m{n}", path, group, facts, slots, show)
        kept.append(module_box)
        for _, box in group:
            by_id[box.id] = module_box.id
    merged = {}
    for src, dst, norm, tip in lines:
        src, dst = by_id.get(src, src), by_id.get(dst, dst)
        if src != dst:
            merged.setdefault((src, dst), []).append((norm, tip))
    return kept, [(src, dst, _largest(entry), "; ".join(t for _, t in entry))
                  for (src, dst), entry in merged.items()]


def _largest(entries):
    norms = [n for n, _ in entries]
    if any(n is None for n in norms):
        return None
    return max(norms, key=lambda n: n if np.isfinite(n) else np.inf)


def _module_box(box_id, path, group, facts, slots, show):
    ops = [node for node, box in group if box.kind != "leaf"]
    leaves = [slots[node][0] for node, box in group if box.kind == "leaf"]
    rows = [_count(len(ops), "op") + ", " + _count(len(leaves), "param")
            + (f" ({format_count(sum(_numel(s.shape) for s in leaves))} values)"
               if leaves else "")]
    rows += [f"out {tuple(s.shape)} {s.dtype}" for s in _outputs_leaving(group, facts, slots)
             if "shape" in show and s.shape is not None]
    saved = [facts.saved_bytes(node) for node in ops]
    if "saved" in show and all(b is not None for b in saved) and sum(saved) > 0:
        rows.append(f"saved {format_bytes(sum(saved))}")
    grads = [s.grad.norm for s in leaves if s.grad is not None]
    if "grad" in show and grads:
        rows.append(f"|grad| of params {float(np.sqrt(np.sum(np.square(grads)))):.3g}")
    return _Box(box_id, "module", f"{path} ({_module_type(ops, path)})", rows, path,
                f"{path}: {_count(len(ops), 'op')} folded (collapse_modules)",
                any(box.is_output for _, box in group))


def _count(n, noun):
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _numel(shape):
    return int(np.prod(shape)) if shape is not None else 0


def _outputs_leaving(group, facts, slots):
    """Slots of the module's ops used outside it (or the drawing's output), at most two."""
    inside = {node for node, _ in group}
    found = []
    for node, box in group:
        if box.kind == "leaf":
            continue
        for k, slot in enumerate(slots[node]):
            users = facts.consumers.get((node, k), ())
            if node is facts.output.grad_fn or any(p not in inside for p, _ in users):
                found.append(slot)
    return found[:2]


def _module_type(ops, path):
    """The class name of the module at ``path``, from the scopes the ops were made in."""
    for node in ops:
        scope = getattr(node, "_module_scope", None)
        while scope is not None:
            if scope.path == path:
                return type(scope.module).__name__
            scope = scope.parent
    return "module"


# ----------------------------------------------------------------------------- colours

def edge_colour(norm, low, high):
    """The colour (#rrggbb) of a gradient norm on the log scale from ``low`` (blue) to
    ``high`` (red); black when not finite, grey when None (not known). Redness (red minus
    blue) grows with the norm.

    Example:
        >>> edge_colour(1e-6, 1e-6, 1.0), edge_colour(1e-3, 1e-6, 1.0), edge_colour(1.0, 1e-6, 1.0)
        ('#2c7bb6', '#824a69', '#d7191c')
    """
    if norm is None:
        return _UNKNOWN
    if not np.isfinite(norm):
        return _NONFINITE
    return _mix(_position(norm, low, high))


def _position(norm, low, high):
    """Where ``norm`` sits between low and high on a log scale, in [0, 1]."""
    if high <= low:
        return 0.5
    lo, hi = np.log10(low), np.log10(high)
    value = np.log10(norm) if norm > 0 else lo
    return float(np.clip((value - lo) / (hi - lo), 0.0, 1.0))


def _mix(t):
    rgb = [round(b + (r - b) * t) for b, r in zip(_BLUE, _RED)]
    return "#" + "".join(f"{c:02x}" for c in rgb)


def _norm_range(lines, norm_range):
    if norm_range is not None:
        low, high = (float(v) for v in norm_range)
        if not 0 < low <= high:
            raise ValueError(f"draw_graph: norm_range must be (low, high) with 0 < low <= "
                             f"high, got {norm_range}")
        return low, high
    norms = [n for _, _, n, _ in lines if n is not None and np.isfinite(n) and n > 0]
    return (min(norms), max(norms)) if norms else None


def _line_attrs(norm, span, tip):
    if norm is None:
        return dict(color=_UNKNOWN, style="dashed", tooltip=tip + "; |grad| not known")
    if not np.isfinite(norm):
        return dict(color=_NONFINITE, penwidth="3", label=f" {norm}", fontcolor=_NONFINITE,
                    tooltip=tip + f"; |grad| = {norm}")
    t = _position(norm, *span) if span is not None else 0.5
    return dict(color=_mix(t), penwidth=f"{1.0 + 2.5 * t:.2f}", label=f" {norm:.2g}",
                fontcolor=_mix(t), tooltip=tip + f"; |grad| = {norm:.4g}")


# ----------------------------------------------------------------------------- DOT

def _graphviz():
    try:
        import graphviz
    except ImportError:
        raise ImportError("draw_graph needs the graphviz Python package, which writes the DOT "
                          "source: pip install graphviz (it comes with retrograd's 'train' and "
                          "'test' extras: pip install 'retrograd[train]')") from None
    return graphviz


def _esc(text):
    return html.escape(text).replace("\n", '<br align="left"/>')


def _label(box):
    fill = _FILL["output" if box.is_output else box.kind]
    cells = [f'<tr><td bgcolor="{fill}"><b>{_esc(box.title)}</b></td></tr>']
    cells += [f'<tr><td align="left" balign="left">{_esc(row)}</td></tr>' for row in box.rows]
    return ('<<table border="0" cellborder="1" cellspacing="0" cellpadding="3">'
            + "".join(cells) + "</table>>")


def _clusters(graphviz, boxes):
    """One subgraph per module path, nested like the modules: built deepest first, since a
    subgraph is copied into its parent when added. A folded module's box is titled with its
    path already, so its cluster is a frame without a label."""
    folded = {box.cluster for box in boxes if box.kind == "module"}
    paths = set()
    for box in boxes:
        units = _units(box.cluster) if box.cluster is not None else []
        paths.update(".".join(units[:d]) for d in range(1, len(units) + 1))
    graphs = {}
    for path in sorted(paths, key=lambda p: (len(_units(p)), p)):
        graphs[path] = graphviz.Digraph(name=f"cluster_{path}")
        graphs[path].attr(label="" if path in folded else path, style="rounded,dashed",
                          color="#999999", fontcolor="#555555", fontsize="9")
    return graphs


def _dot(boxes, lines, span, rankdir, caption):
    graphviz = _graphviz()
    dot = graphviz.Digraph("retrograd")
    dot.attr(rankdir=rankdir, fontname="Helvetica", fontsize="10", labelloc="b",
             nodesep="0.25", ranksep="0.35", label=caption)
    dot.attr("node", shape="plain", fontname="Helvetica", fontsize="10")
    dot.attr("edge", fontname="Helvetica", fontsize="8", arrowsize="0.7")
    clusters = _clusters(graphviz, boxes)
    for box in boxes:
        target = clusters[box.cluster] if box.cluster is not None else dot
        target.node(box.id, label=_label(box), tooltip=box.tooltip)
    for path in sorted(clusters, key=lambda p: -len(_units(p))):
        units = _units(path)
        parent = clusters[".".join(units[:-1])] if len(units) > 1 else dot
        parent.subgraph(clusters[path])
    for src, dst, norm, tip in lines:
        dot.edge(src, dst, **_line_attrs(norm, span, tip))
    return dot


def _caption(span, notes):
    """The legend: swatches of the colour scale at evenly spaced norms, then the notes."""
    if span is None:
        cells = ["<td>gradient along each edge: not known (grey dashed)</td>"]
    else:
        low, high = span
        ticks = np.geomspace(low, high, _LEGEND_TICKS) if high > low else [low]
        cells = ["<td>edge colour: |gradient| along the edge, log scale</td>"]
        cells += [f'<td bgcolor="{_mix(_position(t, low, high))}"><font color="white">'
                  f" {t:.1e} </font></td>" for t in ticks]
        cells.append("<td>grey dashed: not known</td>")
    scale = '<table border="0" cellspacing="2" cellpadding="2"><tr>' + "".join(cells)
    rows = [f"<tr><td>{scale}</tr></table></td></tr>"]
    rows += [f'<tr><td align="left">{_esc(n)}</td></tr>' for n in notes]
    return '<<table border="0" cellspacing="0" cellpadding="0">' + "".join(rows) + "</table>>"


# ----------------------------------------------------------------------------- the drawing

class GraphDrawing:
    """A drawn graph: ``source`` (DOT), ``digraph`` (the graphviz.Digraph, to restyle),
    ``boxes`` and ``lines`` (what was drawn), ``render(path)`` and ``pipe(format)``."""

    def __init__(self, digraph, boxes, lines):
        self.digraph, self.boxes, self.lines = digraph, boxes, lines

    @property
    def source(self):
        return self.digraph.source

    def table(self):
        """The boxes as a text table: id, title, rows (``|``-separated)."""
        return text_table([[b.id, b.title, " | ".join(b.rows)] for b in self.boxes],
                          ["box", "title", "rows"], left=3)

    def pipe(self, format="svg"):
        """The drawing rendered by Graphviz's ``dot`` as bytes (svg, png, pdf, ...)."""
        if format == "dot":
            return self.source.encode("utf-8")
        graphviz = _graphviz()
        _require_dot()
        try:
            return graphviz.Source(self.source).pipe(format=format)
        except graphviz.ExecutableNotFound:
            raise DotNotFoundError(_NO_DOT) from None

    def render(self, path, format=None):
        """Write the drawing to ``path`` (format from ``format``, else the file's suffix, else
        svg; "dot" writes the source and needs no Graphviz); returns ``path``."""
        if format is None:
            suffix = os.path.splitext(os.fspath(path))[1].lstrip(".").lower()
            format = {"gv": "dot", "": "svg"}.get(suffix, suffix)
        data = self.pipe(format)
        atomic_write(path, lambda f: f.write(data), owner="draw_graph")
        return path

    def _repr_svg_(self):
        return self.pipe("svg").decode("utf-8") if shutil.which("dot") else None

    def __repr__(self):
        return f"<GraphDrawing: {len(self.boxes)} boxes, {len(self.lines)} edges>"


_NO_DOT = ("draw_graph: rendering needs Graphviz's `dot` program, which is not on PATH. Install "
           "Graphviz (Debian/Ubuntu: apt-get install graphviz; macOS: brew install graphviz; "
           "conda install graphviz); the DOT source (drawing.source) needs no `dot`.")


def _require_dot():
    if shutil.which("dot") is None:
        raise DotNotFoundError(_NO_DOT)


def draw_graph(output, params=None, show=SHOW, collapse_modules=True, *, recording=None,
               max_values=16, norm_range=None, rankdir="TB"):
    """Draw the backward graph of ``output`` with its numbers; returns a GraphDrawing.

    Args:
        output: a Tensor made by ops that require grad (it has a grad_fn).
        params: names for tensors: a dict name -> Tensor or pairs (``model.named_parameters()``)
            for parameters and leaves, and optionally intermediate tensors (their box is then
            titled ``name = Op``); or a list of Tensors, named ``params[i]``.
        show: the rows to show, any of "data", "grad", "shape", "saved".
        collapse_modules: fold each module at this depth into one box (True: each top-level
            child, a container's items counted as children: one box per ``blocks.i``);
            False shows every op, clustered by module.
        recording: a GraphRecording (``record_graph()``) of the forward and backward, for the
            values and gradients of intermediate tensors and the gradient along every edge.
        max_values: tensors with at most this many elements show their values.
        norm_range: (low, high) gradient norms of the colour scale's ends (default: the
            smallest and largest in the drawing), to compare drawings.
        rankdir: Graphviz's direction: "TB" (top to bottom) or "LR" (left to right).

    Errors: ``output`` not a Tensor (TypeError) or without a grad_fn (ValueError); "grad" in
    ``show`` before any gradient exists (RuntimeError); rendering without ``dot``
    (DotNotFoundError, a FileNotFoundError and a RuntimeError).
    """
    show = _check_args(output, show, collapse_modules, recording, max_values)
    facts = _Facts(output, _Names(params), recording, max_values)
    depth = 1 if collapse_modules is True else int(collapse_modules)
    boxes, slots, lines = _boxes_and_lines(facts, show, depth, depth > 0)
    if "grad" in show and not _any_gradient(slots):
        raise RuntimeError('draw_graph: no gradients yet: call backward() first (inside '
                           'record_graph() to see every gradient), or leave "grad" out: '
                           'show=("data", "shape", "saved")')
    if depth > 0:
        boxes, lines = _fold(facts, boxes, slots, lines, show)
    span = _norm_range(lines, norm_range) if "grad" in show else None
    if "grad" not in show:
        lines = [(src, dst, None, tip) for src, dst, _, tip in lines]
    digraph = _dot(boxes, lines, span, rankdir, _caption(span, _notes(facts, slots, show)))
    return GraphDrawing(digraph, boxes, lines)


def _check_args(output, show, collapse_modules, recording, max_values):
    if not isinstance(output, Tensor):
        raise TypeError(f"draw_graph: expected the Tensor whose graph to draw, got "
                        f"{type(output).__name__}")
    if output.grad_fn is None:
        raise ValueError(f"draw_graph: the tensor (shape {output.shape}) has no grad_fn, so "
                         f"there is no graph to draw: it is a leaf, or was computed under "
                         f"no_grad or from tensors that do not require grad")
    show = (show,) if isinstance(show, str) else tuple(show)
    unknown = [s for s in show if s not in SHOW]
    if unknown:
        raise ValueError(f"draw_graph: unknown show entries {unknown}; choose from {SHOW}")
    if not isinstance(collapse_modules, (bool, int)) or collapse_modules < 0:
        raise ValueError(f"draw_graph: collapse_modules must be True, False or a depth >= 0, "
                         f"got {collapse_modules!r}")
    if recording is not None and not isinstance(recording, GraphRecording):
        raise TypeError(f"draw_graph: recording must be what record_graph() returned, got "
                        f"{type(recording).__name__}")
    _checks.int_at_least("draw_graph", "max_values", max_values, 0)
    return show


def _any_gradient(slots):
    return any(slot.grad is not None for node_slots in slots.values() for slot in node_slots)


def _notes(facts, slots, show):
    """What the caption tells the reader about values the drawing could not know."""
    missing = [node for node, node_slots in slots.items() if type(node) is not AccumulateGrad
               and any((s.values is None and s.shape is not None and _numel(s.shape)
                        <= facts.max_values) or ("grad" in show and s.grad is None)
                       for s in node_slots)]
    if not missing or facts.recording is not None:
        return []
    return ["values or gradients of intermediate tensors not kept: run the forward and the "
            "backward inside retrograd.inspect.record_graph() and pass recording="]
