"""svc_campaign: event-triggered journeys, channels, caps, consent, experiments."""
