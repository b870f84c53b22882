"""The ctypes declarations against the C header: every function is declared and exported, and
every struct has the C compiler's size and field offsets. Plus the model and tokenizer entry
points called directly (NULL arguments, wrong struct_size, buffers too small)."""
import ctypes
import re
import shutil
import subprocess

from conftest import REPO

import llavauhd
from llavauhd import _lib
from llavauhd._lib import ModelParams, ModelProperties, lib

HEADER = (REPO / "include" / "llavauhd.h").read_text()

STRUCTS = {
    "luhd_model_params": _lib.ModelParams, "luhd_model_properties": _lib.ModelProperties,
    "luhd_image_load_params": _lib.ImageLoadParams, "luhd_slice_params": _lib.SliceParams,
    "luhd_slice_plan": _lib.SlicePlan,
    "luhd_tensor": _lib.Tensor, "luhd_tensor_list": _lib.TensorList, "luhd_session_params": _lib.SessionParams,
    "luhd_sampling_params": _lib.SamplingParams, "luhd_chat_stats": _lib.ChatStats,
}


def test_every_header_function_is_declared_and_exported():
    declared = re.findall(r"LUHD_API\s+[^;]*?\b(luhd_\w+)\s*\(", HEADER)
    assert len(declared) == len(set(declared)) == 41
    assert list(_lib.FUNCTIONS) == declared
    for name in declared:
        f = getattr(lib, name)
        assert f.restype is not None or name.endswith("_free") or name == "luhd_log_set", name
        assert f.argtypes is not None, name


def test_every_header_struct_is_declared():
    assert set(re.findall(r"typedef struct (luhd_\w+) \{", HEADER)) == set(STRUCTS)


def test_struct_layouts_match_the_c_compiler(tmp_path):
    cc = shutil.which("cc") or shutil.which("gcc")
    assert cc, "a C compiler is needed to check the struct layouts"
    lines = ['#include <stddef.h>', '#include <stdio.h>', '#include "llavauhd.h"', "int main(void) {"]
    for cname, cls in STRUCTS.items():
        lines.append(f'printf("{cname} %zu\\n", sizeof({cname}));')
        for field, *_ in cls._fields_:
            lines.append(f'printf("{cname}.{field} %zu\\n", offsetof({cname}, {field}));')
    lines += ["return 0;", "}"]
    src = tmp_path / "layout.c"
    src.write_text("\n".join(lines))
    exe = tmp_path / "layout"
    subprocess.run([cc, "-I", str(REPO / "include"), str(src), "-o", str(exe)], check=True)
    c = dict(line.rsplit(" ", 1) for line in subprocess.run([str(exe)], capture_output=True, text=True,
                                                             check=True).stdout.splitlines())
    for cname, cls in STRUCTS.items():
        assert int(c[cname]) == ctypes.sizeof(cls), cname
        for field, *_ in cls._fields_:
            assert int(c[f"{cname}.{field}"]) == getattr(cls, field).offset, f"{cname}.{field}"


def test_defaults_carry_their_struct_size():
    for fn, cls in ((lib.luhd_model_default_params, _lib.ModelParams),
                    (lib.luhd_image_load_default_params, _lib.ImageLoadParams),
                    (lib.luhd_slice_default_params, _lib.SliceParams),
                    (lib.luhd_session_default_params, _lib.SessionParams),
                    (lib.luhd_sampling_default_params, _lib.SamplingParams)):
        assert fn().struct_size == ctypes.sizeof(cls)
    o = lib.luhd_slice_default_params()
    assert (o.preresize_long_side, o.max_slices) == (1024, 9)
    s = lib.luhd_session_default_params()
    assert (s.n_ctx, s.image_cache_size, s.system_prompt, s.preresize_long_side, s.max_slices,
            s.abort_callback, s.kv_type) == (0, 4, None, 1024, 9, None, 1)
    p = lib.luhd_sampling_default_params()
    assert (p.temperature, p.top_k, p.top_p, p.min_p, p.repetition_penalty, p.max_new_tokens, p.n_stop_strings) == \
        (0.0, 0, 1.0, 0.0, 1.0, 128, 0)
    m = lib.luhd_model_default_params()
    assert (m.n_threads, m.progress_callback, m.precision) == (0, None, llavauhd.Precision.EXACT)


def test_raw_model_calls(small, assets):
    out = ctypes.c_void_p()
    path = str(assets / "models" / "small-noslice").encode()
    assert lib.luhd_model_load(path, None, None) == 1
    assert lib.luhd_model_load(b"/nonexistent\xff", None, ctypes.byref(out)) in (2, 11)
    p = ModelParams()  # struct_size 0
    assert lib.luhd_model_load(path, ctypes.byref(p), ctypes.byref(out)) == 1
    p = lib.luhd_model_default_params()
    p.n_threads = -1
    assert lib.luhd_model_load(path, ctypes.byref(p), ctypes.byref(out)) == 1
    assert not out
    lib.luhd_model_free(None)
    info = ModelProperties()
    assert lib.luhd_model_get_properties(None, ctypes.byref(info)) == 1
    assert lib.luhd_model_get_properties(small._handle, None) == 1
    assert lib.luhd_model_get_properties(small._handle, ctypes.byref(info)) == 1  # struct_size 0
    assert b"struct_size" in lib.luhd_last_error()
    # An older caller's shorter struct: only its fields are written.
    info.struct_size = ModelProperties.hidden_size.offset
    info.hidden_size = -3
    assert lib.luhd_model_get_properties(small._handle, ctypes.byref(info)) == 0
    assert info.architecture == b"llama" and info.hidden_size == -3


def test_raw_tokenizer_calls(small):
    h = small._handle
    n = ctypes.c_int32()
    ids = (ctypes.c_int32 * 64)()
    assert lib.luhd_model_tokenize(None, b"hi", -1, True, False, ids, 64, ctypes.byref(n)) == 1
    assert lib.luhd_model_tokenize(h, None, -1, True, False, ids, 64, ctypes.byref(n)) == 1
    assert lib.luhd_model_tokenize(h, b"hi", -1, True, False, ids, 64, None) == 1
    assert lib.luhd_model_tokenize(h, b"hi", -2, True, False, ids, 64, ctypes.byref(n)) == 1
    assert lib.luhd_model_tokenize(h, b"hi", -1, True, False, ids, -1, ctypes.byref(n)) == 1
    # Measure with n_max 0 and tokens NULL, then fill.
    assert lib.luhd_model_tokenize(h, b"hello world", -1, True, False, None, 0, ctypes.byref(n)) == 15
    need = n.value
    assert need == len(small.tokenize("hello world", add_bos=True))
    assert lib.luhd_model_tokenize(h, b"hello world", -1, True, False, ids, need - 1, ctypes.byref(n)) == 15
    assert lib.luhd_model_tokenize(h, b"hello world", -1, True, False, ids, need, ctypes.byref(n)) == 0
    assert n.value == need
    assert lib.luhd_model_tokenize(h, b"hello world", 5, False, False, ids, 64, ctypes.byref(n)) == 0  # "hello"
    assert list(ids[:n.value]) == small.tokenize("hello")
    assert lib.luhd_model_tokenize(h, b"ab\xc3", 3, False, False, ids, 64, ctypes.byref(n)) == 11
    assert lib.luhd_model_tokenize(h, b"", 0, False, False, None, 0, ctypes.byref(n)) == 0 and n.value == 0
    # Special-token text: parsed or not.
    assert lib.luhd_model_tokenize(h, b"</s>", -1, False, True, ids, 64, ctypes.byref(n)) == 0
    assert list(ids[:n.value]) == [2]
    assert lib.luhd_model_tokenize(h, b"</s>", -1, False, False, ids, 64, ctypes.byref(n)) == 0 and n.value > 1

    toks = (ctypes.c_int32 * 3)(*small.tokenize("Hello there"))
    size = ctypes.c_size_t()
    assert lib.luhd_model_detokenize(None, toks, 3, True, None, 0, ctypes.byref(size)) == 1
    assert lib.luhd_model_detokenize(h, None, 3, True, None, 0, ctypes.byref(size)) == 1
    assert lib.luhd_model_detokenize(h, toks, 3, True, None, 0, None) == 1
    assert lib.luhd_model_detokenize(h, toks, -1, True, None, 0, ctypes.byref(size)) == 1
    assert lib.luhd_model_detokenize(h, toks, 3, True, None, 0, ctypes.byref(size)) == 15
    text_len = size.value
    buf = ctypes.create_string_buffer(text_len + 1)
    assert lib.luhd_model_detokenize(h, toks, 3, True, buf, text_len, ctypes.byref(size)) == 15  # no room for NUL
    assert lib.luhd_model_detokenize(h, toks, 3, True, buf, text_len + 1, ctypes.byref(size)) == 0
    assert buf.value == b"Hello there" and size.value == text_len
    bad = (ctypes.c_int32 * 2)(1, llavauhd.IMAGE_TOKEN)
    assert lib.luhd_model_detokenize(h, bad, 2, True, buf, 16, ctypes.byref(size)) == 1
    assert lib.luhd_model_detokenize(h, None, 0, True, buf, 1, ctypes.byref(size)) == 0 and size.value == 0

    piece = ctypes.create_string_buffer(8)
    assert lib.luhd_model_token_to_piece(None, 13, False, piece, 8, ctypes.byref(size)) == 1
    assert lib.luhd_model_token_to_piece(h, 13, False, piece, 8, None) == 1
    assert lib.luhd_model_token_to_piece(h, 13, False, piece, 8, ctypes.byref(size)) == 0  # <0x0A>
    assert piece.raw[:size.value] == b"\n"
    hello = small.tokenize("Hello")[-1]
    assert lib.luhd_model_token_to_piece(h, hello, False, piece, 2, ctypes.byref(size)) == 15 and size.value > 2
    assert lib.luhd_model_token_to_piece(h, hello, False, None, 0, ctypes.byref(size)) == 15
    assert lib.luhd_model_token_to_piece(h, 32000, False, piece, 8, ctypes.byref(size)) == 1
    assert lib.luhd_model_token_to_piece(h, -1, False, piece, 8, ctypes.byref(size)) == 1
    # A special token: its text with render_special, nothing without.
    assert lib.luhd_model_token_to_piece(h, 2, True, piece, 8, ctypes.byref(size)) == 0
    assert piece.raw[:size.value] == b"</s>"
    assert lib.luhd_model_token_to_piece(h, 2, False, None, 0, ctypes.byref(size)) == 0 and size.value == 0
