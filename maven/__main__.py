import sys

from maven.cli import main

sys.exit(main())
