"""The build host's test fixtures that are data, not services: ``python -m hostkit``.

scripts/provision-host.sh keeps what installs or starts something (apt, qemu, dockerd, the
registry, mmdebstrap, the services); it calls this package for the parts that are about
*content* and already have a model in ``orchestrator``, and for its decisions:

  mirror           CPython tarballs for every release tests/e2e/images.yaml needs from the
                   mirror, from Debian source packages (matrix.py, debsrc.py, mirror.py)
  served           the started mirror lists and serves each of them
  pyenv            the deterministic pyenv-<version>.tar.gz the matrix's sources.pyenv names
  sums             $ORCH_MIRROR_DIR/SHA256SUMS
  registry-digest  digest of REPO:TAG in the local registry (orchestrator.registry)
  summary          versions, registry catalog, base image digests, mirror checksums
  suites           each distro's base image (repository, tag) and family, from the matrix
  base-arches      a suite base's architectures: arm64 asked for or kept (bases.py)
  base-state       skip, push, a new index or a rebuild, from the suite's recipe marker
  debs-at          the packages dpkg-query lists are installed, at their X.Y (dockerd.py)
  version-in       `docker buildx version` / `dockerd --version` show a release of X.Y
  docker-store     containerd or classic, from `docker info`
  dockerd-check    step dockerd's checks of the running daemon and its builder

Environment: the ORCH_* variables of provision-host.sh (common.HostEnv). Every failure is a
HostkitError: one line on stderr, exit status non-zero, no traceback.
"""
