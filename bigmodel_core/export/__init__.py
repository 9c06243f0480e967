"""Export an experiment as one standalone, readable PyTorch training script.

``export_script(config)`` writes a script that needs only torch plus what its dataset
comes from (numpy, Pillow and the bundled fonts for the rendered digits, letters and
shapes; scikit-learn for the real digits). It never imports ``bigmodel_core``.

The script is assembled from the engine's own source: the data generators
(``data/seeding.py``, ``warps.py``, ``glyphs.py``, ``shapes.py``, ``sequences.py``,
``real_digits.py``, ``augment.py``), ``SeededDropout`` (``nn/seeded_dropout.py``) and the
training loop (``training/plain_loop.py``, with ``training/memory_format.py``: channels_last
on CPU, as the engine trains) are copied with ``inspect.getsource``. Only the
``Net`` class for the learner's design, the config literal and a few lines that bind the
dataset are generated. The layers are created in the same order as the engine's after
``torch.manual_seed(seed)``, so the initial weights are identical, and the loop draws from
the same seeded generators, so on CPU the script prints the same metrics as the
playground. The tests run every preset's script and compare.

CLI: ``python -m bigmodel_core export-code CONFIG -o script.py``.

Three modules: ``copied`` (the engine source the script copies, and the dataset binding),
``model_code`` (the generated ``Net``) and ``script`` (the assembled script, and writing it).
"""

from .copied import COPIED_MODULES
from .script import export_script, write_script

__all__ = ["export_script", "write_script", "COPIED_MODULES"]
