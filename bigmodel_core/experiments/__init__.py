"""Experiments made of several trainings: fair comparisons (``compare/``), fine-tuning (``finetune/``) and
knowledge distillation (``distill.py``)."""
