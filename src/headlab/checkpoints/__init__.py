"""Checkpoints, one owner: what a checkpoint was trained with (``identity``), the run config
it carries (``config``), how it is written (``io``: atomic files, at epoch ends only), the RNG
state it carries so a resume continues exactly (``rng``), and where it lies and whether a
path is one at all (``files``).

May import: ``errors``, ``files``, Lightning. Never ``models``, ``run`` or ``sweeps``.
"""
