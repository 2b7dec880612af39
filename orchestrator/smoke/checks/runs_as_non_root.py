"""runs-as-non-root (minimal): the default user's uid, for the verdict to compare."""

import os

print(os.getuid())
