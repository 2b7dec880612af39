"""``add-python`` / ``retire-python``: adding or retiring a CPython minor is one command and
one reviewable diff (images.yaml, images.lock, generated/).

Layers, so that everything but the last is unit-testable without network or disk writes:

* ``yamledit``: byte-preserving text edits of a YAML document's top-level lists;
* ``python_entries``: the images.yaml edits of a minor (``add_python_text``,
  ``retire_python_text``);
* ``plandiff``: the plan before/after, as images and moving tags added and removed;
* ``proposal``: ``propose_add`` / ``propose_retire`` validate the edited images.yaml, edit the
  lock, render, and diff the plan -- all in memory, nothing written; ``apply`` writes
  images.yaml, images.lock and generated/ once everything above succeeded; ``report``;
* the CLI handlers live in ``orchestrator.cli.python_cmds``.
"""

from orchestrator.versions.plandiff import ImageChange, PlanDiff, plan_diff
from orchestrator.versions.proposal import (
    Index,
    IndexFor,
    Proposal,
    apply,
    parse_add_arg,
    parse_minor_arg,
    propose_add,
    propose_retire,
    report,
    resolve_release,
)
from orchestrator.versions.python_entries import add_python_text, insert_python_text, retire_python_text
from orchestrator.versions.yamledit import unified_diff

__all__ = ["ImageChange", "Index", "IndexFor", "PlanDiff", "Proposal", "add_python_text", "apply",
           "insert_python_text", "parse_add_arg", "parse_minor_arg", "plan_diff", "propose_add",
           "propose_retire", "report", "resolve_release", "retire_python_text", "unified_diff"]
