"""Tokenizer helpers (roast_tl._tokens): chat formatting, encoding, padding ids, stop tokens."""

from types import SimpleNamespace

import pytest
import torch

from roast_tl._tokens import (
    encode_prompt,
    encode_text,
    format_prompt,
    left_pad,
    pad_id,
    position_ids_for,
    resolve_chat,
    stop_ids,
    tokenizer_of,
)
from tests.tiny_model import make_tiny_tokenizer, unchecked

CHAT_TEMPLATE = (
    "{% for m in messages %}<s> {{ m['content'] }} </s>{% endfor %}"
    "{% if add_generation_prompt %} answer :{% endif %}"
)


@pytest.fixture(scope="module")
def tokenizer():
    return make_tiny_tokenizer()


@pytest.fixture(scope="module")
def chat_tokenizer():
    tokenizer = make_tiny_tokenizer()
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def _ids(tokenizer, words):
    return tokenizer.convert_tokens_to_ids(words.split())


def test_tokenizer_of_returns_it_or_says_how_to_attach_one(tokenizer):
    assert tokenizer_of(SimpleNamespace(tokenizer=tokenizer)) is tokenizer
    with pytest.raises(ValueError, match="no tokenizer; boot it with tokenizer="):
        tokenizer_of(SimpleNamespace(tokenizer=None))


def test_format_prompt_uses_the_chat_template_when_there_is_one(tokenizer, chat_tokenizer):
    assert format_prompt(tokenizer, "the movie") == "the movie"
    assert format_prompt(chat_tokenizer, "the movie") == "<s> the movie </s> answer :"
    assert format_prompt(chat_tokenizer, "the movie", chat=False) == "the movie"


def test_encode_prompt_adds_bos_only_without_a_chat_template(tokenizer, chat_tokenizer):
    bos = tokenizer.bos_token_id
    assert encode_prompt(tokenizer, "the movie") == [bos, *_ids(tokenizer, "the movie")]
    assert encode_prompt(tokenizer, "<s> the movie") == [bos, *_ids(tokenizer, "the movie")]
    templated = format_prompt(chat_tokenizer, "the movie")
    assert encode_prompt(chat_tokenizer, templated) == _ids(
        chat_tokenizer, "<s> the movie </s> answer :"
    )
    assert encode_text(tokenizer, "good movie") == _ids(tokenizer, "good movie")


def _fake(pad=None, eos=None, vocab=(), unk=None, unk_token=None):
    return SimpleNamespace(
        pad_token_id=pad,
        eos_token_id=eos,
        unk_token_id=unk,
        unk_token=unk_token,
        convert_tokens_to_ids=lambda token: vocab.index(token) if token in vocab else unk,
    )


def test_pad_id_is_pad_else_eos_else_zero():
    assert pad_id(_fake(pad=5, eos=7)) == 5
    assert pad_id(_fake(pad=None, eos=7)) == 7
    assert pad_id(_fake()) == 0


def test_stop_ids_are_eos_and_the_end_of_turn_tokens_the_vocabulary_has(tokenizer):
    assert stop_ids(tokenizer) == {tokenizer.eos_token_id}  # the tiny vocabulary has no turn end
    vocab = ("<unk>", "<|im_end|>", "x", "<|eot_id|>")
    assert stop_ids(_fake(eos=2, vocab=vocab, unk=0, unk_token="<unk>")) == {1, 2, 3}
    assert stop_ids(_fake(eos=None, vocab=vocab, unk=None)) == {1, 3}


def test_left_pad_and_positions_skip_the_padding():
    ids, mask = left_pad([[5, 6, 7], [8]], pad=0)
    assert ids.tolist() == [[5, 6, 7], [0, 0, 8]]
    assert mask.tolist() == [[1, 1, 1], [0, 0, 1]]
    assert position_ids_for(mask).tolist() == [[0, 1, 2], [0, 0, 0]]
    assert position_ids_for(torch.tensor([[0, 1, 1, 1]])).tolist() == [[0, 0, 1, 2]]
    with pytest.raises(ValueError, match="empty prompt list"):
        left_pad([], pad=0)
    with pytest.raises(ValueError, match="every prompt needs at least one token"):
        left_pad([[5], []], pad=0)


def test_resolve_chat_defaults_to_the_template_when_there_is_one(tokenizer, chat_tokenizer):
    assert resolve_chat(chat_tokenizer, None) is True
    assert resolve_chat(tokenizer, None) is False
    assert resolve_chat(chat_tokenizer, False) is False and resolve_chat(tokenizer, False) is False
    assert resolve_chat(chat_tokenizer, True) is True
    with pytest.raises(ValueError, match="chat=True, but the tokenizer has no chat template"):
        resolve_chat(tokenizer, True)
    with pytest.raises(TypeError, match="chat must be True, False or None, got 'yes'"):
        unchecked(resolve_chat)(tokenizer, "yes")
