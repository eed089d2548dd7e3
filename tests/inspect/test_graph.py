"""draw_graph: the backward graph drawn with its numbers (retrograd/inspect/graph.py).

The DOT source is read back with a small parser (boxes: id -> title and rows; edges: source,
target, colour, label), so each check looks at the right box or arrow, not at a substring
anywhere in the file."""

import html
import io
import re
import shutil
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import retrograd as rg
from retrograd.inspect import graph as graph_module
from retrograd.inspect.graph import DotNotFoundError, draw_graph, edge_colour, record_graph
from retrograd.models.gpt import GPT, GPTConfig

pytest.importorskip("graphviz", reason="the graphviz Python package (extras test, train)")

needs_dot = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="Graphviz's `dot` program is not installed "
                                      "(apt-get install graphviz); CI installs it")


# ----------------------------------------------------------------------------- reading DOT

def _html_label(line):
    """The HTML label of a DOT statement (label=<...>), matched bracket by bracket."""
    start = line.index("label=<") + len("label=<")
    depth, i = 1, start
    while depth:
        depth += {"<": 1, ">": -1}.get(line[i], 0)
        i += 1
    return line[start:i - 1]


def parse_dot(source):
    """{box id: (title, [rows])}, [(src, dst, attrs)] and the cluster names, from DOT."""
    boxes, edges, clusters = {}, [], []
    for line in source.splitlines():
        line = line.strip()
        cluster = re.match(r'subgraph "?cluster_([^"\s]+)"? \{', line)
        edge = re.match(r"(\w+) -> (\w+) \[(.*)\]$", line)
        box = re.match(r"(\w+) \[label=<", line)
        if cluster:
            clusters.append(cluster.group(1))
        elif edge:
            edges.append((edge.group(1), edge.group(2), _attrs(edge.group(3))))
        elif box:
            cells = re.findall(r"<td[^>]*>(.*?)</td>", _html_label(line))
            texts = [html.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in cells]
            boxes[box.group(1)] = (texts[0], texts[1:])
    return boxes, edges, clusters


def _attrs(text):
    return {k: v.strip('"') for k, v in re.findall(r'(\w+)=("[^"]*"|[^\s"]+)', text)}


def box_by_title(boxes, title):
    found = [b for b, (t, _) in boxes.items() if t == title]
    assert len(found) == 1, f"expected one box titled {title!r}, got {found} in {boxes}"
    return found[0]


def row(boxes, box, key):
    """The number in the row "key value" of a box (e.g. key "grad")."""
    values = [r.split(" ", 1)[1] for r in boxes[box][1] if r.split(" ", 1)[0] == key]
    assert len(values) == 1, f"box {boxes[box]} has no single {key!r} row"
    return float(values[0])


def redness(colour):
    r, b = int(colour[1:3], 16), int(colour[5:7], 16)
    return r - b


# ----------------------------------------------------------------------------- the neuron

def neuron():
    a, b = rg.tensor(2.0, requires_grad=True), rg.tensor(-3.0, requires_grad=True)
    c, f = rg.tensor(10.0, requires_grad=True), rg.tensor(-2.0, requires_grad=True)
    return a, b, c, f


def test_the_neuron_shows_its_output_and_the_gradient_of_every_leaf():
    a, b, c, f = neuron()
    loss = (a * b + c) * f
    loss.backward()
    boxes, edges, _ = parse_dot(draw_graph(loss, params=dict(a=a, b=b, c=c, f=f)).source)
    sinks = [b for b in boxes if not any(src == b for src, _, _ in edges)]
    assert len(sinks) == 1 and boxes[sinks[0]][0] == "Mul"
    assert row(boxes, sinks[0], "data") == -8.0
    expected = {"a": (2.0, 6.0), "b": (-3.0, -4.0), "c": (10.0, -2.0), "f": (-2.0, 4.0)}
    for name, (data, grad) in expected.items():
        box = box_by_title(boxes, name)
        assert (row(boxes, box, "data"), row(boxes, box, "grad")) == (data, grad), name
    # each leaf feeds the op it was used in: a and b the first Mul, c the Add, f the last Mul
    into = {boxes[src][0]: boxes[dst][0] for src, dst, _ in edges if boxes[src][0] in expected}
    assert into == {"a": "Mul", "b": "Mul", "c": "Add", "f": "Mul"}
    assert ("f", sinks[0]) in {(boxes[s][0], d) for s, d, _ in edges}


def test_a_recording_shows_every_value_gradient_and_edge_of_the_neuron():
    a, b, c, f = neuron()
    with record_graph() as recording:
        e = a * b
        d = e + c
        loss = d * f
        loss.backward()
    drawing = draw_graph(loss, params=dict(a=a, b=b, c=c, f=f, e=e, d=d, L=loss),
                         recording=recording)
    boxes, edges, _ = parse_dot(drawing.source)
    expected = {"e = Mul": (-6.0, -2.0), "d = Add": (4.0, -2.0), "L = Mul": (-8.0, 1.0),
                "a": (2.0, 6.0), "f": (-2.0, 4.0)}
    for title, (data, grad) in expected.items():
        box = box_by_title(boxes, title)
        assert (row(boxes, box, "data"), row(boxes, box, "grad")) == (data, grad), title
    # the gradient along each edge: |dL/de| = 2 into the Add, |dL/da| = 6 into the first Mul
    labels = {(boxes[s][0], boxes[t][0]): float(attrs["label"]) for s, t, attrs in edges}
    assert labels[("e = Mul", "d = Add")] == 2.0 and labels[("a", "e = Mul")] == 6.0
    assert labels[("f", "L = Mul")] == 4.0 and labels[("d = Add", "L = Mul")] == 2.0
    assert "saved 8 B" in boxes[box_by_title(boxes, "e = Mul")][1]   # a and b, float32


def test_retained_intermediate_gradients_are_shown_without_a_recording():
    a, b, c, f = neuron()
    d = a * b + c
    d.retain_grad()
    loss = d * f
    loss.backward()
    boxes, _, _ = parse_dot(draw_graph(loss, params=dict(d=d)).source)
    box = box_by_title(boxes, "d = Add")
    assert (row(boxes, box, "data"), row(boxes, box, "grad")) == (4.0, -2.0)
    rows = [r for t, r in boxes.values() if t == "Mul"]   # e = a * b and the output
    assert sorted(rows) == [["() float32"], ["data -8"]]   # e was not kept: its shape only


# ----------------------------------------------------------------------------- edge colours

def test_edge_colours_grow_redder_with_the_gradient_norm():
    xs = [rg.tensor([1.0, 1.0], requires_grad=True) for _ in range(4)]
    scales = [1e-6, 1e-3, 1.0, 1e3]
    loss = sum(((x * s).sum() for x, s in zip(xs, scales)), rg.tensor(0.0))
    loss.backward()
    boxes, edges, _ = parse_dot(draw_graph(loss, params=[*xs]).source)
    colours = {}
    for src, _, attrs in edges:
        title = boxes[src][0]
        if title.startswith("params["):
            colours[int(title[7:-1])] = (float(attrs["label"]), attrs["color"])
    norms = [colours[i][0] for i in range(4)]
    np.testing.assert_allclose(norms, [s * np.sqrt(2) for s in scales], rtol=0.02)
    reds = [redness(colours[i][1]) for i in range(4)]
    assert reds == sorted(reds) and len(set(reds)) == 4, reds
    assert colours[0][1] == edge_colour(1e-6, 1e-6, 1e3)   # the scale spans the drawing's norms


def test_the_colour_scale_is_monotonic_and_clipped():
    norms = np.geomspace(1e-9, 1e9, 50)
    reds = [redness(edge_colour(n, 1e-6, 1e6)) for n in norms]
    assert all(x <= y for x, y in zip(reds, reds[1:])) and reds[0] < reds[-1]
    assert reds[0] == reds[5] and reds[-1] == reds[-5]   # beyond the ends: the end colours
    assert edge_colour(float("nan"), 1e-6, 1.0) == edge_colour(float("inf"), 1e-6, 1.0)


# ----------------------------------------------------------------------------- GPT

@pytest.fixture(scope="module")
def gpt_step():
    rg.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=11, context=8, n_layer=2, n_head=2, d_model=16))
    idx = rg.tensor([[1, 2, 3, 4], [4, 5, 6, 7]])
    with record_graph() as recording:
        logits = model(idx)
        loss = rg.nn.functional.cross_entropy(logits.reshape(-1, 11), idx.reshape(-1))
        loss.backward()
    return model, loss, recording


def test_a_collapsed_gpt_has_one_cluster_per_block(gpt_step):
    model, loss, recording = gpt_step
    drawing = draw_graph(loss, params=model.named_parameters(), recording=recording)
    boxes, edges, clusters = parse_dot(drawing.source)
    assert sorted(clusters) == ["blocks.0", "blocks.1", "head", "ln_f", "wpe", "wte"]
    block = box_by_title(boxes, "blocks.0 (Block)")
    assert boxes[block][1][0] == "15 ops, 12 params (3.28 k values)"
    assert "out (2, 4, 16) float32" in boxes[block][1]
    assert not any(t.startswith(("LayerNorm", "blocks.0.")) for t, _ in boxes.values())
    # the residual stream runs block to block, with its gradient norm known
    one = box_by_title(boxes, "blocks.1 (Block)")
    (attrs,) = [a for s, t, a in edges if (s, t) == (block, one)]
    assert "style" not in attrs and float(attrs["label"]) > 0   # solid: a known norm


def test_an_expanded_gpt_nests_its_module_clusters(gpt_step):
    model, loss, recording = gpt_step
    source = draw_graph(loss, params=model.named_parameters(), recording=recording,
                        collapse_modules=False).source
    boxes, _, clusters = parse_dot(source)
    assert {"blocks.0", "blocks.0.attn", "blocks.0.attn.qkv", "blocks.1.mlp.fc"} <= set(clusters)
    qkv = source.index('subgraph "cluster_blocks.0.attn.qkv"')
    assert source.index('subgraph "cluster_blocks.0.attn"') < qkv   # inside attn, not beside
    weight = box_by_title(boxes, "blocks.0.attn.qkv.weight")
    assert boxes[weight][1][0] == "(48, 16) float32" and boxes[weight][1][1].startswith("|grad|")


@needs_dot
def test_the_gpt_drawing_renders_to_svg_and_png(gpt_step, tmp_path):
    model, loss, recording = gpt_step
    drawing = draw_graph(loss, params=model.named_parameters(), recording=recording)
    svg = ET.parse(drawing.render(tmp_path / "gpt.svg")).getroot()
    texts = [t.text for t in svg.iter("{http://www.w3.org/2000/svg}text")]
    assert "blocks.0 (Block)" in texts and "blocks.1 (Block)" in texts
    image = pytest.importorskip("PIL.Image")
    png = image.open(io.BytesIO(open(drawing.render(tmp_path / "gpt.png"), "rb").read()))
    png.load()
    pixels = np.asarray(png.convert("RGB"))
    assert png.size[0] > 300 and png.size[1] > 300 and pixels.std() > 10


# ----------------------------------------------------------------------------- bad input

def test_no_gradients_yet_is_an_error_that_says_what_to_do():
    a, b, c, f = neuron()
    loss = (a * b + c) * f
    with pytest.raises(RuntimeError, match=r"no gradients yet: call backward\(\) first"):
        draw_graph(loss)
    boxes, edges, _ = parse_dot(draw_graph(loss, show=("data", "shape", "saved")).source)
    mul = [b for b, (t, _) in boxes.items() if t == "Mul" and "saved 8 B" in boxes[b][1]]
    assert len(mul) == 2   # before backward, what the ops saved is still there
    assert all(attrs["style"] == "dashed" for _, _, attrs in edges)


def test_an_output_without_a_graph_is_refused():
    x = rg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(TypeError, match="draw_graph: expected the Tensor.*got list"):
        draw_graph([x])
    with pytest.raises(ValueError, match="no grad_fn"):
        draw_graph(x)
    with rg.no_grad():
        y = x * 2
    with pytest.raises(ValueError, match=r"shape \(2,\)\) has no grad_fn"):
        draw_graph(y)


def test_bad_arguments_are_named():
    a, b, c, f = neuron()
    loss = a * b
    loss.backward()
    with pytest.raises(ValueError, match="unknown show entries \\['values'\\]"):
        draw_graph(loss, show=("data", "values"))
    with pytest.raises(TypeError, match="params must map names to Tensors.*entry 0 is int"):
        draw_graph(loss, params=[3])
    with pytest.raises(TypeError, match="recording must be what record_graph"):
        draw_graph(loss, recording={})


def test_missing_dot_is_an_error_that_says_how_to_install_it(monkeypatch, tmp_path):
    a, b, c, f = neuron()
    loss = a * b
    loss.backward()
    drawing = draw_graph(loss)
    monkeypatch.setattr(graph_module.shutil, "which", lambda name: None)
    with pytest.raises(DotNotFoundError, match=r"`dot`.*apt-get install graphviz") as error:
        drawing.render(tmp_path / "g.png")
    assert isinstance(error.value, RuntimeError) and isinstance(error.value, FileNotFoundError)
    assert not (tmp_path / "g.png").exists()
    assert open(drawing.render(tmp_path / "g.dot")).read() == drawing.source   # needs no dot


def test_a_missing_graphviz_package_names_the_extra(monkeypatch):
    a, b, c, f = neuron()
    loss = a * b
    loss.backward()
    monkeypatch.setitem(sys.modules, "graphviz", None)
    with pytest.raises(ImportError, match=r"pip install graphviz.*retrograd\[train\]"):
        draw_graph(loss)
