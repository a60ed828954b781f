"""Two LoRA steps on the real 0.5B catalog model: the adapter saves, loads and exports merged (slow)."""

from __future__ import annotations

import json

import pytest
from sft_fixtures import fast_config, make_splits


@pytest.mark.slow
def test_real_model_two_steps_saves_a_loadable_adapter_that_exports(real_model_spec, tmp_path):
    import torch
    from peft import PeftModel

    from codetune.models import load_model
    from codetune.models.export import merge_adapter
    from codetune.train import train

    cfg = fast_config(
        max_steps=2, micro_batch_size=1, effective_batch_size=2, max_length=256, eval_steps=2, save_steps=2
    )
    result = train(real_model_spec, make_splits(n_train=4, n_eval=2), cfg, tmp_path, progress=False)

    assert result.final_step == 2
    assert [r["step"] for r in result.log] == [2]
    assert 0 < result.log[0]["val_loss"] < 10  # a trained model, not a random one (~ln(151k) = 11.9)
    info = json.loads((tmp_path / "run.json").read_text())
    print(f"\n0.5B on {info['device']}: {info['train_tokens_per_second']} train tokens/s (incl. eval + save)")
    base, _ = load_model(real_model_spec, device="cpu")
    model = PeftModel.from_pretrained(base, tmp_path / "checkpoint-2")
    lora = [n for n, _ in model.named_parameters() if "lora_B" in n]
    assert len(lora) == 24 * 7  # every attention and MLP projection of the 24 layers
    weights = dict(model.named_parameters())
    assert any(torch.count_nonzero(weights[n]) > 0 for n in lora)  # B starts at zero; training moved it

    # the merged export answers as the adapter model does (float32: the same greedy tokens)
    merged_dir = merge_adapter(
        real_model_spec, tmp_path / "checkpoint-2", tmp_path / "merged", dtype="float32"
    ).folder
    merged, tokenizer = load_model(str(merged_dir), device="cpu")
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Print the number 7."}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    answers = [
        m.generate(**prompt, max_new_tokens=16, do_sample=False)[0].tolist() for m in (model.eval(), merged)
    ]
    assert answers[0] == answers[1]
    assert not any("lora" in n for n, _ in merged.named_parameters())
