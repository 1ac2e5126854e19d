"""Checkpoints of the reference COGMEN code, brought into bridging (``bridging-import-cogmen``).

- :mod:`~bridging.cogmen_import.read`: read a reference checkpoint without running any of it
  (an allow-list unpickler with inert stand-ins for the reference and PyG classes) and map
  its weights onto :class:`bridging.models.cogmen.COGMEN` (``pad_mode="reference"``);
- :mod:`~bridging.cogmen_import.convert`: write the result as a bridging teacher checkpoint
  that bridging-eval, bridging-predict and a distilled student accept.
"""
