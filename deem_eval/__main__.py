"""`python -m deem_eval ...` (also what torchrun / accelerate launch -m deem_eval run)."""

import sys

from deem_eval.cli import main

sys.exit(main())
