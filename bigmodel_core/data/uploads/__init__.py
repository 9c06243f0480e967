"""A learner's own datasets: uploaded files in, datasets the registry serves out.

One module per job:

- ``reader``: the entry point, :func:`read_upload` (bytes and a file name) and
  :func:`read_upload_file` (the CLI's ``--data``), choosing the parser by the file's extension;
- ``archive``: a zip's members read into memory after every check on its directory
  (member count, unpacked size, paths, links, encryption, nested archives), counted while read;
- ``images``: a zip of class folders (PNG, JPEG, BMP) or an npz of arrays x and y, to
  N x 1 x H x W in [0, 1];
- ``sequences_csv``: a CSV in the wide or the long layout, to N x T x F, classes or regression;
- ``labels``: class names and indices, with the checks every class set meets;
- ``uploaded``: :class:`UploadedData`, the parsed dataset, and its name (a content hash);
- ``normalised``, ``split``: the normalised .npz file and the stratified split, copied into the
  exported scripts (stdlib, numpy, torch and the seeding module only);
- ``served``: serving a normalised file through the registry, and the data a stored run keeps;
- ``store``: the datasets one workspace owner keeps on disk;
- ``fit``: an image set resized to the side a model reads (a pretrained CNN's input).

The limits (file size, members, unpacked bytes, pixels per image, samples, rows, classes) are
``bigmodel_core.limits`` fields, so an operator tunes them with ``BIGMODEL_<NAME>`` variables.
Every refusal is one :class:`UploadedDataError` (a ValueError) whose message names the file
and the member, line or column at fault.
"""

from .errors import UploadedDataError
from .fit import fit_images
from .reader import read_upload, read_upload_file
from .served import (
    RUN_DATA_FILE,
    register_run_data,
    register_uploaded,
    run_data_files,
    serve_for_process,
    unregister_uploaded,
    uploaded_path,
)
from .split import split_uploaded
from .store import UploadStore
from .uploaded import UploadedData

__all__ = [
    "RUN_DATA_FILE",
    "UploadStore",
    "UploadedData",
    "UploadedDataError",
    "fit_images",
    "read_upload",
    "read_upload_file",
    "register_run_data",
    "register_uploaded",
    "run_data_files",
    "serve_for_process",
    "split_uploaded",
    "unregister_uploaded",
    "uploaded_path",
]
