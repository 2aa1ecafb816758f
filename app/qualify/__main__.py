import sys

from app.qualify.cli import main

sys.exit(main())
