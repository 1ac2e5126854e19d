"""Infrastructure every layer may use, importing nothing else of bridging: atomic file
writes and input checks (:mod:`~bridging.utils.files`), the error of bad input data
(:mod:`~bridging.utils.errors`), where the Hydra configs live (:mod:`~bridging.utils.paths`).
"""
