"""The shared constrained decoder: the array trie, the logits processor, and HF generate."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import BartConfig, BartForConditionalGeneration, LogitsProcessorList

from systems.constrained import PrefixTrie, ConstrainedLogitsProcessor, decoded_items

EOS, PAD, START = 2, 1, 2
IDS = [[5, 6], [5, 7, 8], [5, 7], [9], [5, 6]]  # items 0 and 4 share an identifier


@pytest.fixture
def trie():
    return PrefixTrie(IDS, eos_token_id=EOS)


def test_trie_structure(trie):
    assert len(trie) == 6  # root, 5, 5-6, 5-7, 5-7-8, 9
    assert trie.walk([5, 7, 8]) > 0 and trie.walk([5, 8]) == -1 and trie.walk([]) == 0
    assert trie.allowed(0).tolist() == [5, 9]
    assert trie.allowed(trie.walk([5])).tolist() == [6, 7]
    assert trie.allowed(trie.walk([5, 7])).tolist() == [8, EOS]  # ends here and continues
    assert trie.allowed(trie.walk([9])).tolist() == [EOS]
    assert trie.items([5, 6]) == [0, 4] and trie.items([5]) == [] and trie.items([4]) == []


def test_trie_rejects_bad_identifiers():
    with pytest.raises(ValueError, match="empty"):
        PrefixTrie([[3], []], EOS)
    with pytest.raises(ValueError, match="end-of-sequence"):
        PrefixTrie([[3, EOS, 4]], EOS)


def test_processor_masks_every_beam_in_one_call(trie):
    processor = ConstrainedLogitsProcessor(trie, prompt_length=1, pad_token_id=PAD)
    rows = [[START, 5, 7], [START, 5, 6], [START, 5, 6], [START, 4, 4]]
    scores = torch.zeros(4, 12)
    masked = processor(torch.tensor(rows), scores)
    allowed = [set(np.flatnonzero(np.isfinite(r.numpy()))) for r in masked]
    assert allowed == [{8, EOS}, {EOS}, {EOS}, {EOS}]  # the last prefix left the trie: EOS only
    finished = processor(torch.tensor([[START, 9, EOS]]), torch.zeros(1, 12))
    assert set(np.flatnonzero(np.isfinite(finished[0].numpy()))) == {PAD}
    first = processor(torch.tensor([[START]]), torch.zeros(1, 12))
    assert set(np.flatnonzero(np.isfinite(first[0].numpy()))) == {5, 9}


def _model(seed: int = 0) -> BartForConditionalGeneration:
    config = BartConfig(
        vocab_size=40, d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=32,
        pad_token_id=PAD, bos_token_id=0, eos_token_id=EOS, decoder_start_token_id=START,
        forced_bos_token_id=None, forced_eos_token_id=None)
    torch.manual_seed(seed)
    return BartForConditionalGeneration(config).eval()


def _brute_force(model, source, identifiers):
    """Sum of log-probabilities of each identifier followed by EOS, by teacher forcing."""
    out = []
    with torch.no_grad():
        for seq in identifiers:
            decoder = torch.tensor([[START, *seq]])
            logp = model(input_ids=source, decoder_input_ids=decoder).logits.log_softmax(-1)[0]
            out.append(float(sum(logp[i, t] for i, t in enumerate([*seq, EOS]))))
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_generate_decodes_only_identifiers_and_finds_the_best(seed):
    rng = np.random.default_rng(seed)
    identifiers = [list(map(int, rng.integers(3, 40, size=rng.integers(1, 4)))) for _ in range(8)]
    trie = PrefixTrie(identifiers, EOS)
    model = _model(seed)
    source = torch.tensor([[0, 7, 8, 9, EOS]])
    out = model.generate(
        source, num_beams=8, num_return_sequences=8, max_new_tokens=5, do_sample=False,
        logits_processor=LogitsProcessorList([ConstrainedLogitsProcessor(trie, 1, PAD)]),
        no_repeat_ngram_size=0, length_penalty=0.0, early_stopping=True,
        return_dict_in_generate=True, output_scores=True)
    decoded = decoded_items(trie, out.sequences, out.sequences_scores, 1, PAD)
    assert decoded, "at least one hypothesis survives"
    for items, _ in decoded:
        assert all(identifiers[i] == identifiers[items[0]] for i in items)
    brute = _brute_force(model, source, identifiers)
    best = int(np.argmax(brute))
    assert identifiers[decoded[0][0][0]] == identifiers[best]
    assert decoded[0][1] == pytest.approx(brute[best], abs=1e-4)


def test_processor_records_every_partial_hypothesis_per_input_row(trie):
    processor = ConstrainedLogitsProcessor(trie, prompt_length=1, pad_token_id=PAD, num_beams=2, record=True)
    processor(torch.tensor([[START], [START], [START], [START]]), torch.zeros(4, 12))
    processor(torch.tensor([[START, 5], [START, 9], [START, 5], [START, 5]]), torch.zeros(4, 12))
    processor(torch.tensor([[START, 5, 7], [START, 9, EOS], [START, 5, 6], [START, 5, 7]]), torch.zeros(4, 12))
    assert processor.prefixes == [{(5,), (9,), (5, 7)}, {(5,), (5, 6), (5, 7)}]
