"""The four tiny decoders in torch, with Hugging Face parameter names, so state_dict() is the checkpoint.

  llama (MHA / GQA / MQA): x += o(attn(rope(q), rope(k), v)) on rmsnorm(x); x += down(silu(gate) * up)
  deepseek_v2 MLA (dense MLP): per token one latent row [c_kv | k_pe]; kv_b_proj expands
    rmsnorm(c_kv) into per-head k_nope and v; the rope part of q and the shared k_pe are rotated
    in interleaved pairs (2i, 2i+1) (DeepSeek's layout); softmax scale 1 / sqrt(nope + rope).
Rotate-half (llama) pairs are (i, i + d/2). Both follow src/reference/transformer.ts.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class RMSNorm(nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_angles(dim, theta, T, dtype):
    inv = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim))  # [dim/2]
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]  # [T, dim/2]
    return ang.cos().to(dtype), ang.sin().to(dtype)


def rope_half(x, cos, sin):
    """x [B, H, T, d]; pairs (i, i + d/2)."""
    h = x.shape[-1] // 2
    a, b = x[..., :h], x[..., h:]
    return torch.cat([a * cos - b * sin, b * cos + a * sin], dim=-1)


def rope_interleaved(x, cos, sin):
    """x [B, H, T, d]; pairs (2i, 2i + 1)."""
    a, b = x[..., 0::2], x[..., 1::2]
    return torch.stack([a * cos - b * sin, b * cos + a * sin], dim=-1).flatten(-2)


def causal_attention(q, k, v, scale):
    """q, k [B, H, T, dk], v [B, H, T, dv] → [B, T, H * dv]."""
    T = q.shape[2]
    s = (q @ k.transpose(-1, -2)) * scale
    mask = torch.ones(T, T, dtype=torch.bool).triu(1)
    s = s.masked_fill(mask, float('-inf'))
    o = s.softmax(-1) @ v
    B, H, _, dv = o.shape
    return o.transpose(1, 2).reshape(B, T, H * dv)


class LlamaAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.H, self.Hkv, self.D = c['num_attention_heads'], c['num_key_value_heads'], c['head_dim']
        hd = c['hidden_size']
        self.q_proj = nn.Linear(hd, self.H * self.D, bias=False)
        self.k_proj = nn.Linear(hd, self.Hkv * self.D, bias=False)
        self.v_proj = nn.Linear(hd, self.Hkv * self.D, bias=False)
        self.o_proj = nn.Linear(self.H * self.D, hd, bias=False)
        self.theta = c['rope_theta']

    def forward(self, x):
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.H, self.D).transpose(1, 2)
        k = self.k_proj(x).view(B, T, self.Hkv, self.D).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.Hkv, self.D).transpose(1, 2)
        cos, sin = rope_angles(self.D, self.theta, T, x.dtype)
        q, k = rope_half(q, cos, sin), rope_half(k, cos, sin)
        rep = self.H // self.Hkv
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        return self.o_proj(causal_attention(q, k, v, 1.0 / math.sqrt(self.D)))


class MlaAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        hd = c['hidden_size']
        self.H = c['num_attention_heads']
        self.N, self.R = c['qk_nope_head_dim'], c['qk_rope_head_dim']
        self.V, self.C = c['v_head_dim'], c['kv_lora_rank']
        self.q_proj = nn.Linear(hd, self.H * (self.N + self.R), bias=False)
        self.kv_a_proj_with_mqa = nn.Linear(hd, self.C + self.R, bias=False)
        self.kv_a_layernorm = RMSNorm(self.C, c['rms_norm_eps'])
        self.kv_b_proj = nn.Linear(self.C, self.H * (self.N + self.V), bias=False)
        self.o_proj = nn.Linear(self.H * self.V, hd, bias=False)
        self.theta = c['rope_theta']

    def forward(self, x):
        B, T, _ = x.shape
        H, N, R, V, C = self.H, self.N, self.R, self.V, self.C
        q = self.q_proj(x).view(B, T, H, N + R).transpose(1, 2)  # [B, H, T, N + R]
        q_nope, q_pe = q[..., :N], q[..., N:]
        ckv = self.kv_a_proj_with_mqa(x)  # [B, T, C + R]
        c_kv, k_pe = ckv[..., :C], ckv[..., C:]
        kv = self.kv_b_proj(self.kv_a_layernorm(c_kv)).view(B, T, H, N + V).transpose(1, 2)  # [B, H, T, N + V]
        k_nope, v = kv[..., :N], kv[..., N:]
        cos, sin = rope_angles(R, self.theta, T, x.dtype)
        q_pe = rope_interleaved(q_pe, cos, sin)
        k_pe = rope_interleaved(k_pe[:, None], cos, sin).expand(B, H, T, R)  # shared by every head
        q = torch.cat([q_nope, q_pe], dim=-1)
        k = torch.cat([k_nope, k_pe], dim=-1)
        return self.o_proj(causal_attention(q, k, v, 1.0 / math.sqrt(N + R)))


class Mlp(nn.Module):
    def __init__(self, c):
        super().__init__()
        hd, i = c['hidden_size'], c['intermediate_size']
        self.gate_proj = nn.Linear(hd, i, bias=False)
        self.up_proj = nn.Linear(hd, i, bias=False)
        self.down_proj = nn.Linear(i, hd, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.input_layernorm = RMSNorm(c['hidden_size'], c['rms_norm_eps'])
        self.self_attn = MlaAttention(c) if c['model_type'].startswith('deepseek') else LlamaAttention(c)
        self.post_attention_layernorm = RMSNorm(c['hidden_size'], c['rms_norm_eps'])
        self.mlp = Mlp(c)

    def forward(self, x):
        x = x + self.self_attn(self.input_layernorm(x))
        return x + self.mlp(self.post_attention_layernorm(x))


class Body(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embed_tokens = nn.Embedding(c['vocab_size'], c['hidden_size'])
        self.layers = nn.ModuleList([Layer(c) for _ in range(c['num_hidden_layers'])])
        self.norm = RMSNorm(c['hidden_size'], c['rms_norm_eps'])


class Decoder(nn.Module):
    """state_dict() keys are the HF names (model.layers.0.self_attn.q_proj.weight, ...); lm_head is tied."""

    def __init__(self, c):
        super().__init__()
        assert c['tie_word_embeddings']
        self.model = Body(c)
        std = 0.02
        for name, p in self.named_parameters():
            if p.dim() == 2:
                # GPT-2's scaled init for the projections that write into the residual stream.
                residual = name.endswith(('o_proj.weight', 'down_proj.weight'))
                scale = 1 / math.sqrt(2 * c['num_hidden_layers']) if residual else 1
                nn.init.normal_(p, 0.0, std * scale)

    def forward(self, ids):
        x = self.model.embed_tokens(ids)
        for layer in self.model.layers:
            x = layer(x)
        return self.model.norm(x) @ self.model.embed_tokens.weight.t()  # [B, T, vocab]
