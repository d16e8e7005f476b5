"""``mgsr train``: ``run`` (the entry point and run folder), ``trainer`` (the loop), ``step`` (one optimisation
step, eq. 7), ``validation`` (scores and sample grids), ``logbook`` (metrics.jsonl, TensorBoard), ``data`` (the
resumable patch stream), ``schedule`` (epochs in steps, the learning-rate decay), ``checkpoint`` (atomic,
weights-only checkpoints), ``mixed_precision`` (autocast, the fp16 scaler), ``loss_log`` (losses read back
without a synchronisation per step); torchrun's ranks are :mod:`mgsr.runtime.distributed`."""
