"""images.yaml: the models, leaves importing no loader or check: ``model`` (``ImagesConfig``,
the file as a whole, and ``Loaded``), one module per section (``axes``: the Literal types,
distros, pythons, variants, cell rules; ``tags``; ``build`` and the profiles; ``sources``;
``publish``, signing and scan) on ``base`` (the frozen model); ``loader`` (read, parse,
validate: the only importer of ``checks``), ``checks`` (shape, values, semantic, build, signing,
matrix), ``matrix`` (the cells), ``yamlsafe`` (YAML with lines), ``grammar`` (names and
references), ``eol``. No re-exports: import the module that owns a name."""
