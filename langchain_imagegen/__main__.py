"""``python -m langchain_imagegen``: the command line."""

import sys

from langchain_imagegen.cli import main

sys.exit(main())
