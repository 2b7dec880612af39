"""The validators of images.yaml, run by ``config.loader`` in this order: ``shape``
(keys and scalar types), ``values`` (each value on its own), ``semantic`` (across
keys; it runs ``build``, ``signing`` and ``matrix``)."""
