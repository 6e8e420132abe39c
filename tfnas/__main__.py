import sys

from tfnas.cli import main

sys.exit(main())
