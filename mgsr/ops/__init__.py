"""Numerical operations for the host and for plugins (public toolkit).

``imresize``: MATLAB-faithful bicubic resizing (the paper's S_down); ``color``: MATLAB's studio-range Y;
``local_stats``: Gaussian windows and local variance normalisation; ``contextual``: the contextual similarity
of Mechrez et al.  A plugin may import these; their signatures change only with a deprecation.
"""
