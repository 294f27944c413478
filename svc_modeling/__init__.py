"""svc_modeling: propensity, causal drivers, what-if, uplift, X+O fusion, AIPL."""
