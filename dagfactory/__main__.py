"""Allow ``python -m dagfactory``."""

from dagfactory.cli import main

raise SystemExit(main())
