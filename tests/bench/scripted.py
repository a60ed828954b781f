"""A tiny Qwen2 whose greedy answer is a given text: tests of how generation ends, on every decoding path."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def scripted_model(tiny_model_dir: Path, prompt: str, answer: str) -> tuple[Any, Any, list[int]]:
    """(model, tokenizer, the answer's ids): greedy decoding after `prompt` writes `answer`, then writes it again from
    its first token, until the token limit. Attention and MLP outputs are zeroed, so each next token depends on the
    current one only: the last prompt token and the answer's tokens must all be different."""
    import torch
    from transformers import AutoConfig, Qwen2ForCausalLM

    from codetune.models import load_tokenizer

    tok = load_tokenizer(str(tiny_model_dir))
    prompt_ids = tok(prompt, add_special_tokens=False)["input_ids"]
    ids = tok(prompt + answer, add_special_tokens=False)["input_ids"]
    assert ids[: len(prompt_ids)] == prompt_ids, (
        "the prompt's last token must not merge with the answer's first"
    )
    chain = ids[len(prompt_ids) - 1 :]
    config = AutoConfig.from_pretrained(tiny_model_dir)
    assert len(set(chain)) == len(chain) <= config.hidden_size, "the answer's tokens must all be different"
    config.tie_word_embeddings = False
    model = Qwen2ForCausalLM(config).eval()
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        model.lm_head.weight.zero_()
        following = chain[1:] + [chain[1]]
        for i, (token, after) in enumerate(zip(chain, following, strict=True)):
            model.model.embed_tokens.weight[token].zero_()
            model.model.embed_tokens.weight[token, i] = 1.0
            model.lm_head.weight[after, i] = 10.0
    model.generation_config.eos_token_id = config.eos_token_id
    model.generation_config.pad_token_id = config.pad_token_id
    return model, tok, chain[1:]
