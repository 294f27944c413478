"""``python -m svc_campaign``: run the campaign service (same as ``qiming serve campaign``)."""

from svc_common.cli import main

if __name__ == "__main__":
    main(["serve", "campaign"])
