"""The run: one builder (`build`), inputs, the loop (`loop.train_and_evaluate`), checkpoints,
the workdir, writers, and the command lines (`main`, `generate`, `evaluate`).

It is the top layer: it composes the step, the data and the metrics, and nothing below imports
it. Configs (`jaxgan.config`) describe a run without loading JAX.
"""
