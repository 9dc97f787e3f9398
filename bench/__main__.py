import sys

from distbench.cli.main import main

sys.exit(main())
