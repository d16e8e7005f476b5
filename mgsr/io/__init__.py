"""Files: ``images`` (decoding/encoding every image mode mgsr accepts), ``files`` (listing image folders and
globs), ``atomic`` (write to a temporary name, then rename), ``cache``
(the cache folder's root)."""
