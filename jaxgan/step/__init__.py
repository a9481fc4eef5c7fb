"""The step: `GAN`/`GANState` (`state`), `make_train_step` (`train`), and what they compose.

It builds on the pure maths (`jaxgan.losses`, `jaxgan.penalties`, `jaxgan.regularizers`,
`jaxgan.augment`, `jaxgan.schedules`) and the models, and knows nothing of data, metrics or runs.
`train` composes `updates` (the critic update, the generator update, the EMA) and
`regularization` (the critic's penalties, bCR, LeCam, ADA's control), after `options` has checked
every option once. `critic` scores real and fake batches, `labels` draws and packs class labels,
`packing` stacks PacGAN groups, `sharding` places state and batches on a device mesh.
"""
