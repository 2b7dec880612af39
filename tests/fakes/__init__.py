"""Stand-ins for the unit and integration tests: the fake engine, registry,
storage, cosign and syft, the fault proxy, OCI layouts, the publish harness."""
