import sys

from workbench.jobs.malloc_tuning import limit_arenas

limit_arenas()  # before TensorFlow starts its threads: see workbench.jobs.malloc_tuning
from workbench.cli.main import main  # noqa: E402

sys.exit(main())
