"""What the smoke checks run inside an image (orchestrator.smoke's table names each file): shell
scripts, run by ``/bin/sh -ec <text> <file> <argument>...``, and Python scripts, run by
``python3 -c <text> <argument>...`` (a minimal image: ``-c <text> <argument>...``, the
arguments of its python3 entrypoint). Package data, read with importlib.resources: nothing
imports these modules, and none of them runs on the build host. Everything a check varies
(paths, module lists, a uid, a host) comes in as an argument, never spliced into the text."""
