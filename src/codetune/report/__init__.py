"""Reports: loss graphs, results tables, paired statistics, side-by-side answers, one HTML file."""

from codetune.report.build import build_report
from codetune.report.stats import bootstrap_diff, mcnemar_exact

__all__ = ["bootstrap_diff", "build_report", "mcnemar_exact"]
