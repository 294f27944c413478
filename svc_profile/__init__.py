"""svc_profile: identities, 360° profiles, tags, lifecycle, real-time segments, funnels."""
