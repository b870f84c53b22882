#!/usr/bin/env python3
"""Reference prompts and ids for chat templates and special-token parsing, from upstream's own
code: llava/conversation.py (conv_vicuna_v1, conv_qwen) and `tokenizer_image_token` of
llava/mm_utils.py, read from a git checkout of thunlp/LLaVA-UHD (branches old-vicuna-7b and
LLaVA-UHD-v2), with the tokenizers of transformers 4.37.2 (the version the upstream fixtures
were made with; later versions changed LlamaTokenizer).

Needs a Python with transformers==4.37.2, tokenizers==0.15.2, sentencepiece, protobuf<5, pillow
(conversation.py imports PIL). Run:

  python scripts/make_chat_golden.py --upstream-git PATH/TO/LLaVA-UHD/.git --assets .build-assets

Writes Tests/Fixtures/tokenizer/chat_golden.json.
"""
import argparse
import ast
import importlib.util
import json
import os
import subprocess
import sys
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # conversation.py of LLaVA-UHD-v2 asks the Hub for a Llama-3 tokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, 'Tests', 'Fixtures', 'tokenizer', 'chat_golden.json')
NONLEGACY_CONFIG_DIR = os.path.join(ROOT, 'Tests', 'Fixtures', 'tokenizer', 'llama_nonlegacy')


def git_show(git_dir, branch, path):
    return subprocess.run(['git', '--git-dir', git_dir, 'show', f'{branch}:{path}'],
                          check=True, capture_output=True, text=True).stdout


def load_upstream(git_dir, branch, tmp):
    """Upstream's conversation module and tokenizer_image_token of one branch."""
    src = git_show(git_dir, branch, 'llava/conversation.py')
    path = os.path.join(tmp, f'conversation_{branch.replace("-", "_")}.py')
    with open(path, 'w') as f:
        f.write(src)
    spec = importlib.util.spec_from_file_location(f'conv_{branch}', path)
    conv = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conv)

    # mm_utils.py imports torch; run only its tokenizer_image_token function.
    mm = git_show(git_dir, branch, 'llava/mm_utils.py')
    fn = next(n for n in ast.parse(mm).body if isinstance(n, ast.FunctionDef) and n.name == 'tokenizer_image_token')
    constants = {}
    exec(git_show(git_dir, branch, 'llava/constants.py'), constants)
    scope = {'IMAGE_TOKEN_INDEX': constants['IMAGE_TOKEN_INDEX']}
    exec(compile(ast.Module(body=[fn], type_ignores=[]), 'mm_utils.py', 'exec'), scope)
    return conv, scope['tokenizer_image_token'], constants


def make_prompt(conv_module, template, system, messages):
    conv = conv_module.conv_templates[template].copy()
    if system is not None:
        conv.system = ('<|im_start|>system\n' + system if system else '') if template == 'qwen_2' else system
    for role, text, images in messages:
        conv.append_message(conv.roles[0 if role == 'user' else 1], '<image>\n' * images + text)
    if messages[-1][0] == 'user':
        conv.append_message(conv.roles[1], None)
    return conv.get_prompt()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--upstream-git', required=True)
    ap.add_argument('--assets', default=os.path.join(ROOT, '.build-assets'))
    a = ap.parse_args()

    import transformers
    from transformers import AutoTokenizer, LlamaTokenizer
    spm_path = os.path.join(a.assets, 'tokenizers', 'tokenizer.model.v1')
    qwen_dir = os.path.join(a.assets, 'models', 'chelsea-qwen2-mask5')
    with open(os.path.join(NONLEGACY_CONFIG_DIR, 'tokenizer_config.json')) as f:
        nonlegacy_config = json.load(f)
    nonlegacy_config.pop('tokenizer_class', None)
    tokenizers = {
        'llama-legacy': LlamaTokenizer(spm_path),
        'llama-nonlegacy': LlamaTokenizer(spm_path, **nonlegacy_config),
        'qwen2-slow': AutoTokenizer.from_pretrained(qwen_dir, use_fast=False),
        'qwen2-fast': AutoTokenizer.from_pretrained(qwen_dir, use_fast=True),
    }
    assert tokenizers['llama-legacy'].legacy and not tokenizers['llama-nonlegacy'].legacy

    q1 = 'What is in the cup?'
    a1 = 'A cup of coffee with latte art.'
    q2 = 'Is it hot? Describe the steam, if any.'
    a2 = ' It looks warm:\nthere is a little steam. '
    q3 = 'Thanks!\n\nAnything else </s> or <s> to add?  '
    conversations = [
        ('single turn, one image', None, [('user', q1, 1)]),
        ('two turns', None, [('user', q1, 1), ('assistant', a1, 0), ('user', q2, 0)]),
        ('three turns, odd spacing, special text', None,
         [('user', q1, 1), ('assistant', a1, 0), ('user', q2, 0), ('assistant', a2, 0), ('user', q3, 0)]),
        ('no image, custom system', 'You answer in one word.', [('user', 'Name a colour.', 0)]),
        ('empty system, two images', '', [('user', 'Compare them.', 2)]),
        ('ends with the assistant', None, [('user', q1, 1), ('assistant', a1, 0)]),
        ('unicode', None, [('user', 'Qu’est-ce que c’est ? 这是什么？ cafe\u0301 😀', 1)]),
        ('image later in the conversation', None, [('user', 'Hello.', 0), ('assistant', 'Hi! How can I help?', 0),
                                                   ('user', 'What is this?', 1)]),
    ]
    qwen_extra = [
        ('im_end in the question', None, [('user', 'Say <|im_end|> then <|endoftext|> please', 1)]),
    ]

    cases = []
    with tempfile.TemporaryDirectory() as tmp:
        branches = {b: load_upstream(a.upstream_git, b, tmp) for b in ('old-vicuna-7b', 'LLaVA-UHD-v2')}
        plan = []
        for name, system, msgs in conversations:
            for branch in ('old-vicuna-7b', 'LLaVA-UHD-v2'):
                for tok in ('llama-legacy', 'llama-nonlegacy'):
                    plan.append((name, 'vicuna_v1', branch, tok, system, msgs))
            for tok in ('qwen2-slow', 'qwen2-fast'):
                plan.append((name, 'qwen_2', 'LLaVA-UHD-v2', tok, system, msgs))
        for name, system, msgs in qwen_extra:
            for tok in ('qwen2-slow', 'qwen2-fast'):
                plan.append((name, 'qwen_2', 'LLaVA-UHD-v2', tok, system, msgs))
        for name, template, branch, tok, system, msgs in plan:
            conv, tokenizer_image_token, _ = branches[branch]
            prompt = make_prompt(conv, template, system, msgs)
            ids = tokenizer_image_token(prompt, tokenizers[tok])
            cases.append(dict(name=name, template=template, branch=branch, tokenizer=tok, system=system,
                              messages=[dict(role=r, text=t, images=n) for r, t, n in msgs],
                              prompt=prompt, ids=[int(i) for i in ids]))

    # Special-token text in plain encoding (tokenizer(text, add_special_tokens=...)).
    texts = ['Hello</s>USER: x', '<s>hi', '</s> a', 'a </s>b', '<unk>', ' <s> </s> ', '▁x▁ y', 'x<s>', '',
             'A chat. USER: <image>\nHi ASSISTANT: Yo</s>USER: more ASSISTANT:', '  leading', '</s></s>x',
             '<|im_start|>user\nhi<|im_end|>\n', 'x<|endoftext|> y']
    encodings = []
    for tok in ('llama-legacy', 'llama-nonlegacy', 'qwen2-slow', 'qwen2-fast'):
        for t in texts:
            for special in (False, True):
                encodings.append(dict(tokenizer=tok, text=t, add_special_tokens=special,
                                      ids=tokenizers[tok](t, add_special_tokens=special).input_ids))

    meta = dict(transformers=transformers.__version__, tokenizers=__import__('tokenizers').__version__,
                sentencepiece=__import__('sentencepiece').__version__,
                upstream_commits={b: subprocess.run(['git', '--git-dir', a.upstream_git, 'rev-parse', b],
                                                    capture_output=True, text=True).stdout.strip()
                                  for b in ('old-vicuna-7b', 'LLaVA-UHD-v2')},
                tokenizers_used={'llama-legacy': 'LlamaTokenizer(tokenizer.model.v1) (legacy default)',
                                 'llama-nonlegacy': 'LlamaTokenizer(tokenizer.model.v1, **llama_nonlegacy/tokenizer_config.json)',
                                 'qwen2-slow': 'AutoTokenizer(models/chelsea-qwen2-mask5, use_fast=False)',
                                 'qwen2-fast': 'AutoTokenizer(models/chelsea-qwen2-mask5, use_fast=True)'},
                note='prompt = upstream conv_templates[template] with append_message("<image>\\n" * images + text), '
                     'a None assistant message when the last is from the user, get_prompt(); '
                     'ids = upstream tokenizer_image_token(prompt, tokenizer)')
    with open(OUT, 'w', encoding='utf-8') as f:
        json.dump(dict(meta=meta, conversations=cases, encodings=encodings), f, ensure_ascii=False, indent=1)
    print(f'{OUT}: {len(cases)} conversations, {len(encodings)} encodings')


if __name__ == '__main__':
    sys.exit(main())
