"""Build a tiny random Llama TransformerBridge with no downloads (see ../shared/MODELS.md)."""

import tempfile

import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

WORDS = (
    "the a good bad movie great awful is was it this that review sentiment answer positive "
    "negative neutral yes no maybe what plus minus equals reply with number only one word "
    ": . ? , 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 #### food service loved hated"
).split()


def first_word_parity(text: str) -> str | None:
    """A toy grader for tiny-model tasks: "even"/"odd" by the length of the completion's first word."""
    words = text.split()
    return ("even" if len(words[0]) % 2 == 0 else "odd") if words else None


def make_tiny_tokenizer():
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3}
    for word in WORDS:
        vocab.setdefault(word, len(vocab))
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>"
    )
    folder = tempfile.mkdtemp(prefix="roast_tl_tiny_tok_")
    fast.save_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.padding_side = "left"
    return tokenizer, folder


def make_tiny_model(seed: int = 0, n_layers: int = 3, d_model: int = 32):
    from transformer_lens.model_bridge import TransformerBridge

    tokenizer, folder = make_tiny_tokenizer()
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=d_model, intermediate_size=2 * d_model,
        num_hidden_layers=n_layers, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=256, bos_token_id=1, eos_token_id=2, pad_token_id=0,
    )
    hf_model = LlamaForCausalLM(config).eval()
    model = TransformerBridge.boot_transformers(folder, hf_model=hf_model, tokenizer=tokenizer)
    model.cfg.default_prepend_bos = False
    model.eval()
    return model
