"""The output folder: what a render would change (:mod:`.plan`), doing it (:mod:`.writer`),
and what earlier renders compiled (:mod:`.cache`)."""
