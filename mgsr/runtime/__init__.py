"""Where and how a computation runs (toolkit): :mod:`.devices` resolves ``--device`` and says which,
:mod:`.distributed` is a job spread over processes by torchrun (rank, device, what the ranks agree on).
"""
