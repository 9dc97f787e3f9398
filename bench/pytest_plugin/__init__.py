"""The pytest front end: the ``pytest11`` plugin (:mod:`.plugin`) and the matrix it collects (:mod:`.matrix`)."""
