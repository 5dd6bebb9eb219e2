"""Training of modules: the Trainer (``trainer``), its callbacks (``callbacks``,
public as ``fastnet.callbacks``), the shared training-loop core (``loop``) and the
optimizer-state codec of checkpoints (``checkpoint``)."""
