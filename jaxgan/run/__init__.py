"""The run: one builder (`build`), inputs, the loop (`loop.train_and_evaluate`), checkpoints,
the workdir, writers, how a failed process exits (`exits`), and the code of the `generate` and
`evaluate` commands. The training command line is `jaxgan/main.py` (`python -m jaxgan.main`).

It is the top layer: it composes the step, the data and the metrics, and nothing below imports
it. Configs (`jaxgan.config`) describe a run without loading JAX.
"""
