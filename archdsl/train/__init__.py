"""Training from specs (imports nothing heavy until a submodule is used).

    config.resolve_config(settings, overrides) -> TrainConfig   the spec's train section + command line
    loop.train(net, config, RunOptions(...)) -> Result           epochs, checkpoints, run folder, test
    evaluate.evaluate(net, checkpoint, EvalOptions(...))         top-1/top-5, confusion matrix
    data.load_dataset(source, input_shape, seed=...)             the dataset layer (digits, IDX, CIFAR, folders)

The CLI commands `archdsl train` and `archdsl evaluate` are thin wrappers over these.
"""
