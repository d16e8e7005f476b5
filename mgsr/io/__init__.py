"""Files in and out (toolkit): every byte mgsr reads from or writes to disk or the network passes here.

``images`` decodes and encodes every image mode mgsr accepts; ``png_text`` keeps oversized PNG text chunks from
costing the picture; ``metadata`` carries EXIF, DPI and text from input to output; ``video`` decodes and encodes
clips (PyAV); ``files`` lists image folders and globs; ``jobs`` plans a batch of outputs (what goes where, what is
done); ``overwrite`` refuses an output that is one of the inputs; ``atomic`` writes to a temporary name, then
renames; ``cache`` is the root of mgsr's cache folder; ``hub`` fetches weights on first use (hash-checked, atomic,
offline switch).
"""
