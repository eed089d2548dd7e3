"""The gradient sections of a run's report (``retrograd train``, on by default; ``--no-inspect``
turns them off): a GradientMonitor over the whole run (its charts, flags and
``gradients.json``), the graph of the run's first step drawn with its numbers (modules
collapsed), and, for image classifiers, saliency and Grad-CAM maps of a few test images.

The monitor reads the gradients after every backward (it records every DEFAULT_EVERY steps:
about 4% of a step). The first step's forward and backward run under ``record_graph`` (one
step, once). Figures are drawn when the run writes its final report, not every epoch, so a
run pays for them once.
"""

import contextlib
import copy
import os
from html import escape

from retrograd.inspect import GradientMonitor, Section, attribution_section
from retrograd.inspect.graph import DotNotFoundError, draw_graph, record_graph
from retrograd.training.data_parallel import world_of

__all__ = ["RunInspection", "inspecting", "AttentionInspection"]

_GRAPH_TITLE = "The graph of the first training step (modules collapsed)"


class RunInspection:
    """The gradient tools of one run (see the module docstring). ``samples``: (images,
    labels) of a few test images for the attribution maps, or None (not an image model)."""

    def __init__(self, model, out, samples=None):
        self.model, self.out, self.samples = model, out, samples
        self.monitor = GradientMonitor(model)
        self._recording = record_graph()   # the first step's forward and backward
        self._recording.__enter__()
        self._graph = None           # the first step's drawing (a Section), once made

    def after_backward(self, loss):
        """Called with the step's loss after its backward, before the optimizer's step."""
        if self._recording is not None:
            self._graph = self._graph_section(loss, self._recording)
            self._recording = None
        self.monitor.record()

    def _graph_section(self, loss, recording):
        recording.__exit__(None, None, None)
        drawing = draw_graph(loss, params=self.model.named_parameters(), recording=recording,
                             collapse_modules=True)
        try:
            svg = drawing.pipe("svg").decode("utf-8")
        except DotNotFoundError as e:
            return Section.html(_GRAPH_TITLE, f"<p>{escape(str(e))}. The DOT source:</p>"
                                              f"<pre>{escape(drawing.source)}</pre>")
        return Section.html(_GRAPH_TITLE, _inline_svg(svg))

    def close(self):
        if self._recording is not None:       # the run ended before its first backward
            self._recording.__exit__(None, None, None)
            self._recording = None
        self.monitor.close()

    def sections(self, final):
        """The report's sections: everything when ``final`` (the run's last report), else a
        note that they come with it."""
        if not final:
            return [Section.html("Gradients", "<p>The gradient-flow charts, the graph of the "
                                              "first step and the attribution maps are drawn "
                                              "with the run's final report.</p>")]
        self.monitor.close()      # training is over: measures the last recorded step's update
        self.monitor.save_json(os.path.join(self.out, "gradients.json"))
        folder = os.path.join(self.out, "gradients")
        os.makedirs(folder, exist_ok=True)
        sections = list(self.monitor.sections(folder))
        if self._graph is not None:
            sections.append(self._graph)
        if self.samples is not None:
            images, labels = self.samples
            sections.append(attribution_section(self.model, images, labels=labels,
                                                path=os.path.join(folder, "attribution.png")))
        return sections


def _inline_svg(svg):
    """The SVG document without its XML prologue and DOCTYPE, to embed in the page."""
    start = svg.find("<svg")
    return f'<div class="graph">{svg[start:] if start >= 0 else svg}</div>'


@contextlib.contextmanager
def inspecting(run, out, samples=None):
    """``run.inspection``: a RunInspection for the run (None with the job's ``inspect``
    option off, and on every rank but 0 of a data-parallel run: the gradients it reads are
    the ranks' average, the same on every rank) for the block."""
    enabled = getattr(run.config, "inspect", True) and world_of(run).writer
    run.inspection = RunInspection(run.model, out, samples) if enabled else None
    try:
        yield
    finally:
        if run.inspection is not None:
            run.inspection.close()


class AttentionInspection:
    """``--inspect-attention N``: an AttentionMonitor recording every N steps on a fixed
    batch (``make_loss()`` returns its loss); each new warning is printed once (``say``); the
    final report gets its sections and ``attention.json``. ``tokens``: labels of the batch's
    first sample for the head view. The gradient monitor's activation statistics of a step
    are kept as they were across the extra pass."""

    def __init__(self, run, out, every, make_loss, tokens=None, say=print):
        from retrograd.inspect.attention_monitor import AttentionMonitor

        self.run, self.out, self.make_loss, self.tokens, self.say = (run, out, make_loss,
                                                                      tokens, say)
        self.monitor = AttentionMonitor(run.model, every)

    def after_step(self, step):
        inspection = getattr(self.run, "inspection", None)
        gradients = inspection.monitor if inspection is not None else None
        kept = copy.deepcopy(gradients._activations) if gradients is not None else None
        try:
            warnings = self.monitor.maybe_record(step, self.make_loss)
        finally:
            if gradients is not None:
                gradients._activations = kept
        for warning in warnings:
            self.say(warning.message)

    def sections(self, final):
        if not final:
            return [Section.html("Attention over training", "<p>Drawn with the run's final "
                                                            "report.</p>")]
        self.monitor.save_json(os.path.join(self.out, "attention.json"))
        return self.monitor.sections(os.path.join(self.out, "attention"), tokens=self.tokens)
