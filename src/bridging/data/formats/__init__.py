"""The corpus file formats, each read into (and most written from) a
:class:`~bridging.data.records.Corpus`: :mod:`~bridging.data.formats.cogmen`,
:mod:`~bridging.data.formats.dialoguernn`, :mod:`~bridging.data.formats.meld`,
:mod:`~bridging.data.formats.native`; the allow-list unpickler they share
(:mod:`~bridging.data.formats.safe_pickle`) and the entry point that detects a file's format
and reads it (:mod:`~bridging.data.formats.sources`)."""
