import sys

from workbench.cli.main import console

sys.exit(console())
