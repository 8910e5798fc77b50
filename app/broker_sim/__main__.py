"""``python -m broker_sim`` runs the same command line as ``broker-sim``."""

import sys

from broker_sim.cli import main

sys.exit(main())
