"""`deem-eval report`: a self-contained HTML report (build.py assembles it, html.py writes the markup)."""

from deem_eval.views.report.command import ReportCommand

__all__ = ["ReportCommand"]
