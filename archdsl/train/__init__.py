"""Training from specs (imports nothing heavy until a submodule is used).

    config.resolve_config(settings, overrides) -> TrainConfig   the spec's train section + command line
    loop.train(net, config, RunOptions(...)) -> Result           epochs, checkpoints, run folder, test
    evaluate.evaluate(net, checkpoint, EvalOptions(...))         top-1/top-5, confusion matrix
    data.load_dataset(source, input_shape, seed=...)             the dataset layer (digits, IDX, CIFAR in memory;
                                                                 image folders streamed: datasets/stream.py)
    runs.find_runs(root)                                         run folders, for `archdsl runs`

Around the loop: progress.py (tqdm bars, plain lines in logs), tensorboard.py (event files),
guard.py (divergence, accuracy at chance), tta.py (10-crop and flip evaluation).
The CLI commands `archdsl train`, `archdsl evaluate` and `archdsl runs` are thin wrappers over these.
"""
