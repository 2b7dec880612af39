"""images.yaml: ``model`` (the frozen models and ``Loaded``: leaves, importing no
loader or check), ``loader`` (read, parse, validate: the only importer of ``checks``),
``checks`` (shape, values, semantic, build, signing, matrix), ``matrix`` (the cells),
``yamlsafe`` (YAML with lines), ``grammar`` (names and references), ``eol``.
No re-exports: import the module that owns a name."""
