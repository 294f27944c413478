"""``python -m svc_collect``: run the collect service (same as ``qiming serve collect``)."""

from svc_common.cli import main

if __name__ == "__main__":
    main(["serve", "collect"])
