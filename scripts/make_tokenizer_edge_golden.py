#!/usr/bin/env python3
"""Golden data for tokenizer behaviour the main golden sets do not reach, from the official
libraries (sentencepiece, Hugging Face tokenizers):

1. Two small SentencePiece BPE models trained here with the sentencepiece trainer, so that the
   options LLaMA's tokenizer leaves off are exercised:
     * spm_nfkc_bytes.model: nmt_nfkc normalization (a precompiled charsmap), extra-whitespace
       removal, byte fallback, user-defined symbols, a control symbol, split digits, and some
       multi-character pieces re-marked UNUSED (SentencePiece must split them back);
     * spm_identity_unk.model: no byte fallback (unknown characters merge into one <unk>), no
       dummy prefix, whitespace kept, whitespace as suffix.
   For each: ids and decoded text of the corpus of make_token_golden.py, and decodes of
   hand-picked id sequences.
2. Decodes of hand-picked id sequences with the real tokenizers: sentencepiece with Mistral's
   tokenizer.model.v1 (invalid and truncated byte-fallback sequences, control pieces, leading
   "▁" rules) and tokenizers with the Qwen2 tokenizer.json (byte-level tokens that split a
   character, special tokens with and without skip_special_tokens).

Run with the generator venv (sentencepiece 0.2.x, tokenizers 0.23.x):
  python scripts/make_tokenizer_edge_golden.py --assets .build-assets
3. Encodes with a small byte-level tokenizer.json (written too) whose added tokens strip
   whitespace (lstrip / rstrip) or must stand alone (single_word), with tokenizers.
Writes Tests/Fixtures/tokenizer/{spm_nfkc_bytes.model, spm_identity_unk.model,
bpe_added_tokens/tokenizer.json, tok_edge_golden.json}.
"""
import argparse
import io
import json
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT_DIR = os.path.join(ROOT, 'Tests', 'Fixtures', 'tokenizer')
sys.path.insert(0, HERE)
from make_token_golden import corpus  # noqa: E402
from spm_proto import fields, read_model  # noqa: E402


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def mark_unused(model_bytes, piece_ids):
    """Re-serializes a ModelProto with the given pieces' type set to UNUSED (5)."""
    out = bytearray()
    index = 0
    for fn, wt, v in fields(model_bytes):
        if fn == 1:
            if index in piece_ids:
                body = bytearray()
                for f2, w2, v2 in fields(v):
                    if f2 == 3:
                        continue
                    body += varint(f2 << 3 | w2)
                    if w2 == 2:
                        body += varint(len(v2)) + v2
                    elif w2 == 0:
                        body += varint(v2)
                    else:
                        body += v2
                body += varint(3 << 3 | 0) + varint(5)
                v = bytes(body)
            index += 1
        out += varint(fn << 3 | wt)
        if wt == 2:
            out += varint(len(v)) + v
        elif wt == 0:
            out += varint(v)
        else:
            out += v
    return bytes(out)


def training_text():
    rng = random.Random(7)
    lines = [t for t in corpus() if t.strip()]
    words = ' '.join(lines).split()
    out = list(lines)
    for _ in range(3000):
        out.append(' '.join(rng.choice(words) for _ in range(rng.randint(3, 12))))
    return [l.replace('\n', ' ') for l in out]


def train(name, **options):
    import sentencepiece as spm
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(training_text()), model_writer=buf, model_type='bpe',
                                   vocab_size=600, minloglevel=2, **options)
    return buf.getvalue()


def spm_cases(model_bytes, crafted):
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_proto=model_bytes)
    cases = []
    for t in corpus():
        ids = sp.encode(t, out_type=int)
        cases.append(dict(text=t, ids=ids, decoded=sp.decode(ids)))
    decodes = [dict(ids=ids, decoded=sp.decode(ids)) for ids in crafted(sp)]
    return dict(vocab_size=sp.get_piece_size(), bos_id=sp.bos_id(), eos_id=sp.eos_id(), unk_id=sp.unk_id(),
                pad_id=sp.pad_id(), cases=cases, decodes=decodes)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--assets', default=os.path.join(ROOT, '.build-assets'))
    a = ap.parse_args()
    import sentencepiece as spm
    import tokenizers

    # 1a. nmt_nfkc + byte fallback + user-defined + control + UNUSED pieces.
    m = train('nfkc', normalization_rule_name='nmt_nfkc', byte_fallback=True, split_digits=True,
              user_defined_symbols=['<img>', '[INST]', 'ab'], control_symbols=['<ctrl>'],
              character_coverage=0.98)
    pieces = read_model_bytes(m)
    unused = [i for i, p in enumerate(pieces) if p['type'] == 1 and len(p['piece']) >= 3][:40:4]
    original = spm.SentencePieceProcessor(model_proto=m)
    m = mark_unused(m, set(unused))
    marked = spm.SentencePieceProcessor(model_proto=m)
    # Texts whose ids change because merged pieces are UNUSED (resegmentation is exercised).
    changed_by_unused = [t for t in corpus() if original.encode(t) != marked.encode(t)]
    assert changed_by_unused
    assert sum(p['type'] == 5 for p in read_model_bytes(m)) == len(unused)
    with open(os.path.join(OUT_DIR, 'spm_nfkc_bytes.model'), 'wb') as f:
        f.write(m)

    def crafted_nfkc(sp):
        b = lambda x: sp.piece_to_id('<0x%02X>' % x)
        ctrl = sp.piece_to_id('<ctrl>')
        return [[b(0xE4), b(0xB8), b(0xAD)], [b(0xE4), b(0xB8)], [b(0xE4), b(0xB8), sp.piece_to_id('▁a')],
                [b(0xFF), b(0x41)], [ctrl, sp.piece_to_id('▁a')], [sp.piece_to_id('▁'), sp.piece_to_id('▁a')],
                [b(0x41), sp.piece_to_id('▁a')], [sp.unk_id(), sp.piece_to_id('▁a')], unused[:3]]

    # 1b. identity, no byte fallback, no dummy prefix, whitespace kept, whitespace as suffix.
    m2 = train('identity', normalization_rule_name='identity', byte_fallback=False, add_dummy_prefix=False,
               remove_extra_whitespaces=False, treat_whitespace_as_suffix=True, character_coverage=0.98)
    with open(os.path.join(OUT_DIR, 'spm_identity_unk.model'), 'wb') as f:
        f.write(m2)

    def crafted_identity(sp):
        return [[sp.unk_id(), sp.unk_id()], [sp.piece_to_id('a▁'), sp.unk_id(), sp.piece_to_id('▁')],
                [sp.bos_id(), sp.piece_to_id('▁'), sp.eos_id()]]

    # 2. Real tokenizers.
    mistral = spm.SentencePieceProcessor(model_file=os.path.join(a.assets, 'tokenizers', 'tokenizer.model.v1'))
    b = lambda x: mistral.piece_to_id('<0x%02X>' % x)
    p = mistral.piece_to_id
    mistral_ids = [
        [b(0xF0), b(0x9F), b(0x98), b(0x80)],            # 😀 in four byte pieces
        [b(0xF0), b(0x9F), b(0x98)],                      # truncated at the end
        [b(0xF0), b(0x9F), p('▁a'), b(0x98), b(0x80)],    # interrupted
        [b(0xC3), b(0x28)], [b(0x80)], [b(0xED), b(0xA0), b(0x80)], [b(0xC0), b(0xAF)], [b(0xF4), b(0x90), b(0x80), b(0x80)],
        [p('▁'), p('▁a')], [1, p('▁a'), 2, p('▁b')], [p('▁▁'), p('▁x')], [b(0x20), p('▁a')], [0, p('▁a')],
        [p('▁Hello'), b(0xE4), b(0xB8), b(0xAD), p('▁world')], [1], [],
    ]
    mistral_decodes = [dict(ids=ids, decoded=mistral.decode(ids)) for ids in mistral_ids]

    qwen = tokenizers.Tokenizer.from_file(os.path.join(a.assets, 'tokenizers', 'qwen2', 'tokenizer.json'))
    enc = lambda s: qwen.encode(s, add_special_tokens=False).ids
    byte_ids = lambda bs: [qwen.token_to_id(t) for t in bytes_to_byte_level_tokens(bs)]
    qwen_ids = [
        enc('𠀀𠀁𠀂'), enc('😀😃'), enc('👨‍👩‍👧‍👦'), byte_ids(b'\xe4\xb8'), byte_ids(b'\xe4\xb8') + enc('a'),
        byte_ids(b'\xf0\x9f') + byte_ids(b'\x98\x80'), byte_ids(b'\xff\xfe'), byte_ids(b'\xed\xa0\x80'),
        byte_ids(b'\xf0\x80\x80'), enc('<|im_start|>user\nHi<|im_end|>'), [151643, 151644, 151645],
    ]
    qwen_decodes = [dict(ids=ids, decoded=qwen.decode(ids, skip_special_tokens=False),
                         decoded_skip_special=qwen.decode(ids, skip_special_tokens=True)) for ids in qwen_ids]

    # 3. A small byte-level tokenizer.json with added tokens that strip whitespace or must stand
    #    alone as a word, and a non-special added token.
    added_dir = os.path.join(OUT_DIR, 'bpe_added_tokens')
    os.makedirs(added_dir, exist_ok=True)
    added = build_added_tokens_tokenizer()
    added.save(os.path.join(added_dir, 'tokenizer.json'))
    added_texts = ['a <L> b', 'a  <L>b', '<L>', '  <L>  ', 'a <R>  b', 'a<R>\n\nb', '<R>', 'the <W> the', 'the<W>the',
                   'x <W>y', '_<W>', '<W>', 'plain text', 'a plain b', 'the <|n|> the', '<L><R><W>', 'é<W>é', '1<W>2']
    added_cases = []
    for t in added_texts:
        ids = added.encode(t, add_special_tokens=False).ids
        added_cases.append(dict(text=t, ids=ids, decoded=added.decode(ids, skip_special_tokens=False),
                                decoded_skip_special=added.decode(ids, skip_special_tokens=True)))

    golden = dict(
        meta=dict(sentencepiece=spm.__version__, tokenizers=tokenizers.__version__,
                  note='spm_*: sp.encode(text, out_type=int) / sp.decode(ids); mistral: sp.decode(ids) with '
                       'tokenizer.model.v1; qwen2: Tokenizer.from_file(qwen2/tokenizer.json).decode(ids, '
                       'skip_special_tokens=False / True)',
                  unused_piece_ids=unused, texts_changed_by_unused=changed_by_unused),
        spm_nfkc_bytes=spm_cases(m, crafted_nfkc),
        spm_identity_unk=spm_cases(m2, crafted_identity),
        mistral_decodes=mistral_decodes,
        qwen2_decodes=qwen_decodes,
        bpe_added_tokens=added_cases,
    )
    with open(os.path.join(OUT_DIR, 'tok_edge_golden.json'), 'w', encoding='utf-8') as f:
        json.dump(golden, f, ensure_ascii=False, indent=0)
    print('models', len(m), len(m2), 'bytes; unused', unused)


def build_added_tokens_tokenizer():
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
    from make_token_golden import QWEN2_PAT, bytes_to_unicode
    alphabet = bytes_to_unicode()
    vocab = {alphabet[b]: b for b in range(256)}
    merges = [('Ġ', 't'), ('h', 'e'), ('Ġt', 'he'), ('p', 'l'), ('a', 'in'), ('i', 'n'), ('pl', 'ain')]
    for a, b in merges:
        for tok in (a, b, a + b):
            vocab.setdefault(tok, len(vocab))
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PAT), behavior='isolated', invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken('<L>', lstrip=True, special=True, normalized=False),
                            AddedToken('<R>', rstrip=True, special=True, normalized=False),
                            AddedToken('<W>', single_word=True, special=True, normalized=False)])
    tok.add_tokens([AddedToken('<|n|>', special=False, normalized=False)])
    return tok


def read_model_bytes(model_bytes):
    import tempfile
    with tempfile.NamedTemporaryFile(suffix='.model') as f:
        f.write(model_bytes)
        f.flush()
        return read_model(f.name)['pieces']


def bytes_to_byte_level_tokens(bs):
    from make_token_golden import bytes_to_unicode
    table = bytes_to_unicode()
    return [table[x] for x in bs]


if __name__ == '__main__':
    main()
