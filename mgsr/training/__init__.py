"""``mgsr train``: ``run`` (the entry point and run folder), ``trainer`` (the loop), ``step`` (one optimisation
step, eq. 7), ``validation`` (scores and sample grids), ``logbook`` (metrics.jsonl, TensorBoard), ``data`` (the
resumable patch stream), ``schedule`` (epochs in steps), ``checkpoint`` (atomic, weights-only checkpoints),
``distributed`` (torch.distributed)."""
