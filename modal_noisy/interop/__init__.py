"""Interoperability with the tools around the library: cleanlab's label-issue tables and Datalab.

- :mod:`~modal_noisy.interop.issues` — :func:`label_issues`, a fitted phase 1 as a table in the shape
  of cleanlab's ``Datalab.get_issues("label")`` (numpy, pandas and scikit-learn only);
- :mod:`~modal_noisy.interop.datalab` — :class:`~modal_noisy.interop.datalab.CoTeachingIssueManager`,
  registered with cleanlab's Datalab on import, so ``Datalab.find_issues`` runs phase 1 beside
  cleanlab's own checks (needs the ``datasets`` package: ``pip install 'modal-noisy[datalab]'``).
"""

from modal_noisy.interop.issues import label_issues

__all__ = ["label_issues"]
