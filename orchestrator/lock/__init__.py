"""images.lock: ``lockfile`` (the lock: its model, read/write/diff), ``checks`` (its validation),
``sources`` (resolving every pin from the network)."""
