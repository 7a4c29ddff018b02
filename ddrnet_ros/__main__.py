"""``python -m ddrnet_ros COMMAND ...``: the same as the ``ddrnet-ros`` command."""

import sys

from .commands import main

sys.exit(main())
