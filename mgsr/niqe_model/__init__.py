"""NIQE's pristine model (data only), from the LIVE NIQE release: see NOTICE.md and COPYRIGHT-NIQE.txt."""
