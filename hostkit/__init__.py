"""The build host's test fixtures that are data, not services: ``python -m hostkit``.

scripts/provision-host.sh keeps what installs or starts something (apt, qemu, dockerd, the
registry, debootstrap, the services); it calls this package for the parts that are about
*content* and already have a model in ``orchestrator``:

  mirror           CPython tarballs for every release tests/e2e/images.yaml needs from the
                   mirror, from Debian source packages (matrix.py, debsrc.py, mirror.py)
  served           the started mirror lists and serves each of them
  pyenv            the deterministic pyenv-<version>.tar.gz the matrix's sources.pyenv names
  sums             $ORCH_MIRROR_DIR/SHA256SUMS
  registry-digest  digest of REPO:TAG in the local registry (orchestrator.registry)
  summary          versions, registry catalog, base image digests, mirror checksums

Environment: the ORCH_* variables of provision-host.sh (common.HostEnv). Every failure is a
HostkitError: one line on stderr, exit status non-zero, no traceback.
"""
