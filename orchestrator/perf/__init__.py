"""The performance record of an image (issue 33 item 4): the pyperf workloads the orchestrator
ships (workloads/), the pyperf it bind-mounts into the images (pyperf_dir), one measurement of
a candidate against the image it replaces (measure), the comparison and its verdict (compare),
and the in-toto predicate that records it (predicate). The release phase is release/perf.py."""
