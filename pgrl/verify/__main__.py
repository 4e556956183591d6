"""``python -m pgrl.verify``: the same as ``pgrl verify``."""

import sys

from pgrl.errors import PgrlError
from pgrl.verify.report import main

try:
    sys.exit(main())
except PgrlError as error:  # as the pgrl CLI does: the message, no traceback, status 2
    print(f"error: {error}", file=sys.stderr)
    sys.exit(2)
