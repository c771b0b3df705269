"""The course as assignments for a class: nbgrader marks in the notebooks (:mod:`.marking`) and the student
edition with its autograding (:mod:`.edition`); ``python -m cfcam.teaching.assignments`` runs both
(docs/teaching.md)."""
