"""What vouches for an image: ``sbom``, ``provenance``, ``signing`` (cosign),
``verify``, ``reproducible`` (comparing two builds' layers)."""
