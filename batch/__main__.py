"""`python -m batch` is `crm-batch`."""

import sys

from batch.cli import main

sys.exit(main())
