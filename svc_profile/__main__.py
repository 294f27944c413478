"""``python -m svc_profile [--config FILE]``: the same as ``qiming serve profile [--config FILE]``."""

import sys

from svc_common.cli import main

if __name__ == "__main__":
    main(["serve", "profile", *sys.argv[1:]])
