"""Evaluations: of boundaries and edits (InterFaceGAN's tables), and of predictors on real photos.

- :mod:`~facesteer.evaluation.metrics`: cosine matrix, score correlations, edit effects, identity kept.
- :mod:`~facesteer.evaluation.interfacegan`: ``evaluate_run``, the whole evaluation of a sampled run.
- :mod:`~facesteer.evaluation.report`: its markdown report.
- :mod:`~facesteer.evaluation.real_photos`: scorer and identity checks on labelled photos.
"""
