"""Tests for the dataset registry (bigmodel_core.data)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from bigmodel_core import data
from bigmodel_core.data import (
    DATASET_NAMES,
    DatasetError,
    augment_images,
    build_dataset,
    dataset_info,
    real_digits,
    sample_indices_per_class,
)

# Small sizes keep the suite fast; 60/40 still holds every one of the 26 letters.
TRAIN, VAL = 60, 40
CLASSIFICATION = [n for n in DATASET_NAMES if dataset_info(n).task == "classification"]
REAL_DIGITS = ["handwritten_digits", "sequential_digits"]


def _fresh(name: str, **kwargs: object) -> data.Dataset:
    """Build bypassing the cache, so determinism is really exercised."""
    data.clear_dataset_cache()
    return build_dataset(name, **kwargs)  # type: ignore[arg-type]


def test_names_are_the_published_tuple() -> None:
    assert DATASET_NAMES == (
        "synthetic_digits",
        "shapes",
        "handwritten_digits",
        "sine_wave",
        "adding_problem",
        "sequential_digits",
        "synthetic_letters",
    )


@pytest.mark.parametrize("name", DATASET_NAMES)
def test_dataset_matches_its_info(name: str) -> None:
    info = dataset_info(name)
    ds = build_dataset(name, train_size=TRAIN, val_size=VAL, seed=0)
    assert ds.info == info
    assert info.name == name and info.description
    for x, y, n in ((ds.x_train, ds.y_train, TRAIN), (ds.x_val, ds.y_val, VAL)):
        assert x.dtype == torch.float32
        assert tuple(x.shape) == (n, *info.input_shape)
        assert not torch.isnan(x).any()
        if info.kind == "image":
            assert len(info.input_shape) == 3
            assert x.min() >= 0.0 and x.max() <= 1.0
        else:
            assert len(info.input_shape) == 2
            assert x.abs().max() < 10.0  # roughly unit scale
        if info.task == "classification":
            assert y.dtype == torch.int64 and tuple(y.shape) == (n,)
            assert info.num_outputs == len(info.class_names)
            # every class present, and nothing out of range
            assert torch.equal(torch.unique(y), torch.arange(info.num_outputs))
        else:
            assert y.dtype == torch.float32 and tuple(y.shape) == (n, 1)
            assert info.num_outputs == 1 and info.class_names == ()
            assert not torch.isnan(y).any()


@pytest.mark.parametrize("name", DATASET_NAMES)
def test_dataset_is_deterministic_in_the_seed(name: str) -> None:
    a = _fresh(name, train_size=TRAIN, val_size=VAL, seed=3)
    b = _fresh(name, train_size=TRAIN, val_size=VAL, seed=3)
    c = _fresh(name, train_size=TRAIN, val_size=VAL, seed=4)
    for field in ("x_train", "y_train", "x_val", "y_val"):
        assert torch.equal(getattr(a, field), getattr(b, field)), field
    assert not torch.equal(a.x_train, c.x_train)
    assert not torch.equal(a.x_val, c.x_val)


def test_build_is_cached() -> None:
    a = build_dataset("synthetic_digits", train_size=TRAIN, val_size=VAL, seed=0)
    b = build_dataset("synthetic_digits", train_size=TRAIN, val_size=VAL, seed=0)
    assert a is b
    # the default parameter and the same value given explicitly share an entry
    c = build_dataset("sine_wave", train_size=TRAIN, val_size=VAL, seed=0)
    assert (
        build_dataset("sine_wave", train_size=TRAIN, val_size=VAL, seed=0, seq_len=40)
        is c
    )


def test_validation_set_does_not_depend_on_train_size() -> None:
    small = build_dataset("synthetic_digits", train_size=10, val_size=VAL, seed=0)
    large = build_dataset("synthetic_digits", train_size=100, val_size=VAL, seed=0)
    assert torch.equal(small.x_val, large.x_val)
    real_small = build_dataset(
        "handwritten_digits", train_size=10, val_size=VAL, seed=0
    )
    real_large = build_dataset(
        "handwritten_digits", train_size=100, val_size=VAL, seed=0
    )
    assert torch.equal(real_small.x_val, real_large.x_val)


def test_real_digits_are_scikit_learns_digits_read_without_importing_it() -> None:
    from sklearn.datasets import load_digits  # noqa: PLC0415 - the reference

    images, labels = real_digits.load_sklearn_digits()
    bunch = load_digits()
    assert images.dtype == torch.float32 and labels.dtype == torch.int64
    assert torch.equal(images, torch.as_tensor(bunch.images, dtype=torch.float32) / 16.0)
    assert torch.equal(labels, torch.as_tensor(bunch.target))
    # loading them in a fresh interpreter leaves scikit-learn (and the SciPy it imports) out of the process
    code = ("import sys; from bigmodel_core.data.real_digits import load_sklearn_digits; load_sklearn_digits(); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sklearn', 'scipy')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("name", REAL_DIGITS)
def test_real_digits_split_is_disjoint_and_complete(name: str) -> None:
    kwargs = {"image_size": 8} if name == "handwritten_digits" else {}
    ds = build_dataset(name, train_size=1500, val_size=297, seed=0, **kwargs)
    assert dataset_info(name).max_size == 1797
    train = {tuple(row.tolist()) for row in ds.x_train.reshape(1500, -1)}
    val = {tuple(row.tolist()) for row in ds.x_val.reshape(297, -1)}
    # the 1,797 scikit-learn digits are all distinct, so rows identify samples
    assert len(train) == 1500 and len(val) == 297
    assert not train & val
    # stratified: every class holds close to a tenth of the validation set
    assert torch.bincount(ds.y_val, minlength=10).min() >= 29


def test_handwritten_digits_image_size() -> None:
    native = build_dataset(
        "handwritten_digits", train_size=20, val_size=20, seed=0, image_size=8
    )
    big = build_dataset("handwritten_digits", train_size=20, val_size=20, seed=0)
    assert native.x_train.shape[1:] == (1, 8, 8)
    assert big.x_train.shape[1:] == (1, 28, 28)
    assert dataset_info("handwritten_digits", image_size=8).input_shape == (1, 8, 8)
    # same samples, just resized
    assert torch.equal(native.y_train, big.y_train)
    assert native.x_train.max() == 1.0  # scaled from 0..16


def test_sequential_digits_are_image_rows() -> None:
    seq = build_dataset("sequential_digits", train_size=20, val_size=20, seed=0)
    assert seq.x_train.shape[1:] == (8, 8)
    assert seq.x_train.min() >= 0.0 and seq.x_train.max() <= 1.0


@pytest.mark.parametrize("seq_len", [5, 51, 200])
def test_adding_problem_structure(seq_len: int) -> None:
    ds = build_dataset(
        "adding_problem", train_size=200, val_size=10, seed=0, seq_len=seq_len
    )
    assert dataset_info("adding_problem", seq_len=seq_len).input_shape == (seq_len, 2)
    values, markers = ds.x_train[..., 0], ds.x_train[..., 1]
    half = seq_len // 2
    assert torch.all(markers[:, :half].sum(1) == 1)
    assert torch.all(markers[:, half:].sum(1) == 1)
    assert torch.allclose((values * markers).sum(1, keepdim=True), ds.y_train)
    assert values.min() >= 0.0 and values.max() <= 1.0


def test_sine_wave_is_predictable_but_not_by_the_mean() -> None:
    ds = build_dataset("sine_wave", train_size=2000, val_size=500, seed=0)
    assert ds.x_train.shape[1:] == (40, 1)
    mean_mse = ((ds.y_val - ds.y_train.mean()) ** 2).mean()

    # Even a linear fit on the last few noisy steps beats the mean by far,
    # so the task is learnable; the mean predictor sits near E[A^2]/2.
    def features(x: torch.Tensor) -> torch.Tensor:
        last = x[:, -6:, 0]
        return torch.cat([last, torch.ones(len(x), 1)], dim=1)

    coef = torch.linalg.lstsq(features(ds.x_train), ds.y_train).solution
    linear_mse = ((features(ds.x_val) @ coef - ds.y_val) ** 2).mean()
    assert mean_mse > 0.3
    assert linear_mse < 0.2 * mean_mse


@pytest.mark.parametrize("name", CLASSIFICATION)
def test_majority_class_predictor_is_poor(name: str) -> None:
    ds = build_dataset(name, train_size=300, val_size=200, seed=0)
    majority = torch.bincount(ds.y_train).argmax()
    accuracy = (ds.y_val == majority).float().mean().item()
    assert accuracy < 0.5


# ---------------------------------------------------------------- errors


def test_unknown_name_lists_the_valid_names() -> None:
    with pytest.raises(DatasetError, match="unknown dataset 'mnist'") as err:
        dataset_info("mnist")
    for name in DATASET_NAMES:
        assert name in str(err.value)
    with pytest.raises(DatasetError, match="choose one of"):
        build_dataset("mnist", train_size=1, val_size=1, seed=0)
    assert issubclass(DatasetError, ValueError)


@pytest.mark.parametrize("name", REAL_DIGITS)
def test_too_many_real_digits(name: str) -> None:
    with pytest.raises(DatasetError, match="1,797") as err:
        build_dataset(name, train_size=1500, val_size=400, seed=0)
    assert "1,500" in str(err.value) and "400" in str(err.value)


@pytest.mark.parametrize("sizes", [(0, 10), (10, 0), (-5, 10)])
def test_sizes_must_be_positive(sizes: tuple[int, int]) -> None:
    with pytest.raises(DatasetError, match="at least 1"):
        build_dataset("shapes", train_size=sizes[0], val_size=sizes[1], seed=0)


def test_image_size_only_for_handwritten_digits() -> None:
    with pytest.raises(
        DatasetError, match="image_size.*'synthetic_digits'.*handwritten_digits"
    ):
        dataset_info("synthetic_digits", image_size=28)
    with pytest.raises(DatasetError, match="image_size"):
        build_dataset("sine_wave", train_size=5, val_size=5, seed=0, image_size=8)
    with pytest.raises(DatasetError, match="must be 8 or 28, got 16"):
        dataset_info("handwritten_digits", image_size=16)


def test_seq_len_only_for_generated_sequences() -> None:
    with pytest.raises(
        DatasetError, match="seq_len.*'sequential_digits'.*sine_wave, adding_problem"
    ):
        dataset_info("sequential_digits", seq_len=8)
    with pytest.raises(DatasetError, match="seq_len"):
        build_dataset("shapes", train_size=5, val_size=5, seed=0, seq_len=10)
    for bad in (4, 1001):
        with pytest.raises(DatasetError, match="between 5 and 1000"):
            dataset_info("adding_problem", seq_len=bad)
    assert dataset_info("sine_wave", seq_len=1000).input_shape == (1000, 1)


# ---------------------------------------------------------------- augment_images


def test_augment_images() -> None:
    x = build_dataset("synthetic_digits", train_size=32, val_size=1, seed=0).x_train
    before = x.clone()
    a = augment_images(x, torch.Generator().manual_seed(7))
    b = augment_images(x, torch.Generator().manual_seed(7))
    c = augment_images(x, torch.Generator().manual_seed(8))
    assert a.shape == x.shape and a.dtype == x.dtype
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert not torch.equal(a, x)
    assert torch.equal(x, before)  # the input is left alone
    assert a.min() >= 0.0 and a.max() <= 1.0 + 1e-6
    # small transforms: the augmented digit still overlaps its original a lot
    overlap = (a * x).sum((1, 2, 3)) / (x * x).sum((1, 2, 3))
    assert overlap.mean() > 0.4


def test_augment_images_other_shapes() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(3, 2, 20, 30, dtype=torch.float64)
    out = augment_images(x, gen)
    assert out.shape == x.shape and out.dtype == torch.float64
    assert augment_images(x[:0], gen).shape == (0, 2, 20, 30)
    with pytest.raises(ValueError):
        augment_images(torch.zeros(4, 28, 28), gen)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_augment_images_cuda_with_cpu_generator() -> None:
    x = torch.rand(8, 1, 28, 28)
    cpu = augment_images(x, torch.Generator().manual_seed(1))
    gpu = augment_images(x.cuda(), torch.Generator().manual_seed(1))
    assert gpu.is_cuda
    assert torch.allclose(cpu, gpu.cpu(), atol=1e-5)


# ---------------------------------------------------------------- label budgets


def test_sample_indices_per_class() -> None:
    y = build_dataset(
        "handwritten_digits", train_size=500, val_size=100, seed=0
    ).y_train
    idx = sample_indices_per_class(y, 5, seed=1)
    assert idx.dtype == torch.int64 and idx.numel() == 50
    assert torch.equal(torch.bincount(y[idx], minlength=10), torch.full((10,), 5))
    assert torch.equal(idx, sample_indices_per_class(y, 5, seed=1))
    assert not torch.equal(idx, sample_indices_per_class(y, 5, seed=2))
    assert idx.unique().numel() == 50
    # a bigger budget contains the smaller one
    more = sample_indices_per_class(y, 8, seed=1)
    assert set(idx.tolist()) <= set(more.tolist())


def test_sample_indices_per_class_limits() -> None:
    y = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2])
    assert sample_indices_per_class(y, 2, seed=0).numel() == 6
    with pytest.raises(DatasetError, match="class 1 has only 2"):
        sample_indices_per_class(y, 3, seed=0)
    with pytest.raises(DatasetError, match="at least 1"):
        sample_indices_per_class(y, 0, seed=0)
