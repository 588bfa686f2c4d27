"""The frame-quality model (issue 11, item 3): frame + header → score 0–100, seeing, flags.

Layout (DESIGN.md, "Models inside the twin"): :mod:`.frames` renders a frame in memory,
:mod:`.features` turns a frame into the network's input, :mod:`.dataset` makes labelled
shards, :mod:`.model` the CNN, :mod:`.train`, :mod:`.evaluate`, :mod:`.baseline` (SEP),
:mod:`.stage` the :class:`~twin.pipeline.stage.PipelineStage`, ``weights/``.
"""
