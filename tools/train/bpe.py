"""Byte-level BPE (GPT-2 style), trained from scratch and saved as a Hugging Face tokenizer.json.

Pipeline, as the HF ByteLevel pre-tokenizer does it:
  text → GPT-2 regex pieces (" the", "Lord", ",", "\\n", ...) → each piece's UTF-8 bytes mapped to
  printable characters by GPT-2's bytes_to_unicode (space → "Ġ", "\\n" → "Ċ") → BPE merges.
The KJV text is pure ASCII, so \\p{L} / \\p{N} of the GPT-2 pattern are [A-Za-z] / [0-9] here;
train() refuses other text rather than pre-tokenizing it differently from the runtime.

Ids: 0 <s> (BOS), 1 </s> (EOS), 2..257 the 256 bytes, then one id per merge, in merge order.
"""
import collections
import json
import re

SPECIALS = ['<s>', '</s>']
# The GPT-2 pattern with ASCII classes (equal to the HF one on ASCII text).
PIECE = re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+(?!\S)|\s+""")


def bytes_to_unicode():
    """GPT-2's reversible map from the 256 bytes to printable unicode characters."""
    bs = list(range(ord('!'), ord('~') + 1)) + list(range(ord('¡'), ord('¬') + 1)) + list(range(ord('®'), ord('ÿ') + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


BYTE_CHAR = bytes_to_unicode()


def pieces(text):
    """Pre-tokenized pieces of text, each as its byte-level string."""
    return [''.join(BYTE_CHAR[b] for b in p.encode('utf-8')) for p in PIECE.findall(text)]


def train(texts, vocab_size):
    """Learns vocab_size - len(SPECIALS) - 256 merges from texts. Returns the merges [(a, b)]."""
    counts = collections.Counter()
    for text in texts:
        if not text.isascii():
            raise ValueError('bpe.train: non-ASCII text; '
                             'the ASCII form of the GPT-2 pattern would not match the runtime')
        counts.update(pieces(text))
    words = [list(w) for w in counts]
    freq = list(counts.values())
    pair_count = collections.Counter()
    pair_words = collections.defaultdict(set)  # pair → indices of the words holding it
    for i, w in enumerate(words):
        for a, b in zip(w, w[1:]):
            pair_count[(a, b)] += freq[i]
            pair_words[(a, b)].add(i)
    merges = []
    n_merges = vocab_size - len(SPECIALS) - 256
    while len(merges) < n_merges and pair_count:
        # Most frequent pair; ties go to the lexicographically smallest, so runs are reproducible.
        best = min(pair_count, key=lambda p: (-pair_count[p], p))
        if pair_count[best] < 2:
            break
        merges.append(best)
        joined = best[0] + best[1]
        for i in list(pair_words[best]):
            w = words[i]
            for a, b in zip(w, w[1:]):
                pair_count[(a, b)] -= freq[i]
                if pair_count[(a, b)] <= 0:
                    del pair_count[(a, b)]
            merged = []
            j = 0
            while j < len(w):
                if j + 1 < len(w) and w[j] == best[0] and w[j + 1] == best[1]:
                    merged.append(joined)
                    j += 2
                else:
                    merged.append(w[j])
                    j += 1
            words[i] = merged
            for a, b in zip(merged, merged[1:]):
                pair_count[(a, b)] += freq[i]
                pair_words[(a, b)].add(i)
        del pair_words[best]
    return merges


class Encoder:
    """Encodes text with the learned merges exactly as HF's BPE model does (lowest rank first)."""

    def __init__(self, merges):
        self.vocab = {s: i for i, s in enumerate(SPECIALS)}
        for b in range(256):
            self.vocab[BYTE_CHAR[b]] = len(self.vocab)
        for a, b in merges:
            self.vocab[a + b] = len(self.vocab)
        self.merges = merges
        self.rank = {m: r for r, m in enumerate(merges)}
        self.id_to_token = {i: s for s, i in self.vocab.items()}
        self.char_byte = {c: b for b, c in BYTE_CHAR.items()}
        self.cache = {}

    def bpe(self, word):
        if word in self.cache:
            return self.cache[word]
        parts = list(word)
        while len(parts) > 1:
            ranked = [(self.rank.get((a, b), 1 << 30), j) for j, (a, b) in enumerate(zip(parts, parts[1:]))]
            r, j = min(ranked)
            if r == 1 << 30:
                break
            parts[j:j + 2] = [parts[j] + parts[j + 1]]
        ids = [self.vocab[p] for p in parts]
        self.cache[word] = ids
        return ids

    def encode(self, text):
        ids = []
        for p in pieces(text):
            ids.extend(self.bpe(p))
        return ids

    def decode(self, ids):
        out = bytearray()
        for i in ids:
            tok = self.id_to_token[i]
            if tok in SPECIALS:
                out.extend(tok.encode())
            else:
                out.extend(self.char_byte[c] for c in tok)
        return out.decode('utf-8', errors='replace')

    def tokenizer_json(self):
        """The HF tokenizer.json object: BPE model, ByteLevel pre-tokenizer and decoder, BOS added by the
        post-processor."""
        added = [
            {'id': i, 'content': s, 'single_word': False, 'lstrip': False, 'rstrip': False, 'normalized': False,
             'special': True}
            for i, s in enumerate(SPECIALS)
        ]
        bos = SPECIALS[0]
        return {
            'version': '1.0',
            'truncation': None,
            'padding': None,
            'added_tokens': added,
            'normalizer': None,
            'pre_tokenizer': {'type': 'ByteLevel', 'add_prefix_space': False, 'trim_offsets': True, 'use_regex': True},
            'post_processor': {
                'type': 'TemplateProcessing',
                'single': [{'SpecialToken': {'id': bos, 'type_id': 0}}, {'Sequence': {'id': 'A', 'type_id': 0}}],
                'pair': [
                    {'SpecialToken': {'id': bos, 'type_id': 0}}, {'Sequence': {'id': 'A', 'type_id': 0}},
                    {'SpecialToken': {'id': bos, 'type_id': 1}}, {'Sequence': {'id': 'B', 'type_id': 1}},
                ],
                'special_tokens': {bos: {'id': bos, 'ids': [self.vocab[bos]], 'tokens': [bos]}},
            },
            'decoder': {'type': 'ByteLevel', 'add_prefix_space': True, 'trim_offsets': True, 'use_regex': True},
            'model': {
                'type': 'BPE',
                'dropout': None,
                'unk_token': None,
                'continuing_subword_prefix': None,
                'end_of_word_suffix': None,
                'fuse_unk': False,
                'byte_fallback': False,
                'ignore_merges': False,
                'vocab': self.vocab,
                'merges': [[a, b] for a, b in self.merges],
            },
        }


# A base model's template: the conversation as plain text; the model continues the last user turn.
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if message['role'] == 'user' %}{{ message['content'] }}"
    "{% else %}{{ message['content'] + '\\n' }}{% endif %}"
    "{% endfor %}"
)


def tokenizer_config():
    return {
        'bos_token': SPECIALS[0],
        'eos_token': SPECIALS[1],
        'add_bos_token': True,
        'add_eos_token': False,
        'clean_up_tokenization_spaces': False,
        'model_max_length': 256,
        'tokenizer_class': 'PreTrainedTokenizerFast',
        'chat_template': CHAT_TEMPLATE,
    }


def save(encoder, folder):
    with open(f'{folder}/tokenizer.json', 'w') as f:
        json.dump(encoder.tokenizer_json(), f, ensure_ascii=False, indent=None)
    with open(f'{folder}/tokenizer_config.json', 'w') as f:
        json.dump(tokenizer_config(), f, indent=2)
