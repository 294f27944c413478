"""``python -m svc_collect [--config FILE]``: the same as ``qiming serve collect [--config FILE]``."""

import sys

from svc_common.cli import main

if __name__ == "__main__":
    main(["serve", "collect", *sys.argv[1:]])
