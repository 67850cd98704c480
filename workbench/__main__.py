import sys

from workbench.malloc_tuning import limit_arenas

limit_arenas()  # before TensorFlow starts its threads: see workbench.malloc_tuning
from workbench.cli import main  # noqa: E402

sys.exit(main())
