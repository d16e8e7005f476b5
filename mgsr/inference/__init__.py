"""Running a generator on real inputs: ``core`` is the one tensor-level path (border padding, noise per level
and region, tiles, crop) that every entry point uses; ``pictures`` adapts decoded images, PIL images and numpy
arrays to it."""
