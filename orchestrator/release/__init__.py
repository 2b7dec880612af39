"""build -> test -> push, and promote: the release of the planned images.

Order of a release: every selected cell is built and smoke-tested first; tested images are
pushed under their new immutable tag (by digest); only then are the public tags moved.
A failed cell never gets a tag; cells that depend on a failed stage are aborted, not tried.

Modules: ``state`` (the run and what each phase leaves for the next), ``build``,
``label`` (fingerprint and relabel), ``smoketest``, ``push`` (the tag-move policy),
``promote``, ``report`` (each cell's result, the JSON and JUnit files, the exit code) and
``session`` (a run of phases, start to report).
They use the engine through its protocol and never import the CLI.
"""
