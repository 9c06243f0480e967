"""Training: the loop (``trainer.py``, with its events, callbacks, control, devices, optimizers and
gradient norms beside it), the loop the exported scripts copy (``plain_loop.py``), background jobs
and the shared pool (``job.py``, ``jobs.py``), the run store and the learner's workspace."""
