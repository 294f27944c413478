"""Taking customers out of journeys in bulk: everyone in a stopped journey, or one erased customer everywhere
(the statements are the store's: ``svc_campaign.store._participants.exit_in_flight``)."""

from svc_campaign.store._participants import exit_in_flight

__all__ = ["exit_in_flight"]
