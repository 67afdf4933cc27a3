"""A course of graded multihoming exercises: start a broken lab for a student, grade the running lab.

``course/NN-slug/`` holds an exercise (``exercise.yaml``: title, lab file, setup commands that break it,
hints), its checker (``checker.yaml``: named criteria with points) and the student sheet (README.md);
``course/solutions/NN-slug/`` the reference solution.  :mod:`.model` parses them, :mod:`.criteria` grades
a running lab, :mod:`.session` starts/resets a student's lab, :mod:`.verbs` is ``mhlab exercise``.
"""
