"""The statistics behind svc_modeling, one module per question; plain numpy/pandas/scikit-learn/LightGBM
in, plain results out (no storage, no gRPC)."""
