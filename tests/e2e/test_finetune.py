"""The Fine-tune page in a real browser: head only against scratch at small label budgets; a refused upload."""

from __future__ import annotations

import io

import pytest
import torch

from tests.e2e.helpers import click_button, open_page, shot, wait_for_text, wait_idle

pytestmark = pytest.mark.e2e

# names of the strategies drawn in the accuracy-against-budget figure, with their measured budgets
BUDGET_JS = """() => {
  const p = [...document.querySelectorAll('.js-plotly-plot')]
      .find(el => ((el.layout || {}).title || {}).text?.includes('against the label budget'));
  if (!p) return {};
  const out = {};
  p.data.filter(t => t.showlegend !== false && (t.x || []).length).forEach(t => { out[t.name] = t.x; });
  return out;
}"""


def go_to_finetune(page, app_url) -> None:
    open_page(page, app_url)
    page.get_by_role("link", name="Fine-tune", exact=True).first.click()
    wait_for_text(page, "1. Pretrained weights")
    wait_idle(page)


def test_head_only_against_scratch_at_small_budgets(page, app_url):
    go_to_finetune(page, app_url)
    wait_for_text(page, "sha256 matches the card")  # letters_cnn, checked against its card
    epochs = page.get_by_role("spinbutton", name="epochs")
    epochs.fill("2")
    epochs.press("Enter")
    wait_idle(page)
    for tag in ("last:1", "full", "20", "all"):  # keep head + scratch at 1 and 5 labels per class
        page.get_by_role("button", name=f"Remove {tag}", exact=True).click()
        wait_idle(page)
    click_button(page, "Run experiment (4 runs)")
    wait_for_text(page, "4 completed", timeout=240)
    wait_idle(page)
    page.wait_for_function(f"() => Object.keys(({BUDGET_JS})()).length === 2", timeout=30_000)
    curves = page.evaluate(BUDGET_JS)
    assert sorted(curves) == ["from scratch", "head only (linear probe)"]
    assert all(sorted(xs) == [1, 5] for xs in curves.values())
    wait_for_text(page, "Inside a fine-tuned model")
    page.evaluate("() => (document.querySelector('[data-testid=\"stMain\"]') || window).scrollTo(0, 0)")
    shot(page, "finetune")


def test_a_pytorch_pickle_upload_is_refused_on_the_page(page, app_url, tmp_path):
    go_to_finetune(page, app_url)
    page.get_by_role("combobox", name="Start from").click()
    page.get_by_role("option").filter(has_text="upload my own weights").click()
    wait_idle(page)
    buf = io.BytesIO()
    torch.save({"blocks.0.conv.weight": torch.zeros(16, 1, 3, 3)}, buf)
    bad = tmp_path / "model.pt"
    bad.write_bytes(buf.getvalue())
    page.locator("[data-testid='stFileUploader']").filter(has_text="Weights (.safetensors only").locator(
        "[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(bad))
    wait_for_text(page, "model.pt was refused")
    wait_for_text(page, "only .safetensors files are accepted")
    assert page.get_by_role("button", name="Fine-tune", exact=True).is_disabled()
