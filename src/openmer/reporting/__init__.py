"""Reporting: raw run scores, results tables (results.json / results.md) and figures.

* :class:`~openmer.reporting.scores.RunScores`: the scores of one evaluated run, saved as ``.npz`` + ``.json``.
* :func:`~openmer.reporting.results.summarise`, :func:`~openmer.reporting.results.write_results`.
* :mod:`openmer.reporting.figures`: ROC, OSCR, confidence histograms, threshold sweep, confusion,
  t-SNE, and :func:`~openmer.reporting.figures.write_standard_figures` (imported on demand,
  as it loads matplotlib).
"""

from openmer.reporting.results import summarise, write_results
from openmer.reporting.scores import RunScores

__all__ = ["RunScores", "summarise", "write_results"]
