import sys

from convssm.cli.main import main

sys.exit(main())
