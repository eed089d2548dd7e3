"""Observing training: the profiler, the FLOP counter, the memory ledger, the checkpointing
receipt, policy dry run and planner, precision losses and the stability lint, gradient flow,
graph drawings, the NaN/Inf guard (autograd's, re-exported), attribution maps, attention
capture, diagnostics, mask audit, rollout and head views, and the run report."""

from retrograd.autograd.anomaly import nan_guard
from retrograd.inspect.attention import (AttentionRecord, attention_diagnostics,
                                         capture_attention)
from retrograd.inspect.attention_monitor import AttentionMonitor, AttentionWarning
from retrograd.inspect.attention_masks import MaskAudit, audit_masks, audit_model, naive_attention
from retrograd.inspect.attention_views import (RolloutDisagreement, attention_rollout,
                                               gradient_rollout, head_view_html,
                                               head_view_section, rollout, rollout_disagreement)
from retrograd.inspect.attribution import (GradCAM, IntegratedGradients, attribution_section,
                                           grad_cam, integrated_gradients, saliency,
                                           smooth_grad)
from retrograd.inspect.checkpointing import (CheckpointPlan, CheckpointReceipt, PolicyDryRun,
                                             checkpoint_dry_run, checkpoint_receipt,
                                             plan_checkpoints)
from retrograd.inspect.flops import FlopCounter
from retrograd.inspect.gradient_flow import GradientFlow, GradientMonitor
from retrograd.inspect.graph import GraphDrawing, draw_graph, record_graph
from retrograd.inspect.lint import LintFinding, LintReport, lint
from retrograd.inspect.memory import MemoryLedger, MemoryReport, memory_report
from retrograd.inspect.precision import (PrecisionAB, StagnationReport, UnderflowReport,
                                         gradient_underflow, precision_ab, ulp,
                                         update_stagnation)
from retrograd.inspect.profiler import profile, record_function
from retrograd.inspect.report import (Report, Section, plot_curves, plot_step_curves,
                                      write_run_report, write_step_report)

__all__ = [
    # time, FLOPs and memory
    "profile", "record_function", "FlopCounter", "MemoryLedger", "MemoryReport", "memory_report",
    # activation checkpointing
    "checkpoint_receipt", "CheckpointReceipt", "checkpoint_dry_run", "PolicyDryRun",
    "plan_checkpoints", "CheckpointPlan",
    # precision and stability
    "gradient_underflow", "UnderflowReport", "update_stagnation", "StagnationReport", "ulp",
    "precision_ab", "PrecisionAB", "lint", "LintReport", "LintFinding",
    # gradients
    "GradientMonitor", "GradientFlow", "draw_graph", "record_graph", "GraphDrawing", "nan_guard",
    "saliency", "smooth_grad", "integrated_gradients", "IntegratedGradients", "grad_cam",
    "GradCAM", "attribution_section",
    # attention
    "capture_attention", "AttentionRecord", "attention_diagnostics", "AttentionMonitor",
    "AttentionWarning", "audit_masks", "audit_model", "naive_attention", "MaskAudit", "rollout",
    "attention_rollout", "gradient_rollout", "rollout_disagreement", "RolloutDisagreement",
    "head_view_html", "head_view_section",
    # the run report
    "Report", "Section", "plot_curves", "plot_step_curves", "write_run_report",
    "write_step_report",
]
