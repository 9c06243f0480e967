"""What Home offers, grouped for a learner: human titles for the presets and lessons, ids second.

Plain data (no streamlit, no torch): every preset in assets/presets/ appears once, either as a
card of its own or as the starting experiment of a lesson (a test checks both ways), so a new
preset needs a title here before Home can show it.
"""

from __future__ import annotations

from typing import NamedTuple

FIRST_PRESET = "quickstart_cnn"  # what the "Train your first CNN" button loads and starts


class Entry(NamedTuple):
    kind: str  # "preset" (opens on the Build page) or "lesson" (opens its lesson)
    name: str  # the preset or lesson id
    title: str


class Group(NamedTuple):
    title: str
    caption: str
    entries: tuple[Entry, ...]


GROUPS: tuple[Group, ...] = (
    Group("Start here", "A first model to build, train and look inside.", (
        Entry("preset", "quickstart_cnn", "A small CNN that reads printed digits"),
        Entry("lesson", "first_cnn", "Lesson: your first CNN, step by step"),
    )),
    Group("Lessons", "Short guided experiments: each opens its page with the experiment loaded and its steps shown.", (
        Entry("lesson", "adam_vs_sgd", "Adam against plain SGD"),
        Entry("lesson", "overfitting_dropout", "Overfitting, and what dropout does about it"),
        Entry("lesson", "rnn_vs_lstm", "Why an LSTM beats a plain RNN on long sequences"),
        Entry("lesson", "residual_deep", "Why residual networks train when deep"),
        Entry("lesson", "scaling_size_compute", "What 'big model' means: loss against size and compute"),
    )),
    Group("Models from the course text",
          "The CNN and the LSTM of the introductory text on large AI models that this playground follows, "
          "with that text's mistakes fixed (the Concepts page shows what was wrong).", (
              Entry("preset", "textbook_cnn", "The course text's CNN, fixed"),
              Entry("preset", "textbook_lstm", "The course text's 2-layer LSTM, fixed"),
              Entry("preset", "deep_residual_cnn", "Eight conv blocks with residual skips (ResNet's idea)"),
          )),
    Group("Sequences", "Recurrent networks reading one step at a time.", (
        Entry("preset", "lstm_sequential_digits", "An LSTM reads handwritten digits row by row"),
        Entry("preset", "gru_adding", "A GRU adds two marked numbers in a long sequence"),
        Entry("preset", "sine_forecast", "An LSTM forecasts a noisy sine wave"),
    )),
    Group("Transfer", "Start from weights trained on another task (the Fine-tune page).", (
        Entry("lesson", "transfer_10_labels", "Transfer learning with 10 labels"),
        Entry("lesson", "distill_small_student", "Distillation: a small student learns from a big teacher"),
    )),
)
