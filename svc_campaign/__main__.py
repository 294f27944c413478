"""``python -m svc_campaign [--config FILE]``: the same as ``qiming serve campaign [--config FILE]``."""

import sys

from svc_common.cli import main

if __name__ == "__main__":
    main(["serve", "campaign", *sys.argv[1:]])
