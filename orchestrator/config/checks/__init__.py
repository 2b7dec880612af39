"""The validators of images.yaml, run by ``config.loader`` in this order: ``shape``
(keys and scalar types), ``values`` (each value on its own), ``semantic`` (across
keys; it runs ``build``, ``signing``, ``scan``, ``perf`` and ``matrix``). Every check reports
into one collector, ``yamlsafe.Problems`` (images.lock's checks too): one ConfigError per
problem, at its key's line."""
