"""Scoring super-resolved images: ``protocol`` (the PIRM-SR 2018 rules), ``scoring`` (which output goes with
which reference, per-image metrics -> a set's scores), ``upscalers`` (a model or bicubic as an LR -> SR
function), ``tradeoff`` (the perception-distortion sweep, its plot, and W calibration), ``curve`` (a model's
measured curve), ``adaptive_fit`` (``mgsr calibrate --adaptive``)."""
