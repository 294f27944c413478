"""``python -m svc_modeling [--config FILE]``: the same as ``qiming serve modeling [--config FILE]``."""

import sys

from svc_common.cli import main

if __name__ == "__main__":
    main(["serve", "modeling", *sys.argv[1:]])
