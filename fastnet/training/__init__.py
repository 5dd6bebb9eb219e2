"""Training of modules: the Trainer, its callbacks and checkpoints."""
