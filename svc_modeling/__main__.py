"""``python -m svc_modeling``: run the modeling service (same as ``qiming serve modeling``)."""

from svc_common.cli import main

if __name__ == "__main__":
    main(["serve", "modeling"])
