"""The data layer, in three groups:

- here: the DataModule (:mod:`~bridging.data.datamodule`) and its types: the in-memory
  records of a corpus (:mod:`~bridging.data.records`), batches (:mod:`~bridging.data.batch`),
  the evaluation protocols (:mod:`~bridging.data.protocols`), the checks of a corpus
  (:mod:`~bridging.data.validate`) and a model's test predictions with their scores
  (:mod:`~bridging.data.predictions`);
- :mod:`bridging.data.formats`: the file formats (COGMEN, DialogueRNN, MELD, bridging's own
  native format), the allow-list unpickler and the one entry point that detects and reads them;
- :mod:`bridging.data.synthetic`: the synthetic corpora (generators and their calibration).

Imports go one way: ``datamodule`` -> ``synthetic`` -> ``formats`` -> the types.
"""
