"""Scoring super-resolved images: ``protocol`` (the PIRM-SR 2018 rules), ``pairing`` (which output goes with
which reference), ``scoring`` (per-image metrics -> a set's scores), ``upscalers`` (a model or bicubic as an
LR -> SR function), ``tradeoff`` (the perception-distortion sweep, its plot, and W calibration)."""
