"""Attention, the continual transformer encoder, the recycling positional
encoding and the recurrent kinds against continual-inference 1.2.4's own
modules, over grids of shapes.

Independent sources: the modules' parameters, ``get_state()``, ``delay`` and
``receptive_field``; their own ``flops()`` (what ptflops reports for them);
ptflops run on the modules; PyTorch's ``FlopCounterMode`` (every matrix
product a step executes) for the plain multiply-accumulates.
"""
import pytest

import comem

torch = pytest.importorskip("torch")
co = pytest.importorskip("continual")
ptflops = pytest.importorskip("ptflops")
from torch import nn  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

SHAPES = [(16, 4, 6), (32, 2, 5), (8, 8, 11), (24, 3, 9)]   # (D, h, n)


def spec(tmp_path, layers, channels, clip, name="t"):
    body = ",\n  ".join(layers)
    path = tmp_path / f"{name}.toml"
    path.write_text(f'[model]\nname = "{name}"\ndims = 1\nclip = {clip}\nin_channels = {channels}\n'
                    f'[[stages]]\nname = "s"\nlayers = [\n  {body}\n]\n')
    return str(path)


def state_floats(model):
    total = 0
    for m in model.modules():
        if not isinstance(m, co.CoModule) or not hasattr(m, "get_state"):
            continue
        if any(isinstance(c, co.CoModule) for c in m.modules() if c is not m):
            continue
        s = m.get_state()
        if s:
            total += sum(t.numel() for t in s if isinstance(t, torch.Tensor) and t.is_floating_point())
    return total


def warm(step, d, n):
    with torch.no_grad():
        for _ in range(n + 2):
            step(torch.randn(1, d))


def step_macs(step, d):
    with torch.no_grad(), FlopCounterMode(display=False) as fcm:
        step(torch.randn(1, d))
    return fcm.get_total_flops() // 2


@pytest.mark.parametrize("D,h,n", SHAPES)
@pytest.mark.parametrize("mode", ["single_output", "retroactive"])
@pytest.mark.parametrize("bias", [True, False])
def test_attention_against_the_library(tmp_path, D, h, n, mode, bias):
    kw = dict(embed_dim=D, num_heads=h, bias=bias, batch_first=True, embed_dim_second=True, sequence_len=n,
              forward_returns_attn_mask=False)
    if mode == "retroactive":
        m = co.RetroactiveMultiheadAttention(**kw).eval()
    else:
        m = co.SingleOutputMultiheadAttention(**kw, single_output_forward=True).eval()
    path = spec(tmp_path, [f'{{ kind = "attention", heads = {h}, mode = "{mode}", bias = {str(bias).lower()} }}'],
                D, n)
    r = comem.analyze(path, profile="continual-inference")
    assert r.params == sum(p.numel() for p in m.parameters())
    warm(m.forward_step, D, n)
    assert r.state_floats == state_floats(m)
    # the delay a model holding the layer reports (a single-output module's own delay says 0: its
    # output belongs to the newest token)
    held = co.Sequential(m)
    assert (r.delay, r.receptive_field) == (held.delay, held.receptive_field) == (n - 1, n)
    m.call_mode = "forward_step"
    assert r.ops_per_step == m.flops()          # ptflops reports the module's flops()
    m.call_mode = "forward"
    assert r.ops_per_clip == m.flops()
    m.call_mode = "forward_step"
    assert comem.analyze(path, convention="macs").ops_per_step == step_macs(m.forward_step, D)


@pytest.mark.parametrize("D,h,n", SHAPES[:3])
@pytest.mark.parametrize("queries", ["all", "last"])
def test_regular_attention_is_ptflops_own_count(tmp_path, D, h, n, queries):
    class Attn(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = nn.MultiheadAttention(D, h, batch_first=True)

        def forward(self, x):
            t = x.transpose(1, 2)
            q = t[:, -1:] if queries == "last" else t
            return self.attn(q, t, t, need_weights=False)[0]

    path = spec(tmp_path, [f'{{ kind = "attention", heads = {h}, mode = "regular", output = "{queries}" }}'], D, n)
    r = comem.analyze(path)
    m = Attn()
    macs, params = ptflops.get_model_complexity_info(m, (D, n), as_strings=False, print_per_layer_stat=False,
                                                     backend="pytorch",
                                                     backend_specific_config={"count_functional": False})
    assert (r.ops_per_clip, r.params) == (macs, params)
    assert comem.analyze(path, convention="fvcore").ops_per_clip == fvcore_total(m, torch.randn(1, D, n))


def fvcore_total(model, x):
    """fvcore's FlopCountAnalysis (its unsupported ops, such as
    scaled_dot_product_attention, count 0)."""
    fvcore = pytest.importorskip("fvcore.nn")
    f = fvcore.FlopCountAnalysis(model, (x,))
    f.unsupported_ops_warnings(False)
    f.uncalled_modules_warnings(False)
    return f.total()


@pytest.mark.parametrize("D,h,n", SHAPES)
@pytest.mark.parametrize("layers", [1, 2])
def test_transformer_encoder_against_the_library(tmp_path, D, h, n, layers):
    F = 3 * D // 2
    fac = co.TransformerEncoderLayerFactory(d_model=D, nhead=h, dim_feedforward=F, dropout=0.0, sequence_len=n)
    enc = co.TransformerEncoder(fac, num_layers=layers).eval()
    path = spec(tmp_path, [f'{{ kind = "transformer_encoder", heads = {h}, ff = {F}, layers = {layers} }}'], D, n)
    r = comem.analyze(path, profile="continual-inference")
    assert r.params == sum(p.numel() for p in enc.parameters())
    warm(enc.forward_step, D, n)
    assert r.state_floats == state_floats(enc)
    assert (r.delay, r.receptive_field) == (enc.delay, enc.receptive_field)
    assert comem.analyze(path, convention="macs").ops_per_step == step_macs(enc.forward_step, D)
    enc.call_mode = "forward_step"
    with torch.no_grad():
        macs, _ = ptflops.get_model_complexity_info(
            enc, (D,), input_constructor=lambda s: {"input": torch.randn(1, D)}, as_strings=False,
            print_per_layer_stat=False, backend="pytorch", backend_specific_config={"count_functional": False})
    assert r.ops_per_step == macs


@pytest.mark.parametrize("D,h,n,layers", [(16, 4, 6, 1), (16, 2, 5, 2), (24, 3, 4, 3)])
def test_regular_encoder_is_ptflops_count_of_nn_transformer(tmp_path, D, h, n, layers):
    F = 2 * D
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(D, h, F, dropout=0.0, batch_first=True,
                                                           activation=nn.GELU()),
                                num_layers=layers, enable_nested_tensor=False)

    class ChannelsFirst(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = enc

        def forward(self, x):
            return self.enc(x.transpose(1, 2)).transpose(1, 2)

    path = spec(tmp_path, [f'{{ kind = "transformer_encoder", heads = {h}, ff = {F}, layers = {layers}, '
                           'activation = "gelu", activation_module = true, output = "all" }'], D, n)
    r = comem.analyze(path)
    # grad on: nn.TransformerEncoderLayer's fused inference path would hide its modules from the hooks
    macs, params = ptflops.get_model_complexity_info(ChannelsFirst().train(), (D, n), as_strings=False,
                                                     print_per_layer_stat=False, backend="pytorch",
                                                     backend_specific_config={"count_functional": False})
    assert (r.ops_per_clip, r.params) == (macs, params)
    assert comem.analyze(path, convention="fvcore").ops_per_clip == fvcore_total(ChannelsFirst().train(),
                                                                                 torch.randn(1, D, n))
    assert not r.continual


@pytest.mark.parametrize("embeds,learned", [(8, True), (13, False)])
def test_recycling_positional_encoding(tmp_path, embeds, learned):
    m = co.RecyclingPositionalEncoding(12, embeds, learned=learned)
    r = comem.analyze(spec(tmp_path, [f'{{ kind = "positional_encoding", embeddings = {embeds}, '
                                      f'learned = {str(learned).lower()} }}'], 12, 6),
                      profile="continual-inference")
    assert r.params == sum(p.numel() for p in m.parameters())
    assert (r.state_floats, r.delay) == (0, m.delay)
    with pytest.raises(comem.ComemError, match="positions"):
        comem.analyze(spec(tmp_path, [f'{{ kind = "positional_encoding", embeddings = {embeds} }}'], 12, embeds + 1,
                           name="long"))


@pytest.mark.parametrize("kind", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("C,H,L,bias", [(6, 10, 1, True), (5, 7, 3, False), (12, 4, 2, True)])
def test_recurrent_against_the_library_and_ptflops(tmp_path, kind, C, H, L, bias):
    cls = {"rnn": "RNN", "gru": "GRU", "lstm": "LSTM"}[kind]
    path = spec(tmp_path, [f'{{ kind = "{kind}", hidden = {H}, layers = {L}, bias = {str(bias).lower()} }}'], C, 9)
    r = comem.analyze(path, profile="continual-inference")
    m = getattr(co, cls)(C, H, num_layers=L, bias=bias).eval()
    assert r.params == sum(p.numel() for p in m.parameters())
    warm(m.forward_step, C, 3)
    assert r.state_floats == state_floats(m)
    assert r.delay == m.delay == 0
    regular = getattr(nn, cls)(C, H, num_layers=L, bias=bias, batch_first=True)
    macs, _ = ptflops.get_model_complexity_info(regular, (9, C), as_strings=False, print_per_layer_stat=False,
                                                backend="pytorch", backend_specific_config={"count_functional": False})
    assert r.ops_per_clip == macs


def test_library_composition_explains_the_published_cooadtr_counts():
    """Table 6 (ICLR 2023): CoOadTR-b1 9.6 M and CoOadTR-b2 410.8 M FLOPs on
    THUMOS14 / ActivityNet features, 10.6 / 411.9 on Kinetics features."""
    from comem.reproduce.beyond import _toolchain

    for features, b1, b2 in ((3072, 9.6, 410.8), (4096, 10.6, 411.9)):
        r1 = comem.analyze("cooadtr-b1", params={"features": features})
        r2 = comem.analyze("cooadtr-b2", params={"features": features})
        assert round(r1.ops_per_step / 1e6, 1) == b1
        assert round(_toolchain(r1) / 1e6, 1) == b1
        # continual-inference 1.2.4's single-output last layer reports a one-query in-projection
        assert r2.ops_per_step < b2 * 1e6 * 0.6
        assert abs(_toolchain(r2) / 1e6 - b2) < 0.15


def test_cli_names_of_the_continual_transformers(capsys):
    from comem.cli import main

    for name in ("cooadtr-b1", "cooadtr-b2", "oadtr-b1"):
        with pytest.raises(SystemExit) as e:
            main([name, "-f", "json"], standalone_mode=True)
        assert e.value.code == 0


VALIDATED = {
    "encoder1": ['{ kind = "linear", out = 16 }', '{ kind = "positional_encoding", embeddings = 8 }',
                 '{ kind = "transformer_encoder", heads = 4, ff = 24, layers = 1 }', '{ kind = "layernorm" }',
                 '{ kind = "linear", out = 5 }'],
    "encoder2": ['{ kind = "linear", out = 16 }', '{ kind = "transformer_encoder", heads = 2, ff = 40, layers = 2 }',
                 '{ kind = "linear", out = 5 }'],
    "encoder2_gelu": ['{ kind = "transformer_encoder", heads = 4, ff = 8, layers = 2, activation = "gelu", '
                      'activation_module = true }'],
    "single_output": ['{ kind = "linear", out = 16 }', '{ kind = "attention", heads = 4 }',
                      '{ kind = "linear", out = 5 }'],
    "retroactive": ['{ kind = "linear", out = 16 }', '{ kind = "attention", heads = 4, mode = "retroactive" }'],
    "rnn": ['{ kind = "rnn", hidden = 10, layers = 2 }', '{ kind = "linear", out = 3 }'],
    "gru": ['{ kind = "gru", hidden = 7, layers = 3 }'],
    "lstm": ['{ kind = "lstm", hidden = 10, layers = 2 }', '{ kind = "linear", out = 3 }'],
}


@pytest.mark.parametrize("name", sorted(VALIDATED))
def test_comem_validate_passes(tmp_path, name):
    """comem validate: state, params, work per step and clip (ptflops run on
    the regular model too), delay, receptive field and the measured transient
    peak of one step, all equal."""
    from comem.pytorch.validate import validate

    v = validate(spec(tmp_path, VALIDATED[name], 12, 7, name=name.replace("_", "-")))
    assert v.ok, [(c.group, c.quantity, c.analytic, c.measured) for c in v.failures]


@pytest.mark.parametrize("layers", [1, 2])
def test_import_reads_a_continual_transformer(layers):
    """comem.from_module on a CoOadTR-like model: params, state, delay and the
    step's ptflops count equal the library's."""
    D, h, n, F = 16, 4, 6, 24
    fac = co.TransformerEncoderLayerFactory(d_model=D, nhead=h, dim_feedforward=F, dropout=0.0, sequence_len=n,
                                            activation=nn.GELU())
    m = co.Sequential(co.Linear(12, D, channel_dim=1), co.TransformerEncoder(fac, num_layers=layers),
                      co.Linear(D, 5, channel_dim=1)).eval()
    r = comem.analyze(comem.from_module(m, (12, n)), profile="continual-inference")
    assert r.params == sum(p.numel() for p in m.parameters())
    warm(m.forward_step, 12, n)
    assert (r.state_floats, r.delay, r.receptive_field) == (state_floats(m), m.delay, m.receptive_field)
    m.call_mode = "forward_step"
    with torch.no_grad():
        macs, _ = ptflops.get_model_complexity_info(
            m, (12,), input_constructor=lambda s: {"input": torch.randn(1, 12)}, as_strings=False,
            print_per_layer_stat=False, backend="pytorch", backend_specific_config={"count_functional": False})
    # comem counts each module once a step; under forward_step the nn.GELU inside the library's
    # co.Sequential fires its ptflops hook twice (as BatchNorm and ReLU do in the CoX3D counts): once
    # more its F elements per token — one token (single-output layer), n + 1 (retroactive layer's n
    # tokens and the last layer's one)
    gelu_again = F if layers == 1 else (n + 1) * F
    assert r.ops_per_step + gelu_again == macs


class _AttentionLayer(nn.Module):
    """Informer's AttentionLayer with FullAttention (OadTR's decoder, attn.py):
    four projections, the attention as einsums."""

    def __init__(self, d, heads):
        super().__init__()
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
        self.h = heads

    def forward(self, queries, keys, values):
        B, L, _ = queries.shape
        S = keys.shape[1]
        q = self.q(queries).view(B, L, self.h, -1)
        k = self.k(keys).view(B, S, self.h, -1)
        v = self.v(values).view(B, S, self.h, -1)
        a = torch.softmax(torch.einsum("blhe,bshe->bhls", q, k) / q.shape[-1] ** 0.5, dim=-1)
        return self.o(torch.einsum("bhls,bshd->blhd", a, v).reshape(B, L, -1))


class _DecoderLayer(nn.Module):
    """OadTR's DecoderLayer (decoder.py): self-, cross-attention, 1x1 conv feed-forward."""

    def __init__(self, d, heads, ff):
        super().__init__()
        self.self_attention, self.cross_attention = _AttentionLayer(d, heads), _AttentionLayer(d, heads)
        self.conv1, self.conv2 = nn.Conv1d(d, ff, 1), nn.Conv1d(ff, d, 1)
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(d), nn.LayerNorm(d), nn.LayerNorm(d)

    def forward(self, x, cross):
        x = self.norm1(x + self.self_attention(x, x, x))
        y = x = self.norm2(x + self.cross_attention(x, cross, cross))
        y = self.conv2(torch.nn.functional.gelu(self.conv1(y.transpose(-1, 1)))).transpose(-1, 1)
        return self.norm3(x + y)


@pytest.mark.parametrize("D,h,F,Q,L,S", [(16, 4, 24, 3, 2, 7), (32, 2, 8, 8, 1, 5)])
def test_transformer_decoder_against_ptflops_and_flop_counter(tmp_path, D, h, F, Q, L, S):
    class Decoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.queries = nn.Parameter(torch.zeros(1, Q, D))
            self.query_pe = nn.Embedding(Q, D)       # OadTR builds it (and never adds it)
            self.layers = nn.ModuleList(_DecoderLayer(D, h, F) for _ in range(L))
            self.norm = nn.LayerNorm(D)

        def forward(self, x):  # (N, D, S) -> (N, D, Q)
            memory = x.transpose(1, 2)
            q = self.queries.expand(x.shape[0], -1, -1)
            for layer in self.layers:
                q = layer(q, memory)
            return self.norm(q).transpose(1, 2)

    m = Decoder()
    path = spec(tmp_path, [f'{{ kind = "transformer_decoder", queries = {Q}, layers = {L}, heads = {h}, ff = {F} }}'],
                D, S)
    r = comem.analyze(path)
    macs, params = ptflops.get_model_complexity_info(m, (D, S), as_strings=False, print_per_layer_stat=False,
                                                     backend="pytorch",
                                                     backend_specific_config={"count_functional": False})
    assert (r.ops_per_clip, r.params) == (macs, params)
    with FlopCounterMode(display=False) as fcm:
        m(torch.randn(1, D, S))
    assert comem.analyze(path, convention="macs").ops_per_clip == fcm.get_total_flops() // 2
    assert comem.analyze(path, convention="fvcore").ops_per_clip == fvcore_total(m, torch.randn(1, D, S))
    assert not r.continual
