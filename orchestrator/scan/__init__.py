"""Known vulnerabilities of published images (issue 32): ``models`` (the report's records; a
leaf), ``grype`` (the one scanner: the DB it is given, its matches), ``report`` (ignore rules,
the gate, the table) and ``images`` (which images, which platforms, which SBOM). The ``scan:``
section of images.yaml is parsed with the rest of the file (config_models.Scan, checks_scan)."""
