"""The pyperf workloads of the performance record and of ``make bench``: pure-Python programs
run inside the images (runner.py, under the image's own interpreter), never imported by the
orchestrator. Each module has a NAME (its file name) and a ``bench()`` that returns what it
computed (the checksum proves every image did the same work)."""
