#!/usr/bin/env python3
"""PyTorch side of the llava-uhd benchmarks (called by llavauhd-bench as a subprocess).

Each subcommand builds the stage at its real LLaVA-UHD shape with random weights, times it
(best of --repeat runs after one warm-up) on --threads CPU threads and prints ONE JSON object on
stdout: the figures in seconds (or tokens/s), the shapes, the dtypes, the torch version and the
thread count.  Nothing is asserted; progress goes to stderr.

  vit    CLIP ViT-L/14-336 (width 1024, 16 heads, MLP 4096, quick_gelu) up to layer -2 (the 23
         layers whose output LLaVA-UHD uses), transformers CLIPVisionModel, float32, SDPA
         attention. Views: one 336x336 image, and the 7 views of a 1024x768 image (6 slices
         H350xW308 + overview H280xW378), each at its own size with the position table resized by
         bicubic interpolation (interpolate_pos_encoding=True, identical to upstream's rule).
  llm    LLaMA-7B (Vicuna) or Qwen2-7B shapes (--arch), transformers model with random weights:
         prefill of a --prompt-token prompt (logits of the last position only, as generate does)
         and greedy decode speed with the KV cache. --compute bf16 (bf16 weights and math) or fp32
         (float32 weights and math: 27-30 GB at full depth, so it is refused unless --layers
         makes it fit). --layers N builds only N decoder layers; the full-depth figure is then
         extrapolated from the time measured inside the layers and stated as such.
  vdim   the VDIM inverse semantic pyramid (docs/MODEL.md §3): two JBU stages (C=1024, 7x7 kernels,
         guidance = adaptive-avg-pooled pixels) and the 1x1 fixup at 4x, float32, on the 7 views of
         a 1024x768 image (6 slices batched like upstream, then the overview).
  hiwin  the Hiwin projector (docs/MODEL.md §4) at E=4096 (32 heads of 128), levels 1x/2x/4x
         (feature_scale_mask 7) of the same 7 views: per-level Linear(1024->E)+LN, resized sin-cos
         positions, 12x12 RoIAlign windows (aligned=False, adaptive sampling), 4 query sets through
         one nn.MultiheadAttention, cat_proj, LN, proj; float32. --mode shared-kv projects
         keys/values once for the 4 query sets; --mode upstream calls the attention module 4
         times as upstream does.

Needs the versions pinned in scripts/bench/requirements.txt (torch 2.13, transformers 5.24):
transformers 4.37 has no SDPA attention for CLIP and no model-level rotary_emb.

Examples:
  python3 scripts/bench/bench_torch.py vit --threads 2 --repeat 3
  python3 scripts/bench/bench_torch.py llm --arch llama --layers 2 --prompt 1000 --decode 16
"""
import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# The 7 views of a 1024x768 image (docs/MODEL.md §1.4): (height, width) in pixels.
UHD_SLICES = [(350, 308)] * 6
UHD_OVERVIEW = (280, 378)


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def best_of(repeat, fn):
    """One warm-up call, then the fastest of `repeat` timed calls (seconds)."""
    fn()
    best = math.inf
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def header(name, args):
    return {"bench": name, "torch": torch.__version__, "threads": torch.get_num_threads(),
            "repeat": args.repeat}


def mem_available_bytes():
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def fill_random_(module, std=0.02, seed=0):
    """Random normal weights, ones for norm weights (fast, in the parameter's own dtype)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if "norm" in name and name.endswith("weight"):
                p.fill_(1.0)
            else:
                p.normal_(0.0, std, generator=g)


# ----------------------------------------------------------------------------- vit
def bench_vit(args):
    from transformers import CLIPVisionConfig, CLIPVisionModel
    layers = args.layers or 23
    cfg = CLIPVisionConfig(hidden_size=1024, intermediate_size=4096, num_hidden_layers=layers,
                           num_attention_heads=16, image_size=336, patch_size=14, hidden_act="quick_gelu",
                           layer_norm_eps=1e-5, attn_implementation="sdpa")
    dtype = torch.float32 if args.compute == "fp32" else torch.bfloat16
    model = CLIPVisionModel(cfg).eval().to(dtype)
    fill_random_(model)
    g = torch.Generator().manual_seed(1)

    def pixels(h, w):
        return torch.randn(1, 3, h, w, generator=g).to(dtype)

    single = pixels(336, 336)
    views = [pixels(h, w) for h, w in UHD_SLICES + [UHD_OVERVIEW]]

    def run(px):
        with torch.inference_mode():
            return model(pixel_values=px, interpolate_pos_encoding=True).last_hidden_state

    out = header("vit", args)
    out.update({"model": "CLIP ViT-L/14-336 (transformers CLIPVisionModel, random weights)",
                "layers_run": layers, "output": "hidden_states[-2] = output of layer 23 of 24" if layers == 23
                else "output of layer %d" % layers,
                "dtype": "float32" if args.compute == "fp32" else "bfloat16", "attention": "sdpa"})
    log("vit: 336x336")
    out["single_336_s"] = best_of(args.repeat, lambda: run(single))
    per_view = {}
    for (h, w), px in [(UHD_SLICES[0], views[0]), (UHD_OVERVIEW, views[-1])]:
        log("vit: view %dx%d" % (h, w))
        per_view["%dx%d" % (h, w)] = best_of(args.repeat, lambda: run(px))
    out["view_s"] = per_view
    log("vit: all 7 views of 1024x768")
    out["uhd_1024x768_7views_s"] = best_of(args.repeat, lambda: [run(px) for px in views])
    out["views"] = "6 slices H350xW308 (25x22 patches) + overview H280xW378 (20x27), one at a time"
    return out


# ----------------------------------------------------------------------------- llm
LLM_SHAPES = {
    "llama": dict(vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                  num_attention_heads=32, num_key_value_heads=32, rms_norm_eps=1e-5, rope_theta=10000.0,
                  max_position_embeddings=4096, tie_word_embeddings=False),
    "qwen2": dict(vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                  num_attention_heads=28, num_key_value_heads=4, rms_norm_eps=1e-6, rope_theta=1000000.0,
                  max_position_embeddings=32768, tie_word_embeddings=False, use_sliding_window=False),
}


def build_llm(arch, layers, compute):
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM
    shape = dict(LLM_SHAPES[arch], num_hidden_layers=layers)
    cfg_cls, model_cls = (LlamaConfig, LlamaForCausalLM) if arch == "llama" else (Qwen2Config, Qwen2ForCausalLM)
    cfg = cfg_cls(**shape, attn_implementation="sdpa")
    dtype = torch.float32 if compute == "fp32" else torch.bfloat16
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device("meta"):
            model = model_cls(cfg)
    finally:
        torch.set_default_dtype(old)
    model = model.to_empty(device="cpu").eval()
    fill_random_(model)
    # Non-persistent buffers (RoPE inverse frequencies) were not materialised on the meta device.
    model.model.rotary_emb = type(model.model.rotary_emb)(config=cfg)
    return model


class LayerClock:
    """Wall time spent inside the decoder layers (from the first layer's start to the last's end)."""

    def __init__(self, layers):
        self.spent, self.start = 0.0, None
        layers[0].register_forward_pre_hook(self.begin)
        layers[-1].register_forward_hook(self.end)

    def begin(self, *_):
        self.start = time.perf_counter()

    def end(self, *_):
        self.spent += time.perf_counter() - self.start


def bench_llm(args):
    from transformers import DynamicCache
    shape = LLM_SHAPES[args.arch]
    full_layers = shape["num_hidden_layers"]
    layers = max(1, min(args.layers or full_layers, full_layers))
    h, inter, v = shape["hidden_size"], shape["intermediate_size"], shape["vocab_size"]
    kv = shape["num_key_value_heads"] * (h // shape["num_attention_heads"])
    params = layers * (2 * h * h + 2 * h * kv + 3 * h * inter) + 2 * v * h
    bytes_per = 4 if args.compute == "fp32" else 2
    avail = mem_available_bytes()
    out = header("llm", args)
    out.update({"arch": args.arch, "shape": shape, "layers_run": layers, "compute": args.compute,
                "weights_dtype": "float32" if args.compute == "fp32" else "bfloat16",
                "activations_dtype": "float32" if args.compute == "fp32" else "bfloat16",
                "params_built": params, "attention": "sdpa"})
    if avail is not None and params * bytes_per > 0.8 * avail:
        out["error"] = ("%.1f GB of %s weights do not fit in the %.1f GB available: pass --layers N "
                        "(the full depth is then extrapolated)" % (params * bytes_per / 1e9, args.compute, avail / 1e9))
        return out
    log("llm: building %s with %d layers (%s)" % (args.arch, layers, args.compute))
    model = build_llm(args.arch, layers, args.compute)
    clock = LayerClock(model.model.layers)
    g = torch.Generator().manual_seed(2)
    prompt = torch.randint(0, v, (1, args.prompt), generator=g)

    def prefill():
        cache = DynamicCache(config=model.config)
        with torch.inference_mode():
            logits = model(input_ids=prompt, past_key_values=cache, use_cache=True, logits_to_keep=1).logits
        return cache, logits

    def timed(fn):
        """(total seconds, seconds inside the decoder layers) of one call."""
        clock.spent = 0.0
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0, clock.spent

    def decode():
        cache, logits = prefill()
        token = logits[:, -1].argmax(-1, keepdim=True)

        def steps():
            nonlocal token
            with torch.inference_mode():
                for _ in range(args.decode):
                    step = model(input_ids=token, past_key_values=cache, use_cache=True, logits_to_keep=1).logits
                    token = step[:, -1].argmax(-1, keepdim=True)
        return timed(steps)

    log("llm: prefill %d tokens" % args.prompt)
    prefill()
    prefill_s, prefill_layers_s = min(timed(prefill) for _ in range(max(1, args.repeat)))
    log("llm: decode %d tokens" % args.decode)
    decode_s, decode_layers_s = min(decode() for _ in range(max(1, args.repeat)))
    out.update({"prompt_tokens": args.prompt, "prefill_s": prefill_s,
                "prefill_tokens_per_s": args.prompt / prefill_s,
                "decode_tokens": args.decode, "decode_s": decode_s,
                "decode_tokens_per_s": args.decode / decode_s,
                "decode_context": "after the %d-token prefill" % args.prompt,
                "logits": "last position only (logits_to_keep=1, as generate does)"})
    if layers != full_layers:
        scale = full_layers / layers
        full_prefill = prefill_s + prefill_layers_s * (scale - 1)
        full_decode = decode_s + decode_layers_s * (scale - 1)
        out["extrapolated_full_depth"] = {
            "layers": full_layers,
            "method": "measured time + (time inside the %d decoder layers) * (%d/%d - 1)" % (layers, full_layers, layers),
            "prefill_s": full_prefill, "prefill_tokens_per_s": args.prompt / full_prefill,
            "decode_tokens_per_s": args.decode / full_decode,
            "prefill_layers_s": prefill_layers_s, "decode_layers_s": decode_layers_s}
    return out


# ----------------------------------------------------------------------------- vdim
class JBUStage(nn.Module):
    """One joint-bilateral upsampling stage (docs/MODEL.md §3.2): source (B,C,h,w), guidance (B,3,2h,2w)."""

    def __init__(self, key_dim=32, radius=3):
        super().__init__()
        self.d = 2 * radius + 1
        taps = self.d * self.d
        self.range_temp = nn.Parameter(torch.tensor(0.0))
        self.sigma_spatial = nn.Parameter(torch.tensor(1.0))
        self.range_proj = nn.Sequential(nn.Conv2d(3, key_dim, 1), nn.GELU(), nn.Dropout2d(0.1),
                                        nn.Conv2d(key_dim, key_dim, 1))
        self.fixup_proj = nn.Sequential(nn.Conv2d(taps + 3, taps, 1), nn.GELU(), nn.Dropout2d(0.1),
                                        nn.Conv2d(taps, taps, 1))

    def kernel(self, guidance):
        b, _, gh, gw = guidance.shape
        d, r = self.d, self.d // 2
        t = torch.linspace(-1, 1, d)
        spatial = torch.exp(-(t[:, None] ** 2 + t[None, :] ** 2) / (2 * self.sigma_spatial ** 2)).reshape(1, d * d, 1, 1)
        emb = self.range_proj(guidance)                                       # (B, 32, GH, GW)
        neigh = F.unfold(F.pad(emb, (r, r, r, r), mode="reflect"), d)         # (B, 32*49, GH*GW)
        neigh = neigh.view(b, emb.shape[1], d * d, gh, gw)
        tau = torch.clamp(torch.exp(self.range_temp), 1e-4, 1e4)
        rng = torch.softmax(tau * torch.einsum("bcphw,bchw->bphw", neigh, emb), dim=1)
        k = rng * spatial
        k = k / k.sum(1, keepdim=True).clamp_min(1e-7)
        return k + 0.1 * self.fixup_proj(torch.cat([k, guidance], 1))

    def forward(self, source, guidance):
        gh, gw = guidance.shape[-2:]
        k = self.kernel(guidance)                                             # (B, 49, GH, GW)
        r = self.d // 2
        up = F.pad(F.interpolate(source, (gh, gw), mode="bicubic", align_corners=False), (r, r, r, r), mode="reflect")
        out = torch.zeros(source.shape[0], source.shape[1], gh, gw)
        for i in range(self.d):
            for j in range(self.d):
                out.addcmul_(up[:, :, i:i + gh, j:j + gw], k[:, i * self.d + j:i * self.d + j + 1])
        return out


class VDIM(nn.Module):
    """JBU4xStack.forward_with_internal_features: returns (2x, 4x) levels."""

    def __init__(self, channels):
        super().__init__()
        self.up1, self.up2 = JBUStage(), JBUStage()
        self.fixup_proj = nn.Sequential(nn.Dropout2d(0.2), nn.Conv2d(channels, channels, 1))

    def forward(self, feat, image):
        h, w = feat.shape[-2:]
        f2 = self.up1(feat, F.adaptive_avg_pool2d(image, (2 * h, 2 * w)))
        f4 = self.up2(f2, F.adaptive_avg_pool2d(image, (4 * h, 4 * w)))
        return f2, f4 + 0.1 * self.fixup_proj(f4)


def uhd_groups(channels, g):
    """The 1024x768 views grouped as upstream batches them: (features (B,C,h,w), pixels (B,3,H,W))."""
    groups = []
    for (hp, wp), n in [(UHD_SLICES[0], len(UHD_SLICES)), (UHD_OVERVIEW, 1)]:
        groups.append((torch.randn(n, channels, hp // 14, wp // 14, generator=g),
                       torch.randn(n, 3, hp, wp, generator=g)))
    return groups


def bench_vdim(args):
    channels = 1024
    model = VDIM(channels).eval()
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() > 1:
                p.normal_(0.0, 1.0 / math.sqrt(p[0].numel()), generator=g)
            elif name.endswith("range_temp") or name.endswith("sigma_spatial"):
                continue
            else:
                p.normal_(0.0, 0.02, generator=g)
    groups = uhd_groups(channels, g)

    def run(group):
        with torch.inference_mode():
            return model(*group)

    out = header("vdim", args)
    out.update({"what": "JBU4xStack (2 JBU stages, 7x7 kernels, key_dim 32) + 0.1*fixup 1x1 conv at 4x, float32",
                "channels": channels, "dtype": "float32",
                "adaptive_conv": "49 shifted multiply-adds over the reflect-padded bicubic upsample"})
    log("vdim: 6 slices 25x22 -> 50x44 -> 100x88")
    out["slices_6x_25x22_s"] = best_of(args.repeat, lambda: run(groups[0]))
    log("vdim: overview 20x27")
    out["overview_20x27_s"] = best_of(args.repeat, lambda: run(groups[1]))
    out["uhd_1024x768_7views_s"] = out["slices_6x_25x22_s"] + out["overview_20x27_s"]
    return out


# ----------------------------------------------------------------------------- hiwin
def sincos_2d(embed_dim, grid):
    """(grid*grid, E): first half encodes the column, second half the row (docs/MODEL.md §4)."""
    quarter = embed_dim // 4
    omega = 1.0 / 10000 ** (torch.arange(quarter, dtype=torch.float64) / quarter)
    pos = torch.arange(grid, dtype=torch.float64)
    one = torch.cat([torch.sin(pos[:, None] * omega), torch.cos(pos[:, None] * omega)], 1)   # (grid, E/2)
    rows = one[:, None, :].expand(grid, grid, -1)
    cols = one[None, :, :].expand(grid, grid, -1)
    return torch.cat([cols, rows], -1).reshape(grid * grid, embed_dim).float()


def pooling_size(h, w):
    """(ph, pw) from the map's aspect ratio (cal_best_pooling_size, docs/MODEL.md §4 step 4)."""
    best, best_err = None, math.inf
    for cw, ch in [(4, 2), (3, 2), (4, 3), (3, 3), (2, 4), (2, 3), (3, 4)]:
        err = abs(math.log(w / h) - math.log(cw / ch))
        if err < best_err:
            best, best_err = (ch, cw), err
    return best


def window_roi_align(x, ph, pw, grid=12):
    """RoIAlign (aligned=False, sampling_ratio=-1, scale 1) of the 12x12 windows of x (h, w, E).

    The windows all have the same size, so the sample points form a tensor-product grid and the
    bilinear interpolation is done separably. Returns (144, ph*pw, E), windows row-major."""
    h, w, e = x.shape

    def axis(size, bins):
        roi = max(size / grid, 1.0)
        n = math.ceil(roi / bins)
        k = torch.arange(grid, dtype=torch.float64)[:, None, None]
        b = torch.arange(bins, dtype=torch.float64)[None, :, None]
        s = torch.arange(n, dtype=torch.float64)[None, None, :]
        pos = (k * size / grid + b * (roi / bins) + (s + 0.5) * (roi / bins) / n).reshape(-1).clamp_min(0)
        lo = pos.floor().long()
        edge = lo >= size - 1
        lo = torch.where(edge, size - 1, lo)
        hi = torch.where(edge, size - 1, lo + 1)
        frac = torch.where(edge, 0.0, pos - lo).float()
        return lo, hi, frac, n

    ylo, yhi, yf, ny = axis(h, ph)
    xlo, xhi, xf, nx = axis(w, pw)
    rows = x[ylo] * (1 - yf)[:, None, None] + x[yhi] * yf[:, None, None]                  # (Y, w, E)
    pts = rows[:, xlo] * (1 - xf)[None, :, None] + rows[:, xhi] * xf[None, :, None]      # (Y, X, E)
    pts = pts.view(grid, ph, ny, grid, pw, nx, e).mean(dim=(2, 5))                      # (12, ph, 12, pw, E)
    return pts.permute(0, 2, 1, 3, 4).reshape(grid * grid, ph * pw, e)


class Hiwin(nn.Module):
    def __init__(self, embed, channels=1024, grid=12, levels=3):
        super().__init__()
        self.grid, self.embed = grid, embed
        self.register_buffer("pos_embed", sincos_2d(embed, grid))
        self.level_proj = nn.ModuleList([nn.Linear(channels, embed) for _ in range(levels)])
        self.level_embed = nn.Parameter(torch.zeros(levels, embed))
        self.queries = nn.Parameter(torch.zeros(4, grid * grid, embed))
        self.ln_q, self.ln_kv = nn.LayerNorm(embed, eps=1e-6), nn.LayerNorm(embed, eps=1e-6)
        self.ln_proj, self.ln_post = nn.LayerNorm(embed, eps=1e-6), nn.LayerNorm(embed, eps=1e-6)
        self.attn = nn.MultiheadAttention(embed, embed // 128)
        self.cat_proj = nn.Linear(4 * embed, embed)
        self.proj = nn.Parameter(torch.zeros(embed, embed))

    def keys_values(self, levels):
        """levels: list of (C, h, w) maps -> keys, values (144, L_win, E)."""
        keys, values = [], []
        e, g = self.embed, self.grid
        for i, f in enumerate(levels):
            c, h, w = f.shape
            x = self.ln_kv(self.level_proj[i](f.reshape(c, h * w).T))                          # (hw, E)
            pe = F.interpolate(self.pos_embed.T.reshape(1, e, g, g), size=(h, w), mode="bicubic",
                               align_corners=False)[0].reshape(e, h * w).T
            ph, pw = pooling_size(h, w)
            keys.append(window_roi_align((x + pe + self.level_embed[i]).view(h, w, e), ph, pw))
            values.append(window_roi_align(x.view(h, w, e), ph, pw))
        return torch.cat(keys, 1), torch.cat(values, 1)

    def forward(self, levels, mode):
        k, v = self.keys_values(levels)                                  # (144, L, E)
        q = self.ln_q(self.queries) + self.pos_embed                      # (4, 144, E)
        if mode == "upstream":
            outs = [self.attn(q[i][None], k.transpose(0, 1), v.transpose(0, 1), need_weights=False)[0][0]
                    for i in range(4)]
            outs = torch.stack(outs)
        else:
            outs = self.shared_kv_attention(q, k, v)
        x = self.ln_proj(outs)                                            # (4, 144, E)
        x = self.cat_proj(x.permute(1, 0, 2).reshape(self.grid * self.grid, 4 * self.embed))
        return self.ln_post(x) @ self.proj

    def shared_kv_attention(self, q, k, v):
        """nn.MultiheadAttention's math with the key/value projections done once for the 4 query sets."""
        e, heads = self.embed, self.attn.num_heads
        wq, wk, wv = self.attn.in_proj_weight.chunk(3)
        bq, bk, bv = self.attn.in_proj_bias.chunk(3)
        n, length = k.shape[:2]
        qh = F.linear(q, wq, bq).view(4, n, heads, e // heads).permute(1, 2, 0, 3)         # (144, H, 4, d)
        kh = F.linear(k, wk, bk).view(n, length, heads, e // heads).transpose(1, 2)        # (144, H, L, d)
        vh = F.linear(v, wv, bv).view(n, length, heads, e // heads).transpose(1, 2)
        o = F.scaled_dot_product_attention(qh, kh, vh)                                      # (144, H, 4, d)
        o = o.permute(2, 0, 1, 3).reshape(4, n, e)
        return self.attn.out_proj(o)


def bench_hiwin(args):
    embed, channels = args.embed, 1024
    model = Hiwin(embed, channels).eval()
    g = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.startswith("ln_"):
                continue
            if p.dim() == 2 and "queries" not in name and "level_embed" not in name:
                p.normal_(0.0, 1.0 / math.sqrt(p.shape[1]), generator=g)
            else:
                p.normal_(0.0, 0.02, generator=g)
    views = []
    for hp, wp in UHD_SLICES + [UHD_OVERVIEW]:
        h, w = hp // 14, wp // 14
        views.append([torch.randn(channels, s * h, s * w, generator=g) for s in (1, 2, 4)])

    def run(levels):
        with torch.inference_mode():
            return model(levels, args.mode)

    out = header("hiwin", args)
    out.update({"what": "Hiwin projector, levels 1x/2x/4x (feature_scale_mask 7), 144 windows, 4 query sets, float32",
                "embed": embed, "heads": embed // 128, "channels": channels, "mode": args.mode, "dtype": "float32",
                "roi_align": "separable tensor-product RoIAlign written here (windows of equal size; aligned=False, "
                             "adaptive sampling grid)"})
    log("hiwin: slice 25x22 (+2x, 4x)")
    out["slice_25x22_s"] = best_of(args.repeat, lambda: run(views[0]))
    log("hiwin: overview 20x27 (+2x, 4x)")
    out["overview_20x27_s"] = best_of(args.repeat, lambda: run(views[-1]))
    out["uhd_1024x768_7views_s"] = 6 * out["slice_25x22_s"] + out["overview_20x27_s"]
    out["uhd_note"] = "6 x slice + overview, each view projected on its own"
    return out


# ----------------------------------------------------------------------------- main
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("vit", "llm", "vdim", "hiwin"):
        p = sub.add_parser(name)
        p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
        p.add_argument("--repeat", type=int, default=3, help="best of N timed runs (after one warm-up)")
        if name == "vit":
            p.add_argument("--layers", type=int, default=None, help="encoder layers to run (default 23 = layer -2)")
            p.add_argument("--compute", choices=["fp32", "bf16"], default="fp32", help="weights and activations dtype")
        if name == "llm":
            p.add_argument("--arch", choices=["llama", "qwen2"], default="llama")
            p.add_argument("--layers", type=int, default=None, help="decoder layers to build (default: all)")
            p.add_argument("--prompt", type=int, default=1000)
            p.add_argument("--decode", type=int, default=32)
            p.add_argument("--compute", choices=["bf16", "fp32"], default="bf16")
        if name == "hiwin":
            p.add_argument("--embed", type=int, default=4096)
            p.add_argument("--mode", choices=["shared-kv", "upstream"], default="shared-kv")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    result = {"vit": bench_vit, "llm": bench_llm, "vdim": bench_vdim, "hiwin": bench_hiwin}[args.cmd](args)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
