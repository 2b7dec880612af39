"""What to build: ``plan`` (the planned images and their tags), ``build_cache``
(BuildKit cache refs), ``epoch`` (SOURCE_DATE_EPOCH)."""
