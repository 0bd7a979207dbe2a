"""Generate a tiny but real llama-architecture GGUF with the ``gguf`` package.

Two layers, 64-wide, a SentencePiece vocabulary of control tokens plus the 256 byte tokens (so
any UTF-8 text, Japanese included, tokenizes by byte fallback), random f32 weights from a fixed
seed, and a ChatML chat template. llama.cpp loads it in milliseconds and generates from it; the
output is meaningless lowercase ASCII (the output matrix only favours ``a``–``z`` and space,
so replies are valid UTF-8), which is all the backend tests need.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

N_EMBD = 64
N_HEAD = 4
N_FF = 128
N_LAYER = 2
N_CTX_TRAIN = 4096
SPECIAL = ["<unk>", "<s>", "</s>"]


def make_tiny_gguf(
    path: Path, *, seed: int = 0, chat_template: str | None = CHATML_TEMPLATE
) -> Path:
    """Write the tiny model to ``path`` and return it."""
    import gguf

    rng = np.random.default_rng(seed)
    tokens = [t.encode() for t in SPECIAL] + [f"<0x{b:02X}>".encode() for b in range(256)]
    n_vocab = len(tokens)
    scores = [0.0] * n_vocab
    types = [int(gguf.TokenType.UNKNOWN), int(gguf.TokenType.CONTROL), int(gguf.TokenType.CONTROL)]
    types += [int(gguf.TokenType.BYTE)] * 256

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("kurabe-tiny-test")
    writer.add_context_length(N_CTX_TRAIN)
    writer.add_embedding_length(N_EMBD)
    writer.add_block_count(N_LAYER)
    writer.add_feed_forward_length(N_FF)
    writer.add_head_count(N_HEAD)
    writer.add_head_count_kv(N_HEAD)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_dimension_count(N_EMBD // N_HEAD)
    writer.add_file_type(int(gguf.LlamaFileType.ALL_F32))
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    if chat_template is not None:
        writer.add_chat_template(chat_template)

    def weight(*shape: int, scale: float = 0.08) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    writer.add_tensor("token_embd.weight", weight(n_vocab, N_EMBD, scale=0.5))
    writer.add_tensor("output_norm.weight", np.ones(N_EMBD, dtype=np.float32))
    output = np.zeros((n_vocab, N_EMBD), dtype=np.float32)
    readable = [3 + b for b in b"abcdefghijklmnopqrstuvwxyz "]
    output[readable] = weight(len(readable), N_EMBD, scale=1.0)
    writer.add_tensor("output.weight", output)
    for layer in range(N_LAYER):
        prefix = f"blk.{layer}"
        writer.add_tensor(f"{prefix}.attn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
        writer.add_tensor(f"{prefix}.attn_q.weight", weight(N_EMBD, N_EMBD))
        writer.add_tensor(f"{prefix}.attn_k.weight", weight(N_EMBD, N_EMBD))
        writer.add_tensor(f"{prefix}.attn_v.weight", weight(N_EMBD, N_EMBD))
        writer.add_tensor(f"{prefix}.attn_output.weight", weight(N_EMBD, N_EMBD))
        writer.add_tensor(f"{prefix}.ffn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
        writer.add_tensor(f"{prefix}.ffn_gate.weight", weight(N_FF, N_EMBD))
        writer.add_tensor(f"{prefix}.ffn_up.weight", weight(N_FF, N_EMBD))
        writer.add_tensor(f"{prefix}.ffn_down.weight", weight(N_EMBD, N_FF))

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


if __name__ == "__main__":  # pragma: no cover - handy for trying the app by hand
    import sys

    print(make_tiny_gguf(Path(sys.argv[1] if len(sys.argv) > 1 else "tiny.gguf")))
