"""Bundled generator weights (data only).  The PIRM-SR 2018 files are LGPL-3.0: see NOTICE.md."""
