import sys

from faceexpr_cli.cli.app import main

sys.exit(main())
