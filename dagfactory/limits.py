"""How large a config (or defaults file) may be, without importing the loader.

The render cache and the batch check a file's size before reading it (a 1.5 GB config
read whole for its digest took 1.5 GB of memory); importing
:mod:`dagfactory.compile.load` for the number would import PyYAML into every command.
"""

MAX_CONFIG_BYTES = 1_000_000
