"""lint: numerically unstable patterns in a recorded computation (retrograd/inspect/lint.py).

Each pattern has a minimal computation that triggers it (checked for the pattern, the op, the
module path and this file's line) and its stable rewrite, which must not be flagged."""

import inspect

import numpy as np
import pytest

import retrograd as rg
import retrograd.nn.functional as F
from retrograd import nn
from retrograd.inspect.lint import PATTERNS, LintReport, SourceLine, lint
from retrograd.models import GPT, GPTConfig, resnet8

HERE = __file__


def next_line():
    """The line number after the caller's line."""
    return inspect.currentframe().f_back.f_lineno + 1


def only(report):
    assert len(report) == 1, str(report)
    return report[0]


@pytest.fixture
def x():
    rg.manual_seed(0)
    return rg.randn(4, 8, requires_grad=True)


@pytest.fixture
def w():
    return rg.randn(5, 8, requires_grad=True)


# ----------------------------------------------------------------------------- each pattern

def test_log_of_softmax_is_flagged_with_op_and_line(x):
    def compute():
        line[0] = next_line()
        return F.softmax(x, dim=-1).log()

    line = [None]
    finding = only(lint(compute))
    assert (finding.pattern, finding.op, finding.module) == ("log_of_softmax", "Log", None)
    assert finding.line == SourceLine(HERE, line[0])
    assert "log_softmax" in finding.rewrite


def test_log_of_sigmoid_is_flagged(x):
    finding = only(lint(lambda: rg.sigmoid(x).log()))
    assert finding.pattern == "log_of_softmax" and "sigmoid" in finding.message


def test_log_softmax_is_not_flagged(x):
    assert len(lint(lambda: F.log_softmax(x, dim=-1))) == 0


def test_exp_of_a_linear_output_is_flagged(x, w):
    def compute():
        line[0] = next_line()
        return (F.linear(x, w) * 0.5).exp()

    line = [None]
    finding = only(lint(compute))
    assert (finding.pattern, finding.op) == ("exp_unbounded", "Exp")
    assert finding.line == SourceLine(HERE, line[0])
    assert "Linear" in finding.message and "max" in finding.rewrite


def test_exp_after_subtracting_the_max_or_logsumexp_is_not_flagged(x, w):
    def shifted_by_max():
        scores = F.linear(x, w)
        return (scores - scores.amax(dim=-1, keepdim=True)).exp()

    def shifted_by_logsumexp():
        scores = F.linear(x, w)
        return (scores - scores.logsumexp(dim=-1, keepdim=True)).exp()

    assert len(lint(shifted_by_max)) == 0
    assert len(lint(shifted_by_logsumexp)) == 0
    assert len(lint(lambda: F.softmax(F.linear(x, w), dim=-1))) == 0
    assert len(lint(lambda: F.linear(x, w).clamp(max=20.0).exp())) == 0


@pytest.mark.parametrize("divisor", ["sum", "norm", "sqrt_var", "rsqrt_var"])
def test_division_by_a_reduction_without_eps_is_flagged(x, divisor):
    divisors = {"sum": lambda: x / x.sum(dim=-1, keepdim=True),
                "norm": lambda: x / x.norm(dim=-1, keepdim=True),
                "sqrt_var": lambda: x / x.var(dim=-1, keepdim=True).sqrt(),
                "rsqrt_var": lambda: x * (1.0 / x.var(dim=-1, keepdim=True).sqrt())}
    finding = only(lint(divisors[divisor]))
    assert (finding.pattern, finding.op) == ("div_by_reduction", "Div")
    assert "eps" in finding.rewrite


def test_division_with_eps_or_clamp_min_is_not_flagged(x):
    assert len(lint(lambda: x / (x.var(dim=-1, keepdim=True) + 1e-5).sqrt())) == 0
    assert len(lint(lambda: x / x.norm(dim=-1, keepdim=True).clamp_min(1e-6))) == 0
    assert len(lint(lambda: x / 8.0)) == 0


def test_a_softmax_written_by_hand_with_a_max_shift_is_not_flagged(x):
    def softmax_by_hand():
        e = (x - x.amax(dim=-1, keepdim=True)).exp()
        return e / e.sum(dim=-1, keepdim=True)

    assert len(lint(softmax_by_hand)) == 0


def test_eps_below_float16_tiny_is_flagged_with_a_suggested_value(x):
    def compute():
        line[0] = next_line()
        return x.half().abs() + 1e-8

    line = [None]
    finding = only(lint(compute))
    assert (finding.pattern, finding.op) == ("eps_below_tiny", "Add")
    assert finding.line == SourceLine(HERE, line[0])
    assert "float16" in finding.message and "1e-04" in finding.rewrite
    clamped = only(lint(lambda: x.half().abs().clamp_min(1e-8)))
    assert (clamped.pattern, clamped.op) == ("eps_below_tiny", "Clamp")
    norm = only(lint(lambda: F.layer_norm(x, (8,), eps=1e-40)))   # float32's tiny: 1.2e-38
    assert (norm.pattern, norm.op) == ("eps_below_tiny", "LayerNorm")
    rms = only(lint(lambda: F.rms_norm(x, (8,), eps=1e-40)))
    assert (rms.pattern, rms.op) == ("eps_below_tiny", "RMSNorm")


def test_eps_above_tiny_is_not_flagged(x):
    assert len(lint(lambda: x.half().abs() + 1e-4)) == 0
    assert len(lint(lambda: x.abs() + 1e-8)) == 0   # float32: tiny is 1.2e-38
    # the norm ops normalize float16 in float32 (ops/norm.py): their eps is judged there
    assert len(lint(lambda: F.layer_norm(x.half(), (8,), eps=1e-12))) == 0
    assert len(lint(lambda: F.rms_norm(x.half(), (8,), eps=1e-12))) == 0


@pytest.mark.parametrize("fill", [float("-inf"), float(np.finfo(np.float32).min)])
def test_neg_inf_mask_meeting_float16_scores_is_flagged(x, fill):
    mask = x.detach() > 0

    def compute():
        line[0] = next_line()
        return x.half().masked_fill(mask, fill)

    line = [None]
    finding = only(lint(compute))
    assert (finding.pattern, finding.op) == ("neg_inf_mask_fp16", "MaskedFill")
    assert finding.line == SourceLine(HERE, line[0])
    assert "scaled_dot_product_attention" in finding.rewrite


def test_neg_inf_by_where_or_by_an_added_mask_is_flagged(x):
    mask = x.detach() > 0
    where = only(lint(lambda: rg.where(mask, x.half(), float("-inf"))))
    assert (where.pattern, where.op) == ("neg_inf_mask_fp16", "Where")
    additive = rg.where(mask, 0.0, float("-inf")).half()
    added = only(lint(lambda: x.half() + additive))
    assert (added.pattern, added.op) == ("neg_inf_mask_fp16", "Add")


def test_stable_masks_are_not_flagged(x):
    mask = x.detach() > 0
    finite = float(np.finfo(np.float16).min)
    assert len(lint(lambda: x.half().masked_fill(mask, finite))) == 0
    assert len(lint(lambda: x.masked_fill(mask, float("-inf")))) == 0   # float32 scores
    q = rg.randn(1, 2, 4, 8).half()
    keep = rg.tensor(np.tril(np.ones((4, 4), dtype=bool)))
    assert len(lint(lambda: F.scaled_dot_product_attention(q, q, q, attn_mask=keep))) == 0


# ----------------------------------------------------------------------------- modules, graphs

class LogProbs(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(8, 3)

    def forward(self, x):
        LogProbs.line = next_line()
        return F.softmax(self.proj(x), dim=-1).log()


def test_findings_inside_a_module_name_its_path_and_the_forward_line(x):
    model = nn.Sequential(nn.Linear(8, 8), LogProbs())
    finding = only(lint(model, x))
    assert (finding.pattern, finding.op, finding.module) == ("log_of_softmax", "Log", "1")
    assert finding.line == SourceLine(HERE, LogProbs.line)


def test_lint_of_a_graph_finds_the_patterns_it_can_see(x):
    report = lint(F.softmax(x, dim=-1).log())
    finding = only(report)
    assert (finding.pattern, finding.op, finding.line) == ("log_of_softmax", "Log", None)
    assert set(report.unchecked) == {"eps_below_tiny", "neg_inf_mask_fp16"}
    assert "line unknown: record under rg.autograd.detect_anomaly()" in str(report)


def test_lint_of_a_graph_made_under_anomaly_mode_knows_the_line_and_module(x):
    model = nn.Sequential(nn.Linear(8, 8), LogProbs())
    with rg.autograd.detect_anomaly():
        out = model(x)
        line = next_line()
        ratio = x / x.sum(dim=-1, keepdim=True)
    log_probs = only(lint(out))
    assert (log_probs.module, log_probs.line) == ("1", SourceLine(HERE, LogProbs.line))
    assert only(lint(ratio)).line == SourceLine(HERE, line)


def test_report_prints_a_table(x):
    report = lint(lambda: (F.softmax(x, dim=-1).log(), x / x.sum()))
    text = str(report)
    assert isinstance(report, LintReport) and len(report) == 2
    header = text.splitlines()[1].split()
    assert header == ["pattern", "op", "module", "line", "rewrite"]
    assert "log_of_softmax" in text and "div_by_reduction" in text
    assert "0 finding(s)" in str(lint(lambda: F.log_softmax(x, dim=-1)))


def test_every_pattern_has_a_name_ops_and_a_rewrite():
    names = [p.name for p in PATTERNS]
    assert names == ["log_of_softmax", "exp_unbounded", "div_by_reduction", "eps_below_tiny",
                     "neg_inf_mask_fp16"]
    assert all(p.ops and p.unstable and p.rewrite for p in PATTERNS)


# ----------------------------------------------------------------------------- bad input

def test_bad_input_names_lint_and_what_was_given():
    with pytest.raises(TypeError, match="lint: expected a Tensor .* got an int"):
        lint(3)
    with pytest.raises(ValueError, match="lint: the tensor has no recorded graph"):
        lint(rg.ones(2))
    with pytest.raises(TypeError, match="lint: given a Tensor"):
        lint(rg.ones(2, requires_grad=True) * 2, 1)


# ----------------------------------------------------------------------------- case studies

def test_gpt_forward_and_loss_are_clean():
    rg.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=17, context=8, n_layer=2, n_head=2, d_model=16))
    idx = rg.tensor(np.random.default_rng(0).integers(0, 17, (2, 8)))

    def loss():
        return F.cross_entropy(model(idx).reshape(-1, 17), idx.reshape(-1))

    assert len(lint(loss)) == 0
    assert len(lint(loss())) == 0
    assert len(lint(lambda: model.half()(idx))) == 0   # LayerNorm eps 1e-5, in float32 inside


def test_resnet_forward_and_loss_are_clean():
    rg.manual_seed(0)
    model = resnet8()
    images, labels = rg.randn(2, 3, 16, 16), rg.tensor(np.array([1, 2]))

    def loss():
        return F.cross_entropy(model(images), labels)

    assert len(lint(loss)) == 0
    assert len(lint(loss())) == 0
