"""Experiments made of several trainings: fair comparisons and fine-tuning."""
