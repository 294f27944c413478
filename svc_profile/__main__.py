"""``python -m svc_profile``: run the profile service (same as ``qiming serve profile``)."""

from svc_common.cli import main

if __name__ == "__main__":
    main(["serve", "profile"])
